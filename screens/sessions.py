"""The sessions browser: status and frames of every session; resume, export, start anew."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Label, OptionList
from textual.widgets.option_list import Option

from lse_core.catalog import SessionSummary, export_session, list_sessions, session_frames
from lse_core.config import EXPERIMENTS
from lse_core.errors import BadInput, printable
from lse_core.frames import FrameRecord
from lse_core.media import MediaCheckFailed
from lse_core.session import read_config_values

from .base import LseScreen
from .dialogs import ChoiceDialog
from .home import INPAINT_ONLY, frames_text, session_time
from .preview import FramePreview
from .texts import count, plain
from .viewer import FrameViewer

# Keys of a new experiment that start from a saved frame's embedding file.
FROM_FRAME_KEYS = ("load_prompt_embeds", "load_latent_noise")
# Journeys take their start from lists; a saved frame becomes their first keyframe.
FROM_FRAME_LISTS = {"interpolation": ("inter_prompts", "inter_noises")}


# Finished sessions of these experiments can go on: a diffevolution grows its lineage.
CONTINUABLE = ("diffevolution",)


def can_continue(summary: SessionSummary) -> bool:
    return summary.state == "done" and summary.experiment in CONTINUABLE


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
        self.select = select
        self.summaries: list[SessionSummary] = []
        self.frames: list[tuple[FrameRecord, Path]] = []  # the selected session's, in story order

    def compose(self) -> ComposeResult:
        yield Label(plain(f"Sessions in {self.root}"), id="sessions-title")
        yield DataTable(id="session-table", cursor_type="row")
        with Horizontal(id="session-detail"):
            with Vertical(id="frames-pane"):
                yield Label("", id="frames-title", classes="pane-title")
                yield OptionList(id="session-frames")
            yield FramePreview(self.lse.graphics, id="session-preview")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#session-table", DataTable)
        table.add_columns("updated", "experiment", "model", "frames", "state")
        self.reload()
        table.focus()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        table = self.query_one("#session-table", DataTable)
        selected = self.current.path if self.current else self.select
        table.clear()
        self.summaries = list_sessions(self.root)
        for summary in self.summaries:
            cells = (session_time(summary), f"{summary.kind} {summary.experiment}",
                     summary.model, frames_text(summary), summary.state)
            table.add_row(*map(plain, cells), key=str(summary.path))
        paths = [s.path for s in self.summaries]
        if selected in paths:
            table.move_cursor(row=paths.index(selected))
        self.show_session()

    @property
    def current(self) -> SessionSummary | None:
        table = self.query_one("#session-table", DataTable)
        if not self.summaries or not 0 <= table.cursor_row < len(self.summaries):
            return None
        return self.summaries[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_session()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.query_one("#session-frames", OptionList).focus()

    def show_session(self) -> None:
        frames = self.query_one("#session-frames", OptionList)
        # Reloaded (back from a run or the viewer), the same frame stays selected.
        keep = self.selected_frame()
        frames.clear_options()
        summary = self.current
        self.frames, problem = self._frames_of(summary)
        frames.add_options([Option(plain(record.label)) for record, _ in self.frames])
        title = f"{count(len(self.frames), 'frame')} · ↑/↓"
        self.query_one("#frames-title", Label).update(title)
        preview = self.query_one("#session-preview", FramePreview)
        paths = [path for _, path in self.frames]
        if self.frames:
            frames.highlighted = paths.index(keep) if keep in paths else len(paths) - 1
        elif problem is not None:
            preview.clear(f"unreadable: {problem}")
        else:
            preview.clear("no sessions" if summary is None else "no frames saved yet")
        self.refresh_bindings()

    @staticmethod
    def _frames_of(summary: SessionSummary | None) -> tuple[list[tuple[FrameRecord, Path]], str | None]:
        """The session's frames as its records list them, or why they cannot be read."""
        if summary is None:
            return [], None
        if summary.problem is not None:
            return [], summary.problem
        try:
            records = session_frames(summary.path)
        except BadInput as exc:
            return [], str(exc)
        return [(r, summary.path / "images" / f"{r.name}.png") for r in records], None

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

    def selected_frame(self) -> Path | None:
        index = self.query_one("#session-frames", OptionList).highlighted
        return self.frames[index][1] if index is not None and index < len(self.frames) else None

    def action_resume(self) -> None:
        summary = self.current
        if summary is None:
            return
        if summary.state == "done":
            self.notify(printable(f"{summary.experiment} is finished: nothing to resume "
                                  "(e: export its GIF/MP4 again, n: a new experiment from a "
                                  "frame)"), markup=False)
            return
        self.lse.resume(summary.path)

    def action_continue_session(self) -> None:
        """A finished diffevolution goes on from its last parent; new generations join its lineage."""
        summary = self.current
        if summary is not None and can_continue(summary):
            self.lse.resume(summary.path, "continue")

    def action_zoom(self) -> None:
        summary, index = self.current, self.query_one("#session-frames", OptionList).highlighted
        if summary is None or index is None or index >= len(self.frames):
            return
        frames = [(record.label, path) for record, path in self.frames]
        self.app.push_screen(FrameViewer(frames, index, self.lse.graphics, summary.path.name),
                             self._highlight_frame)

    def _highlight_frame(self, index: int | None) -> None:
        if index is not None:
            self.query_one("#session-frames", OptionList).highlighted = index

    @work(thread=True, exclusive=True, group="export")
    def action_export(self) -> None:
        summary = self.current
        if summary is None:
            return
        try:
            paths = export_session(summary.path, gif=True, mp4=True)
        except (BadInput, MediaCheckFailed, OSError) as exc:
            self.app.call_from_thread(self.notify, printable(str(exc)), title="Export",
                                      severity="error", markup=False)
            return
        written = "\n".join(str(p) for p in paths) or "nothing to write"
        self.app.call_from_thread(self.notify, printable(written), title="Exported", markup=False)

    def action_new_from_frame(self) -> None:
        summary, frame = self.current, self.selected_frame()
        if summary is None or frame is None:
            return
        embedding = summary.path / "embeddings" / f"{frame.stem}.safetensors"
        if not embedding.is_file():
            self.notify(printable(f"{embedding}: no embedding file for this frame"),
                        severity="error", markup=False)
            return
        choices = [e for e in EXPERIMENTS if e not in INPAINT_ONLY or summary.kind == "inpaint"]

        def start(experiment: str | None) -> None:
            if experiment is not None:
                self.lse.open_form(summary.kind, experiment,
                                   self.start_values(summary, experiment, embedding))

        self.app.push_screen(ChoiceDialog(f"New experiment from {frame.stem}", choices,
                                          current=summary.experiment), start)

    def start_values(self, summary: SessionSummary, experiment: str,
                     embedding: Path) -> dict[str, object]:
        """The session's own config, starting from the frame's embeddings."""
        try:
            values = read_config_values(summary.path)
        except BadInput:
            values = {}
        values["exp_identifier"] = experiment
        values.update({key: str(embedding) for key in FROM_FRAME_KEYS})
        for key in FROM_FRAME_LISTS.get(experiment, ()):
            values[key] = [str(embedding)]
        return values

    def action_reload(self) -> None:
        self.reload()

    def action_back(self) -> None:
        self.dismiss(None)
