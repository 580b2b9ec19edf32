"""Home: pick an experiment and a model kind, see recent sessions and the status line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Footer, Label, Static

from lse_core.config import EXPERIMENTS, MODEL_KINDS

from .base import KeysBeforeFocus, LseScreen
from .status import StatusLine
from .texts import DESCRIPTIONS, plain

if TYPE_CHECKING:
    from lse_core.catalog import SessionSummary

RECENT = 5
INPAINT_ONLY = ("outpaint-walk",)


def cell_text(experiment: str, kind: str) -> str:
    if experiment in INPAINT_ONLY and kind != "inpaint":
        return "·"
    return kind


SESSION_COLUMNS = ("updated", "experiment", "model", "frames", "state")


def session_cells(summary: SessionSummary) -> tuple[str, ...]:
    """One session's row, column by column (SESSION_COLUMNS)."""
    cells = (session_time(summary), f"{summary.kind} {summary.experiment}", summary.model,
             frames_text(summary), summary.state)
    return tuple(map(plain, cells))  # outside text: printable, never markup


def fill_sessions_table(table: DataTable, summaries: list[SessionSummary]) -> None:
    """Replace the table's rows, one per session keyed by its folder.

    The columns are sized here, from the texts: left to the table, a header drawn
    before its next idle moment keeps the old widths until something redraws it."""
    rows = [session_cells(summary) for summary in summaries]
    table.clear(columns=True)
    for index, header in enumerate(SESSION_COLUMNS):
        table.add_column(header, width=max(len(text) for text in
                                           (header, *(row[index] for row in rows))))
    for summary, row in zip(summaries, rows):
        table.add_row(*row, key=str(summary.path))


def session_time(summary: SessionSummary) -> str:
    return datetime.fromtimestamp(summary.updated).strftime("%Y-%m-%d %H:%M")


def frames_text(summary: SessionSummary) -> str:
    planned = "?" if summary.frames_planned is None else summary.frames_planned
    return f"{summary.frames_done}/{planned}"


def chosen(row: int, column: int) -> tuple[str, str] | None:
    """The (kind, experiment) of a cell of the experiments table, when it can run."""
    experiment = EXPERIMENTS[row]
    kinds = [k for k in MODEL_KINDS if cell_text(experiment, k) == k]
    if not kinds:
        return None
    # The name column opens the first kind the experiment supports.
    kind = MODEL_KINDS[column - 1] if column > 0 else kinds[0]
    return (kind, experiment) if kind in kinds else None


class SessionsListed(Message):
    """The sessions folder's summaries, newest first, read by a thread worker."""

    def __init__(self, summaries: list[SessionSummary]) -> None:
        super().__init__()
        self.summaries = summaries


def read_sessions(root: Path) -> list[SessionSummary]:
    """Every session's summary (reads each manifest: for thread workers, not the UI thread)."""
    from lse_core.catalog import list_sessions

    return list_sessions(root)


class HomeScreen(KeysBeforeFocus, LseScreen[None]):
    """Every key of home is a priority binding: the app acts on each as it reads it, in
    the order typed. A table's own bindings run only once a key has bubbled back to
    the app, behind later keys: `down down enter` typed at once opened the experiment
    the cursor was leaving, and keys typed after enter stayed on home."""

    CSS_PATH = "home.tcss"
    HELP_TITLE = "Home"
    WIDGET_KEYS = (("⏎ on a recent session", "Open it in the sessions browser"),)
    BINDINGS = [
        Binding("enter", "choose", "Open form", id="home.open", priority=True),
        Binding("s", "sessions", "Sessions", id="home.sessions", priority=True),
        Binding("l", "load", "Load YAML", id="home.load", priority=True),
        Binding("q", "app.quit", "Quit", id="home.quit", priority=True),
        *[Binding(key, f"move('{key}')", "Choose an experiment and a model kind", show=False,
                  priority=True, id=f"home.{key}") for key in ("up", "down", "left", "right")],
        Binding("tab,shift+tab", "app.focus_next", "To the recent sessions and back",
                show=False, priority=True, id="home.next"),
    ]

    def compose(self) -> ComposeResult:
        yield Label("lse · Stable Diffusion Latent Space Explorer", id="home-title")
        yield Label("Experiments (arrows to choose, enter to open)", classes="home-heading")
        yield DataTable(id="experiments", cursor_type="cell", zebra_stripes=True)
        yield Static("", id="experiment-help")
        yield Label("Recent sessions (s: all sessions)", classes="home-heading")
        yield DataTable(id="recent", cursor_type="row")
        yield StatusLine(self.lse.loaded, self.lse.model_override, id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#experiments", DataTable)
        table.add_columns("experiment", *MODEL_KINDS)
        for experiment in EXPERIMENTS:
            table.add_row(experiment, *(cell_text(experiment, k) for k in MODEL_KINDS),
                          key=experiment)
        table.cursor_coordinate = Coordinate(0, 1)
        table.focus()

    def on_screen_resume(self) -> None:
        # Also on the first showing: the sessions are read once each time home is shown.
        self.fill_recent()
        status = self.query_one(StatusLine)
        status.loaded = self.lse.loaded
        status.refresh_status()

    @work(thread=True, exclusive=True, group="recent")
    def fill_recent(self) -> None:
        self.post_message(SessionsListed(read_sessions(self.lse.sessions_dir)[:RECENT]))

    def on_sessions_listed(self, message: SessionsListed) -> None:
        fill_sessions_table(self.query_one("#recent", DataTable), message.summaries)

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        if event.data_table.id == "experiments":
            experiment = EXPERIMENTS[event.coordinate.row]
            self.query_one("#experiment-help", Static).update(DESCRIPTIONS[experiment])

    def action_move(self, key: str) -> None:
        table = self.focused
        if isinstance(table, DataTable):
            getattr(table, f"action_cursor_{key}")()

    def action_choose(self) -> None:
        """Enter: the form of the cell chosen, or the recent session in the browser."""
        table = self.focused
        if not isinstance(table, DataTable) or not table.row_count:
            return
        if table.id == "recent":
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.lse.open_sessions(Path(key))
            return
        choice = chosen(*table.cursor_coordinate)
        if choice is None:
            self.notify("This experiment does not run with this model kind here.",
                        severity="warning")
            return
        self.lse.open_form(*choice)

    def action_sessions(self) -> None:
        self.lse.open_sessions()

    def action_load(self) -> None:
        self.lse.load_config_into_form()
