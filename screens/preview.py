"""Inline frame previews with textual-image, and a text-only caption that always works."""

from __future__ import annotations

from pathlib import Path

from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

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
    """A saved frame, or None when it is gone or unreadable (the caption says so)."""
    try:
        with PILImage.open(path) as image:
            return image.convert("RGB")
    except OSError:
        return None


class FramePreview(Vertical):
    """The frame's image (when a renderer is on) above a caption naming it."""

    DEFAULT_CSS = """
    FramePreview {
        height: 1fr;
        align: center top;
    }
    FramePreview > .preview-image {
        width: auto;
        height: 1fr;
    }
    FramePreview > .preview-caption {
        height: auto;
        max-height: 3;
        color: $text-muted;
    }
    """

    def __init__(self, graphics: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.image_class = image_widget_class(graphics)
        self.caption_text = "no frame yet"

    def compose(self) -> ComposeResult:
        if self.image_class is not None:
            yield self.image_class(classes="preview-image")
        yield Static(self.caption_text, classes="preview-caption")

    def show(self, name: str, path: Path, image: PILImage.Image | None = None) -> None:
        """Show one frame; without ``image`` it is read from ``path``."""
        image = image if image is not None else load_frame(path)
        size = f"{image.width}×{image.height}" if image is not None else "unreadable"
        self.caption_text = f"{name} · {size}\n{path}"
        self.query_one(".preview-caption", Static).update(self.caption_text)
        if self.image_class is not None:
            self.query_one(".preview-image").image = image  # type: ignore[attr-defined]

    def clear(self, message: str) -> None:
        self.caption_text = message
        self.query_one(".preview-caption", Static).update(message)
        if self.image_class is not None:
            self.query_one(".preview-image").image = None  # type: ignore[attr-defined]
