"""Inline frame previews with textual-image, and a text-only caption that always works."""

from __future__ import annotations

from pathlib import Path

from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.widget import Widget
from textual.widgets import Static

from lse_core import safe_files
from lse_core.errors import BadInput

from .texts import plain

GRAPHICS = ("auto", "kitty", "sixel", "halfcell", "none")


def image_widget_class(graphics: str) -> type[Widget] | None:
    """The textual-image widget for ``--graphics`` (None: text only).

    Importing textual-image queries the terminal, which only works before
    Textual owns it, so ``run_app`` calls this once before the app starts.
    """
    if graphics == "none":
        return None
    from textual_image import widget

    return {
        "auto": widget.Image,
        "kitty": widget.TGPImage,
        "sixel": widget.SixelImage,
        "halfcell": widget.HalfcellImage,
    }[graphics]


def load_frame(path: Path) -> PILImage.Image | None:
    """A saved frame, or None when it is gone or unreadable (the caption says so). Read
    as the core reads session files: no link followed, no FIFO opened, size bounded."""
    try:
        return safe_files.read_image(path)
    except (BadInput, OSError):
        return None


class FramePreview(Vertical):
    """The frame's image, as large as its space allows, above a caption naming it.

    The caption gives the frame's label and size, then its file name, or its
    full path with ``full_path`` (the frame viewer has the room for it).
    """

    DEFAULT_CSS = """
    FramePreview {
        height: 1fr;
    }
    FramePreview > .preview-frame {
        height: 1fr;
        align: center middle;
    }
    FramePreview .preview-image {
        width: auto;
        height: auto;
    }
    FramePreview > .preview-caption {
        height: auto;
        color: $text-muted;
        text-align: center;
    }
    """

    def __init__(self, graphics: str, full_path: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.image_class = image_widget_class(graphics)
        self.full_path = full_path
        self.caption_text = "no frame yet"

    def compose(self) -> ComposeResult:
        if self.image_class is not None:
            with Container(classes="preview-frame"):
                yield self.image_class(classes="preview-image")
        yield Static(self.caption_text, classes="preview-caption")

    def show(self, label: str, path: Path, image: PILImage.Image | None = None) -> None:
        """Show one frame, captioned with its label; without ``image`` it is read from ``path``."""
        image = image if image is not None else load_frame(path)
        size = f"{image.width}×{image.height}" if image is not None else "unreadable"
        where = str(path) if self.full_path else path.name
        self.caption_text = f"{label} · {size}\n{where}"
        self.query_one(".preview-caption", Static).update(plain(self.caption_text))
        if self.image_class is not None:
            self.query_one(".preview-image").image = image  # type: ignore[attr-defined]

    def clear(self, message: str) -> None:
        self.caption_text = message
        self.query_one(".preview-caption", Static).update(plain(message))
        if self.image_class is not None:
            self.query_one(".preview-image").image = None  # type: ignore[attr-defined]
