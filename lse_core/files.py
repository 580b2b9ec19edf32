"""Files that appear whole or not at all, and their checksums."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

# Temporary files being written now: a process that must exit at once removes them.
_unpublished: set[Path] = set()
# Files flushed from several threads at once are committed together by the filesystem
# (ext4 here: 16 small files in 10–50 ms, against 90–145 ms one after another).
_FLUSHERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lse-fsync")


def publish(path: Path, write: Callable[[Path], None],
            check: Callable[[Path], None] | None = None) -> None:
    """Write ``path`` through ``write(temporary path)``, then make it appear whole.

    ``check(temporary path)`` may refuse what was written (by raising): the file at
    ``path``, if any, is then left as it was.

    The temporary name is unique per call (two writers never share one), keeps the
    suffix (image and video writers choose their format by it), and is flushed to
    disk before the rename; the folder is flushed after it, so the rename survives
    a power cut too.
    """
    publish_all([path], lambda temporaries: write(temporaries[0]),
                None if check is None else [check])


def publish_all(paths: list[Path], write: Callable[[list[Path]], None],
                checks: list[Callable[[Path], None] | None] | None = None) -> None:
    """``publish`` for several files written together (a GIF and an MP4 fed by one
    pass over the frames, a batch's frames); each appears whole, once all are written,
    checked and flushed, in the order of ``paths``."""
    temporaries = [path.with_name(f".{path.stem}.{unique_suffix()}.tmp{path.suffix}")
                   for path in paths]
    _unpublished.update(temporaries)
    try:
        for tmp in temporaries:
            # Created here (not by mkstemp) so that the file gets the umask's usual permissions.
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        write(temporaries)
        for tmp, check in zip(temporaries, checks or []):
            if check is not None:
                check(tmp)
        _fsync_files(temporaries)
        for tmp, path in zip(temporaries, paths):
            os.replace(tmp, path)
    except BaseException:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _unpublished.difference_update(temporaries)
    for folder in dict.fromkeys(path.parent for path in paths):
        _fsync(folder, os.O_RDONLY | os.O_DIRECTORY)


def remove_unpublished() -> None:
    """Delete the temporary files of the writes in progress (before an immediate exit)."""
    for tmp in list(_unpublished):
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def unique_suffix() -> str:
    """Unique among the writers of one folder, across processes and hosts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def _fsync_files(files: list[Path]) -> None:
    if len(files) == 1:
        _fsync(files[0], os.O_RDONLY)
        return
    for done in [_FLUSHERS.submit(_fsync, file, os.O_RDONLY) for file in files]:
        done.result()


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    publish(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def is_temporary(path: Path) -> bool:
    """A file some writer had not yet published when it was stopped."""
    return path.name.startswith(".") and ".tmp" in path.name


def file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()[:32]
