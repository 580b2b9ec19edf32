"""GIFs, MP4s and grids from saved frames, each written atomically and streaming: one
frame is read from disk, encoded and let go before the next, so a journey of any
length is written in the memory of one frame."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from PIL import GifImagePlugin, Image

from .errors import BadInput, shorten, shown_path
from .files import publish, publish_all
from .frames import PLAIN_NAME, FrameRecord

# Frame rates a GIF or MP4 is written at. A GIF's frame durations are whole hundredths
# of a second in a 16-bit field (Pillow truncates milliseconds to them), so 100 fps is
# its fastest; one frame a minute is the slowest lse writes (gif_frame_dur ≤ 60000 ms).
MIN_FPS = 1 / 60
MAX_GIF_FPS = 100
MAX_VIDEO_FPS = 240


class MediaCheckFailed(Exception):
    """A GIF or MP4 did not read back whole; the file it would have replaced is kept."""


@dataclass
class Media:
    """A GIF (and MP4 when ``video``) from saved frames, or a grid PNG when ``grid``
    (``record`` then describes the grid as a frame of its own)."""

    name: str
    frames: list[str]
    video: bool = False
    grid: bool = False
    record: FrameRecord | None = None

    def entry(self) -> dict[str, Any]:
        """As the session stores it."""
        return {"name": self.name, "frames": self.frames, "video": self.video, "grid": self.grid}


_STORED_KEYS = {f.name for f in fields(Media)} - {"record"}


def media_entries(session: Any) -> list[Media]:
    """The media a session lists, refusing any entry that is malformed or names a file
    outside the session (the session's files are files anyone can edit)."""
    entries = session.stored_media()
    where = shown_path(session.path)
    if not isinstance(entries, list):
        raise BadInput(f"{where}: 'media' must be a list")
    result = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) - _STORED_KEYS or not {"name", "frames"} <= set(entry):
            raise BadInput(f"{where}: media entry {index} must have the keys name, frames "
                           "(and optionally video, grid)")
        frames = entry["frames"]
        names = [entry["name"], *frames] if isinstance(frames, list) else [frames]
        for name in names:
            if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
                raise BadInput(f"{where}: media entry {index}: {shorten(repr(name))} is not "
                               "a plain file name")
        if not all(isinstance(entry.get(k, False), bool) for k in ("video", "grid")):
            raise BadInput(f"{where}: media entry {index}: video and grid must be true or false")
        result.append(Media(**entry))
    return result


def check_fps(fps: float, gif: bool, video: bool) -> None:
    """Refuse a frame rate that a GIF (``gif``) or an MP4 (``video``) cannot be written at."""
    top = min([MAX_GIF_FPS] * gif + [MAX_VIDEO_FPS] * video, default=MAX_VIDEO_FPS)
    if not (math.isfinite(fps) and MIN_FPS <= fps <= top):
        why = (" (GIF frame durations are hundredths of a second)"
               if gif and top == MAX_GIF_FPS else "")
        raise BadInput(f"--fps: must be from 1/60 (a frame a minute) to {top}{why} "
                       f"(got {fps:g})")


def save_png(image: Image.Image, path: Path) -> None:
    publish(path, lambda tmp: image.save(tmp, format="PNG"))


def _same_size(frames: Iterable[Image.Image], names: list[str]) -> Iterator[Image.Image]:
    """The frames, each checked to have the first one's size (a GIF and an MP4 need it)."""
    size = None
    for name, frame in zip(names, frames):
        size = size or frame.size
        if frame.size != size:
            raise BadInput(f"frame {name} is {frame.width}×{frame.height}, the frames before "
                           f"it {size[0]}×{size[1]}; resume the session to make it again")
        yield frame


class GifStream:
    """An animated GIF written one frame at a time.

    Pillow's multi-frame ``save(save_all=True)`` keeps every frame until the file is
    closed (it compares frames to crop and merge them), and imageio's GIF writing goes
    through it; no library at hand writes a GIF a frame at a time. Pillow's
    GifImagePlugin documents two legacy functions for it, ``getheader`` and ``getdata``,
    which encode the header and one frame block (with its own palette): the file is
    written as those blocks in order, ended by the GIF trailer byte.
    """

    def __init__(self, path: Path, frame_ms: int) -> None:
        self.handle: BinaryIO = open(path, "wb")
        self.frame_ms = frame_ms
        self.frames = 0

    def add(self, frame: Image.Image) -> None:
        paletted = frame.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
        if not self.frames:
            header, _ = GifImagePlugin.getheader(paletted, info={"loop": 0})
            self.handle.write(b"".join(header))
        self.handle.write(b"".join(GifImagePlugin.getdata(paletted, duration=self.frame_ms,
                                                          include_color_table=True)))
        self.frames += 1

    def close(self) -> None:
        try:
            if self.frames:
                self.handle.write(b";")
        finally:
            self.handle.close()


