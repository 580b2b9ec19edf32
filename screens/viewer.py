"""One frame as large as the terminal allows, with ←/→ through its neighbours."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Label

from .preview import FramePreview
from .texts import plain


class FrameViewer(Screen[int]):
    """Dismissed with the index of the frame shown last, so the screen below can follow."""

    DEFAULT_CSS = """
    FrameViewer #viewer-title {
        width: 100%;
        background: $panel;
        text-style: bold;
        padding: 0 1;
    }
    """
    HELP_TITLE = "Frame viewer"
    BINDINGS = [
        Binding("left,h", "step(-1)", "Previous", key_display="←", id="viewer.previous"),
        Binding("right,l", "step(1)", "Next", key_display="→", id="viewer.next"),
        Binding("escape,z,q", "close", "Back", key_display="esc", id="viewer.close"),
    ]

    def __init__(self, frames: list[tuple[str, Path]], index: int, graphics: str,
                 title: str) -> None:
        super().__init__()
        self.frames = frames
        self.index = index
        self.graphics = graphics
        self.title_text = title

    def compose(self) -> ComposeResult:
        yield Label("", id="viewer-title")
        yield FramePreview(self.graphics, full_path=True, id="viewer-image")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        name, path = self.frames[self.index]
        self.query_one("#viewer-title", Label).update(
            plain(f"{self.title_text} · {self.index + 1} of {len(self.frames)}"))
        self.query_one("#viewer-image", FramePreview).show(name, path)

    def action_step(self, delta: int) -> None:
        self.index = max(0, min(len(self.frames) - 1, self.index + delta))
        self._show()

    def action_close(self) -> None:
        self.dismiss(self.index)
