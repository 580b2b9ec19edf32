"""GIFs, MP4s and grids from saved frames, each written atomically."""

from __future__ import annotations

import math
import os
from pathlib import Path

from PIL import Image


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def save_png(image: Image.Image, path: Path) -> None:
    tmp = _tmp(path)
    try:
        image.save(tmp, format="PNG")
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_gif(frames: list[Image.Image], path: Path, frame_ms: int) -> Path:
    import imageio.v3 as iio
    import numpy as np

    tmp = _tmp(path)
    iio.imwrite(tmp, np.stack([np.asarray(f.convert("RGB")) for f in frames]),
                extension=".gif", duration=frame_ms, loop=0)
    os.replace(tmp, path)
    return path


def write_mp4(frames: list[Image.Image], path: Path, fps: float) -> Path:
    """H.264 through imageio-ffmpeg; sizes are multiples of 8, so no padding is needed."""
    import imageio.v2 as iio2
    import numpy as np

    tmp = _tmp(path)
    writer = iio2.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                             pixelformat="yuv420p", macro_block_size=8,
                             ffmpeg_log_level="error")
    try:
        for frame in frames:
            writer.append_data(np.asarray(frame.convert("RGB")))
    finally:
        writer.close()
    os.replace(tmp, path)
    return path


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
