"""Reading, listing and removing files inside a session folder without trusting them.

A session folder can come from anywhere (a copy, an archive, a shared disk), and
nothing in it is taken to be what its name says: a symlink would have lse read
``/dev/zero`` or delete and overwrite files outside the session, a FIFO would block
a read forever, a small PNG header can announce a 30000² image. So every file lse
reads, lists or removes inside a session goes through this module: opened with
``O_NOFOLLOW`` (a link is refused, never followed) and ``O_NONBLOCK`` (a FIFO cannot
block the open), checked with ``fstat`` to be a regular file, and read only up to a
size bound. A file that fails is a ``BadInput`` naming it, so a session holding one
is refused in one line.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from .errors import BadInput, shown_path

# Past these a file in a session is not one lse wrote.
MAX_IMAGE_BYTES = 256 * 2**20
MAX_IMAGE_PIXELS = 64 * 2**20  # a 4096² frame is 16 MP; a visualize grid can be larger
MAX_EMBEDDING_BYTES = 256 * 2**20
_CHUNK = 2**20


def kind(mode: int) -> str:
    """What a file that is not a regular file is, for a message."""
    if stat.S_ISLNK(mode):
        return "a symbolic link (lse never follows links inside a session)"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_folder(path: Path) -> None:
    """``path`` is a real folder, not a link to one."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise BadInput(f"{shown_path(path)}: missing") from None
    except OSError as exc:
        raise BadInput(f"{shown_path(path)}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISDIR(mode):
        raise BadInput(f"{shown_path(path)}: is {kind(mode)}, not a folder")


def regular_files(folder: Path) -> Iterator[os.DirEntry[str]]:
    """The entries of a real folder, each a regular file (anything else is refused)."""
    require_folder(folder)
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                # The type comes from the directory listing itself: no stat per file.
                if not entry.is_file(follow_symlinks=False):
                    mode = entry.stat(follow_symlinks=False).st_mode
                    raise BadInput(f"{shown_path(entry.path)}: is {kind(mode)}")
                yield entry
    except OSError as exc:
        raise BadInput(f"{shown_path(folder)}: cannot list it ({exc.strerror})") from None


def require_regular(path: Path, missing_ok: bool = False) -> os.stat_result | None:
    """``path``'s own status when it is a regular file (None when it is missing and that is fine)."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise BadInput(f"{shown_path(path)}: missing") from None
    except OSError as exc:
        raise BadInput(f"{shown_path(path)}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(status.st_mode):
        raise BadInput(f"{shown_path(path)}: is {kind(status.st_mode)}")
    return status


def _open(path: Path, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """A descriptor of the regular file ``path`` itself (never of what a link points to)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if os.path.islink(path):
            raise BadInput(f"{shown_path(path)}: is {kind(stat.S_IFLNK)}") from None
        raise BadInput(f"{shown_path(path)}: cannot open it ({exc.strerror})") from None
    mode_now = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode_now):
        os.close(fd)
        raise BadInput(f"{shown_path(path)}: is {kind(mode_now)}")
    return fd


def _check_size(path: Path, fd: int, limit: int) -> None:
    if os.fstat(fd).st_size > limit:
        raise BadInput(f"{shown_path(path)}: larger than {limit:,} bytes; not a file lse wrote")


def open_binary(path: Path, limit: int) -> BinaryIO:
    """A regular file opened for reading, refused when it holds more than ``limit`` bytes
    (the caller bounds each read too)."""
    fd = _open(path)
    try:
        _check_size(path, fd, limit)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_bytes(path: Path, limit: int) -> bytes:
    """The whole regular file, refused when it holds more than ``limit`` bytes."""
    fd = _open(path)
    try:
        _check_size(path, fd, limit)
        chunks, total = [], 0
        while chunk := os.read(fd, min(_CHUNK, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise BadInput(f"{shown_path(path)}: larger than {limit:,} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: Path, limit: int) -> str:
    try:
        return read_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{shown_path(path)}: not UTF-8 text") from None


def digest(path: Path) -> tuple[str, os.stat_result]:
    """The file's checksum and its status, both from one open descriptor."""
    fd = _open(path)
    try:
        with os.fdopen(os.dup(fd), "rb") as handle:
            checksum = hashlib.file_digest(handle, "blake2b").hexdigest()[:32]
        return checksum, os.fstat(fd)
    finally:
        os.close(fd)


def read_image(path: Path) -> Any:
    """A PNG (or other image) as RGB, its pixel count checked before it is decoded."""
    from PIL import Image

    data = read_bytes(path, MAX_IMAGE_BYTES)
    too_large = BadInput(f"{shown_path(path)}: an image of over {MAX_IMAGE_PIXELS:,} pixels; "
                         "not a frame lse wrote")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise too_large
            return image.convert("RGB")
    except Image.DecompressionBombError:  # PIL's own, lower bound on opening
        raise too_large from None
    except BadInput:
        raise
    except Exception as exc:  # PIL raises many kinds for a damaged file
        raise BadInput(f"{shown_path(path)}: not a readable image ({exc.__class__.__name__})") from None


def image_size(path: Path) -> tuple[int, int]:
    """An image's size from its header alone (nothing is decoded)."""
    from PIL import Image

    with open_binary(path, MAX_IMAGE_BYTES) as handle:
        try:
            with Image.open(handle) as image:
                return image.size
        except Exception as exc:  # PIL raises many kinds for a damaged file
            raise BadInput(f"{shown_path(path)}: not a readable image "
                           f"({exc.__class__.__name__})") from None


def read_tensors(path: Path) -> dict[str, Any]:
    """A ``.safetensors`` file's tensors, read from bounded bytes."""
    from safetensors.torch import load

    data = read_bytes(path, MAX_EMBEDDING_BYTES)
    try:
        return load(data)
    except Exception as exc:  # safetensors raises several kinds for a damaged file
        raise BadInput(f"{shown_path(path)}: not a readable embedding file "
                       f"({exc.__class__.__name__})") from None


def remove(path: Path) -> None:
    """Delete a regular file (a link or anything else is refused, never deleted)."""
    if require_regular(path, missing_ok=True) is not None:
        path.unlink(missing_ok=True)


def append(path: Path, data: bytes) -> None:
    """Append to a regular file (created if missing) and flush it to disk."""
    fd = _open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_descriptor(path: Path, create: bool) -> int | None:
    """An open descriptor of a lock file (None: it does not exist and ``create`` is off)."""
    try:
        return _open(path, os.O_RDWR | os.O_CREAT if create else os.O_RDONLY)
    except FileNotFoundError:
        return None
