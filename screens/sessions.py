"""The sessions browser: status and frames of every session; resume, export, start anew.

Sessions are known by their folder, never by their row: a reload that re-sorts
the list keeps the same session selected, and every action names the session it
acts on. Listing sessions and their frames reads many files, so thread workers
do it and post the result; the screen only fills its widgets.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Label, OptionList
from textual.widgets.option_list import Option

from lse_core.catalog import SessionSummary, export_session, session_frames
from lse_core.config import EXPERIMENTS
from lse_core.errors import BadInput, printable
from lse_core.frames import FrameRecord
from lse_core.media import MediaCheckFailed
from lse_core.session import read_config_values

from .base import LseScreen
from .dialogs import ChoiceDialog
from .home import INPAINT_ONLY, SessionsListed, fill_sessions_table, read_sessions
from .preview import FramePreview
from .texts import count, plain
from .viewer import FrameViewer

# Keys of a new experiment that start from a saved frame's embedding file.
FROM_FRAME_KEYS = ("load_prompt_embeds", "load_latent_noise")
# Journeys take their start from lists; a saved frame becomes their first keyframe.
FROM_FRAME_LISTS = {"interpolation": ("inter_prompts", "inter_noises")}
# What a new experiment keeps of the session besides the frame: the model the
# embedding belongs to and the model kind's input pictures. Every other key
# takes the new experiment's own default.
FROM_SESSION_KEYS = ("model_id", "image", "mask")


# Finished sessions of these experiments can go on: a diffevolution grows its lineage.
CONTINUABLE = ("diffevolution",)


def can_continue(summary: SessionSummary) -> bool:
    return summary.state == "done" and summary.experiment in CONTINUABLE


def start_values(session: Path, experiment: str, embedding: Path) -> dict[str, object]:
    """A new ``experiment``'s form values from one saved frame: its embedding file, the
    session's model and input pictures, and the new experiment's defaults for the rest."""
    try:
        config = read_config_values(session)
    except BadInput:
        config = {}
    values: dict[str, object] = {key: config[key] for key in FROM_SESSION_KEYS if key in config}
    values["exp_identifier"] = experiment
    values.update({key: str(embedding) for key in FROM_FRAME_KEYS})
    for key in FROM_FRAME_LISTS.get(experiment, ()):
        values[key] = [str(embedding)]
    return values


def read_frames(summary: SessionSummary) -> tuple[list[tuple[FrameRecord, Path]], str | None]:
    """The session's frames as its records list them, or why they cannot be read (reads
    its journal: for thread workers, not the UI thread)."""
    if summary.problem is not None:
        return [], summary.problem
    try:
        records = session_frames(summary.path)
    except BadInput as exc:
        return [], str(exc)
    return [(r, summary.path / "images" / f"{r.name}.png") for r in records], None


class FramesListed(Message):
    """One session's frames in story order (or why they cannot be read), listed by a
    thread worker."""

    def __init__(self, session: Path, frames: list[tuple[FrameRecord, Path]],
                 problem: str | None) -> None:
        super().__init__()
        self.session = session
        self.frames = frames
        self.problem = problem


class SessionsScreen(LseScreen[None]):
    CSS_PATH = "sessions.tcss"
    HELP_TITLE = "Sessions"
    WIDGET_KEYS = (("↑ ↓", "Choose a session, or a frame in the frames list"),
                   ("⏎ tab", "From the sessions to their frames (tab: and back)"))
    BINDINGS = [
        # One key, two meanings: the footer shows the one the selected session has.
        Binding("r", "resume", "Resume", id="sessions.resume",
                tooltip="Resume a stopped session where it stopped"),
        Binding("r", "continue_session", "Continue", id="sessions.continue",
                tooltip="Continue a finished diffevolution: new generations join its lineage"),
        Binding("e", "export", "Export", id="sessions.export",
                tooltip="Write the session's GIF and MP4 again from its frames"),
        Binding("n", "new_from_frame", "New from frame", id="sessions.new"),
        Binding("z", "zoom", "Zoom", id="sessions.zoom",
                tooltip="The selected frame as large as the terminal allows"),
        # Not in the footer (it would push "? Keys" off 80 columns); the keys help lists it.
        Binding("f5", "reload", "Reload", id="sessions.reload", show=False),
        Binding("escape", "back", "Back", id="sessions.back"),
    ]

    def __init__(self, root: Path, select: Path | None = None) -> None:
        super().__init__()
        self.root = root
        # The session selected, by its folder: what every action acts on.
        self.selected_path = select
        self.summaries: dict[Path, SessionSummary] = {}
        self.listed = False  # the first listing has arrived
        self.frames: list[tuple[FrameRecord, Path]] = []  # the listed session's, in story order
        self.frames_of: Path | None = None  # the session whose frames are listed

    def compose(self) -> ComposeResult:
        yield Label(plain(f"Sessions in {self.root}"), id="sessions-title")
        yield DataTable(id="session-table", cursor_type="row")
        yield Label("reading the sessions…", id="session-selected")
        with Horizontal(id="session-detail"):
            with Vertical(id="frames-pane"):
                yield Label("", id="frames-title", classes="pane-title")
                yield OptionList(id="session-frames")
            yield FramePreview(self.lse.graphics, id="session-preview")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#session-table", DataTable).focus()

    def on_screen_resume(self) -> None:
        # Also on the first showing: the sessions are read once each time the browser is shown.
        self.reload()

    @work(thread=True, exclusive=True, group="sessions")
    def reload(self) -> None:
        self.post_message(SessionsListed(read_sessions(self.root)))

    def on_sessions_listed(self, message: SessionsListed) -> None:
        table = self.query_one("#session-table", DataTable)
        keep = self.selected_path
        self.summaries = {summary.path: summary for summary in message.summaries}
        fill_sessions_table(table, message.summaries)
        if keep is not None and keep in self.summaries:
            table.move_cursor(row=table.get_row_index(str(keep)), scroll=True)
        self.listed = True
        self._select_row()

    @property
    def current(self) -> SessionSummary | None:
        """The selected session (the one in the highlighted row)."""
        return self.summaries.get(self.selected_path) if self.selected_path else None

    def _row_path(self) -> Path | None:
        table = self.query_one("#session-table", DataTable)
        if not table.row_count:
            return None
        return Path(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.listed:
            self._select_row()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.query_one("#session-frames", OptionList).focus()

    def _select_row(self) -> None:
        """The highlighted row's session becomes the selected one; its frames are listed."""
        self.selected_path = self._row_path()
        summary = self.current
        line = self.query_one("#session-selected", Label)
        if summary is None:
            line.update("no sessions yet")
            self._show_frames(None, [], None)
        else:
            line.update(plain(f"▶ {summary.path.name} · {summary.state}"))
            self._list_frames(summary)
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="frames")
    def _list_frames(self, summary: SessionSummary) -> None:
        self.post_message(FramesListed(summary.path, *read_frames(summary)))

    def on_frames_listed(self, message: FramesListed) -> None:
        if message.session == self.selected_path:
            self._show_frames(message.session, message.frames, message.problem)

    def _show_frames(self, session: Path | None, frames: list[tuple[FrameRecord, Path]],
                     problem: str | None) -> None:
        options = self.query_one("#session-frames", OptionList)
        # Reloaded (back from a run or the viewer), the same frame stays selected.
        keep = self.selected_frame() if session == self.frames_of else None
        self.frames_of, self.frames = session, frames
        options.clear_options()
        options.add_options([Option(plain(record.label)) for record, _ in frames])
        self.query_one("#frames-title", Label).update(f"{count(len(frames), 'frame')} · ↑/↓")
        if frames:
            options.highlighted = frames.index(keep) if keep in frames else len(frames) - 1
        else:
            self.query_one("#session-preview", FramePreview).clear(
                "no sessions" if session is None else
                f"unreadable: {problem}" if problem is not None else "no frames saved yet")
        self.refresh_bindings()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # A highlight from the list of the session shown before may arrive late.
        if 0 <= event.option_index < len(self.frames):
            record, path = self.frames[event.option_index]
            self.query_one("#session-preview", FramePreview).show(record.label, path)

    # actions ------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        summary = self.current
        if action == "resume":
            # A finished session keeps the key, which then says why there is nothing to do.
            return summary is not None and not can_continue(summary)
        if action == "continue_session":
            return summary is not None and can_continue(summary)
        if action == "export":
            return summary is not None
        if action in ("new_from_frame", "zoom"):
            return summary is not None and self.selected_frame() is not None
        return True

    def selected_frame(self) -> tuple[FrameRecord, Path] | None:
        """The highlighted frame, when the list shows the selected session's frames."""
        if self.frames_of is None or self.frames_of != self.selected_path:
            return None
        index = self.query_one("#session-frames", OptionList).highlighted
        return self.frames[index] if index is not None and index < len(self.frames) else None

    def action_resume(self) -> None:
        summary = self.current
        if summary is None:
            return
        if summary.state == "done":
            self.notify(printable(f"{summary.path.name} ({summary.experiment}) is finished: "
                                  "nothing to resume (e: export its GIF/MP4 again, n: a new "
                                  "experiment from a frame)"), markup=False)
            return
        self.notify(printable(summary.path.name), title="Resuming", markup=False)
        self.lse.resume(summary.path)

    def action_continue_session(self) -> None:
        """A finished diffevolution goes on from its last parent; new generations join its lineage."""
        summary = self.current
        if summary is not None and can_continue(summary):
            self.notify(printable(summary.path.name), title="Continuing", markup=False)
            self.lse.resume(summary.path, "continue")

    def action_zoom(self) -> None:
        summary, frame = self.current, self.selected_frame()
        if summary is None or frame is None:
            return
        frames = [(record.label, path) for record, path in self.frames]
        self.app.push_screen(FrameViewer(frames, self.frames.index(frame), self.lse.graphics,
                                         summary.path.name), self._highlight_frame)

    def _highlight_frame(self, index: int | None) -> None:
        if index is not None:
            self.query_one("#session-frames", OptionList).highlighted = index

    def action_export(self) -> None:
        summary = self.current
        if summary is not None:
            self.notify(printable(summary.path.name), title="Exporting", markup=False)
            self._export(summary.path)

    @work(thread=True, group="export")
    def _export(self, session: Path) -> None:
        try:
            paths = export_session(session, gif=True, mp4=True)
        except (BadInput, MediaCheckFailed, OSError) as exc:
            self.app.call_from_thread(self.notify, printable(str(exc)), title="Export",
                                      severity="error", markup=False)
            return
        written = "\n".join(str(p) for p in paths) or "nothing to write"
        self.app.call_from_thread(self.notify, printable(written),
                                  title=printable(f"Exported {session.name}"), markup=False)

    def action_new_from_frame(self) -> None:
        summary, frame = self.current, self.selected_frame()
        if summary is None or frame is None:
            return
        record = frame[0]
        embedding = summary.path / "embeddings" / f"{record.name}.safetensors"
        if not embedding.is_file():
            self.notify(printable(f"{embedding}: no embedding file for this frame"),
                        severity="error", markup=False)
            return
        choices = [e for e in EXPERIMENTS if e not in INPAINT_ONLY or summary.kind == "inpaint"]

        def start(experiment: str | None) -> None:
            if experiment is not None:
                self.lse.open_form(summary.kind, experiment,
                                   start_values(summary.path, experiment, embedding))

        self.app.push_screen(ChoiceDialog(
            f"New experiment from {record.label} of {summary.path.name}",
            choices, current=summary.experiment), start)

    def action_reload(self) -> None:
        self.reload()

    def action_back(self) -> None:
        self.dismiss(None)
