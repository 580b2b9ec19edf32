"""GIFs, MP4s and grids from saved frames, each written atomically."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import BadInput, shorten, shown_path
from .files import publish

# A frame or media name is one plain file name inside the session's folders.
_NAME = re.compile(r"\w[\w.,+-]*")

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
    """A GIF (and MP4 when ``video``) from saved frames, or a grid PNG when ``grid``."""

    name: str
    frames: list[str]
    video: bool = False
    grid: bool = False


def media_entries(session: Any) -> list[Media]:
    """The media a session's manifest lists, refusing any entry that is malformed or
    names a file outside the session (the manifest is a file anyone can edit)."""
    entries = session.manifest.get("media", [])
    where = shown_path(session.path / "session.json")
    if not isinstance(entries, list):
        raise BadInput(f"{where}: 'media' must be a list")
    result = []
    for index, entry in enumerate(entries):
        known = {f.name for f in fields(Media)}
        if not isinstance(entry, dict) or set(entry) - known or not {"name", "frames"} <= set(entry):
            raise BadInput(f"{where}: media entry {index} must have the keys name, frames "
                           "(and optionally video, grid)")
        frames = entry["frames"]
        names = [entry["name"], *frames] if isinstance(frames, list) else [frames]
        for name in names:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
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


def write_gif(frames: list[Image.Image], path: Path, frame_ms: int) -> Path:
    import imageio.v3 as iio
    import numpy as np

    stacked = np.stack([np.asarray(f.convert("RGB")) for f in frames])
    publish(path, lambda tmp: iio.imwrite(tmp, stacked, extension=".gif", duration=frame_ms,
                                          loop=0),
            check=lambda tmp: _check_gif(tmp, len(frames), frame_ms, path.name))
    return path


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


def write_mp4(frames: list[Image.Image], path: Path, fps: float) -> Path:
    """H.264 through imageio-ffmpeg; sizes are multiples of 8, so no padding is needed."""
    import imageio.v2 as iio2
    import numpy as np

    def write(tmp: Path) -> None:
        writer = iio2.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                 pixelformat="yuv420p", macro_block_size=8,
                                 ffmpeg_log_level="error")
        try:
            for frame in frames:
                writer.append_data(np.asarray(frame.convert("RGB")))
        finally:
            writer.close()

    publish(path, write, check=lambda tmp: _check_video(tmp, len(frames), path.name))
    return path


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


def grid(images: list[Image.Image], columns: int | None = None) -> Image.Image:
    """All images on one sheet, row by row."""
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    width, height = images[0].size
    sheet = Image.new("RGB", (columns * width, rows * height), "black")
    for index, image in enumerate(images):
        sheet.paste(image, ((index % columns) * width, (index // columns) * height))
    return sheet


def write_media(session, request, gif: bool, video: bool, fps: float) -> list[Path]:
    """The grid, GIF and/or MP4 a ``Media`` request names, from the session's saved frames."""
    frames = [session.read_image(name) for name in request.frames]
    if request.grid:
        path = session.path / "images" / f"{request.name}.png"
        save_png(grid(frames), path)
        return [path]
    paths = []
    if gif:
        frame_ms = round(1000 / fps)
        paths.append(write_gif(frames, session.path / "gifs" / f"{request.name}.gif", frame_ms))
    if video:
        paths.append(write_mp4(frames, session.path / "videos" / f"{request.name}.mp4", fps))
    return paths