class Mp4Stream:
    """H.264 through imageio-ffmpeg, fed one frame at a time; sizes are multiples of 8,
    so no padding is needed."""

    def __init__(self, path: Path, fps: float) -> None:
        import imageio.v2 as iio2

        self.writer = iio2.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                      pixelformat="yuv420p", macro_block_size=8,
                                      ffmpeg_log_level="error")

    def add(self, frame: Image.Image) -> None:
        import numpy as np

        self.writer.append_data(np.asarray(frame.convert("RGB")))

    def close(self) -> None:
        self.writer.close()


def _check_gif(path: Path, frames: int, frame_ms: int, name: str) -> None:
    """The GIF at ``path`` (to become ``name``) reads back and lasts ``frames`` frames.
    (Pillow merges equal consecutive frames into one longer one, so the total duration
    is compared, not the count.)"""
    try:
        with Image.open(path) as gif:
            total = 0
            for index in range(gif.n_frames):
                gif.seek(index)
                total += gif.info.get("duration", 0)
    except Exception as exc:  # any decoder error means a damaged file
        raise MediaCheckFailed(f"{name}: the GIF written does not read back "
                               f"({exc.__class__.__name__})") from None
    if total != frames * (frame_ms // 10 * 10):
        raise MediaCheckFailed(f"{name}: the GIF written lasts {total} ms, not "
                               f"{frames} frames of {frame_ms // 10 * 10} ms")


@functools.cache
def video_unavailable() -> str | None:
    """Why MP4s cannot be written here (None: they can). imageio-ffmpeg brings the
    ffmpeg binary; an offline GPU server may lack the package."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return "MP4 needs imageio-ffmpeg (pip install imageio-ffmpeg)"
    return None


def write_movies(frames: Iterable[Image.Image], gif: Path | None, mp4: Path | None,
                 fps: float) -> list[Path]:
    """A GIF and/or an MP4 of ``frames``, both fed by one pass over them."""
    paths = [p for p in (gif, mp4) if p is not None]

    def write(temporaries: list[Path]) -> None:
        nonlocal count
        streams = [GifStream(tmp, round(1000 / fps)) if tmp.suffix == ".gif" else Mp4Stream(tmp, fps)
                   for tmp in temporaries]
        try:
            for count, frame in enumerate(frames, start=1):
                for stream in streams:
                    stream.add(frame)
        finally:
            for stream in streams:
                stream.close()
        if not count:
            raise BadInput("a GIF or MP4 needs at least one frame")

    def check(tmp: Path, path: Path) -> None:
        if tmp.suffix == ".gif":
            _check_gif(tmp, count, round(1000 / fps), path.name)
        else:
            _check_video(tmp, count, path.name)

    count = 0
    if paths:
        publish_all(paths, write, [lambda tmp, path=path: check(tmp, path) for path in paths])
    return paths


def _check_video(path: Path, frames: int, name: str) -> None:
    """The MP4 at ``path`` (to become ``name``) decodes to ``frames`` frames."""
    import imageio_ffmpeg

    try:
        decoded, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (RuntimeError, OSError) as exc:
        raise MediaCheckFailed(f"{name}: the MP4 written does not read back "
                               f"({exc.__class__.__name__})") from None
    if decoded != frames:
        raise MediaCheckFailed(f"{name}: the MP4 written holds {decoded} frames, "
                               f"not {frames}")


def grid(images: Iterable[Image.Image], count: int, columns: int | None = None) -> Image.Image:
    """``count`` images on one sheet, row by row (each pasted as it is read)."""
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    sheet = None
    for index, image in enumerate(images):
        if sheet is None:
            width, height = image.size
            sheet = Image.new("RGB", (columns * width, rows * height), "black")
        sheet.paste(image, ((index % columns) * width, (index // columns) * height))
    assert sheet is not None, "a grid of no images"
    return sheet


def write_media(session: Any, request: Media, gif: bool, video: bool, fps: float) -> list[Path]:
    """The grid, GIF and/or MP4 a ``Media`` request names, from the session's saved frames,
    each frame read from disk once (nothing holds the whole journey)."""
    frames = _same_size(map(session.read_image, request.frames), request.frames)
    if request.grid:
        path = session.path / "images" / f"{request.name}.png"
        save_png(grid(frames, len(request.frames)), path)
        return [path]
    return write_movies(frames, session.path / "gifs" / f"{request.name}.gif" if gif else None,
                        session.path / "videos" / f"{request.name}.mp4" if video else None, fps)
