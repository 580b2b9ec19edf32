"""Inline frame previews with textual-image, and a text-only caption that always works."""

from __future__ import annotations

from pathlib import Path

from PIL import Image as PILImage
from textual import work
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.message import Message
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
    as the core reads session files: no link followed, no FIFO opened, size bounded.

    Decoding takes milliseconds to tens of them: call it from a thread worker."""
    try:
        return safe_files.read_image(path)
    except (BadInput, OSError):
        return None


def frame_size(path: Path) -> tuple[int, int] | None:
    """A saved frame's size from its header alone (nothing is decoded), or None."""
    try:
        return safe_files.image_size(path)
    except (BadInput, OSError):
        return None


def size_text(size: tuple[int, int] | None) -> str:
    return f"{size[0]}×{size[1]}" if size is not None else "unreadable"


class FramePreview(Vertical):
    """The frame's image, as large as its space allows, above a caption naming it.

    The caption gives the frame's label and size, then its file name, or its
    full path with ``full_path`` (the frame viewer has the room for it). A frame
    given only by its path is decoded by a thread worker; the caption is
    written at once, from the file's header.
    """

    class Decoded(Message):
        def __init__(self, request: int, image: PILImage.Image | None) -> None:
            super().__init__()
            self.request = request
            self.image = image

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
        self.requests = 0  # the latest show(); a decode for an earlier one is dropped
        self.pending = False  # a decode is under way

    def compose(self) -> ComposeResult:
        if self.image_class is not None:
            with Container(classes="preview-frame"):
                yield self.image_class(classes="preview-image")
        yield Static(self.caption_text, classes="preview-caption")

    def show(self, label: str, path: Path, image: PILImage.Image | None = None) -> None:
        """Show one frame, captioned with its label; without ``image`` it is decoded from ``path`` off the UI thread."""
        self.requests += 1
        size = image.size if image is not None else frame_size(path)
        where = str(path) if self.full_path else path.name
        self._caption(f"{label} · {size_text(size)}\n{where}")
        if self.image_class is None:
            return
        if image is not None or size is None:
            self.pending = False
            self._set_image(image)
        else:
            self.pending = True
            self._decode(self.requests, path)

    @work(thread=True, exclusive=True, group="decode")
    def _decode(self, request: int, path: Path) -> None:
        self.post_message(self.Decoded(request, load_frame(path)))

    def on_frame_preview_decoded(self, message: Decoded) -> None:
        message.stop()
        if message.request == self.requests:
            self.pending = False
            self._set_image(message.image)

    def show_live(self, caption: str, image: PILImage.Image) -> None:
        """A live step preview (a picture made in memory, never a file)."""
        self.requests += 1  # a decode still under way is for a frame no longer shown
        self.pending = False
        self._caption(caption)
        if self.image_class is not None:
            self._set_image(image)

    def clear(self, message: str) -> None:
        self.requests += 1
        self.pending = False
        self._caption(message)
        if self.image_class is not None:
            self._set_image(None)

    def _caption(self, text: str) -> None:
        self.caption_text = text
        self.query_one(".preview-caption", Static).update(plain(text))

    def _set_image(self, image: PILImage.Image | None) -> None:
        self.query_one(".preview-image").image = image  # type: ignore[attr-defined]


# Live previews come at the latents' resolution (1/8 of the frame's side); tiles are
# scaled up to at least this many pixels so the terminal's image protocol has detail to show.
LIVE_TILE = 96


def live_mosaic(images: tuple[PILImage.Image, ...]) -> PILImage.Image:
    """The batch's live pictures side by side in a near-square grid, scaled up smoothly."""
    columns = max(1, round(len(images) ** 0.5 + 0.49))
    rows = -(-len(images) // columns)
    width, height = images[0].size
    scale = max(1, -(-LIVE_TILE // max(width, height)))
    tile = (width * scale, height * scale)
    sheet = PILImage.new("RGB", (tile[0] * columns, tile[1] * rows))
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        sheet.paste(image.resize(tile, PILImage.Resampling.BILINEAR), (column * tile[0], row * tile[1]))
    return sheet
