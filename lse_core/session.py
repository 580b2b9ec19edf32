"""Session folders: effective config, frames, embeddings, media, ``session.json`` and
the ``frames.jsonl`` journal.

A session appears whole or not at all: it is built under a hidden name and renamed
into place. One process writes to it at a time (a lock names the holder). Every
file is written to a unique temporary name, flushed to disk and renamed, and its
checksum is recorded in the journal, so a resume can tell a finished frame from a
damaged one. Nothing inside a session is trusted: every file is read, listed and
removed through ``safe_files`` (no links followed, only regular files, bounded
reads), and ``session.json`` is checked by ``manifest`` when the session is opened.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from PIL import Image

from . import safe_files
from .config import MAX_CONFIG_BYTES, ExperimentConfig, build_config, parse_yaml, to_yaml
from .errors import BadInput, shorten, shown_path
from .files import atomic_write_text, is_temporary, publish, publish_all, unique_suffix
from .frames import FrameRecord, in_story_order
from .journal import (JOURNAL, FileSum, JournalIndex, append_lines, file_line, frame_line,
                      media_line, read_journal, rewrite)
from .manifest import MAX_MANIFEST_BYTES, parse_manifest

SUBFOLDERS = ("configs", "images", "embeddings", "gifs", "videos")
FRAME_FOLDERS = ("images", "embeddings", "gifs", "videos")
MANIFEST = "session.json"
CONFIG_NAME = "config.yaml"
LOCK_NAME = ".session.lock"
OWNER_NAME = ".session.owner"
CREATING = ".creating-"


@dataclass
class FrameFiles:
    """What is saved of one rendered frame: its PNG and its embedding file."""

    record: FrameRecord
    image: Image.Image
    prompt_embed: Any
    latent_noise: Any
    image_embed: Any


# the session lock ---------------------------------------------------------------------

class SessionLock:
    """One writer per session, across processes and hosts that share the folder.

    An ``flock`` on ``.session.lock``, written here rather than with ``filelock``:
    that library opens the lock file following links (a crafted session could have
    it truncate a file elsewhere) and creates it even to test whether it is held,
    and listing sessions must create nothing. The owner (pid, host) is written
    beside the lock file.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = safe_files.lock_descriptor(self.path, create=True)
        except OSError as exc:
            raise BadInput(f"session {shown_path(self.folder)}: cannot lock it ({exc.strerror})") from None
        assert fd is not None
        if not _try_lock(fd):
            os.close(fd)
            raise BadInput(f"session {shown_path(self.folder)} is in use by {self._owner()}; "
                           "wait for it to finish or stop it first")
        self._fd = fd
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        atomic_write_text(self.folder / OWNER_NAME, json.dumps(owner))

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def held_elsewhere(self) -> bool:
        """Whether another process (or another run in this one) writes the session now;
        creates nothing (a session without a lock file has never been locked)."""
        try:
            fd = safe_files.lock_descriptor(self.path, create=False)
        except BadInput:
            return False
        if fd is None:
            return False
        try:
            return not _try_lock(fd)
        finally:
            os.close(fd)  # releases the lock if this probe took it

    def _owner(self) -> str:
        try:
            owner = json.loads(safe_files.read_text(self.folder / OWNER_NAME, 4096))
            return f"pid {int(owner['pid'])} on {shorten(str(owner['host']), 40)}"
        except (BadInput, ValueError, KeyError, TypeError):
            return "another process"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


# sessions -------------------------------------------------------------------------------

@dataclass
class Session:
    """An open session. ``keeps_records``: this process records checksums and frames
    (off for the other ranks of a torchrun launch: rank 0 records what they write)."""

    path: Path
    manifest: dict[str, Any]
    lock: SessionLock | None = None
    keeps_records: bool = True
    _pending: list[bytes] = field(default_factory=list, repr=False)
    _index: JournalIndex | None = field(default=None, repr=False)
    _done: set[str] = field(default_factory=set, repr=False)  # frames found whole by verify()
    repairs: list[str] = field(default_factory=list, repr=False)  # what verify() found wrong
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def create(cls, cfg: ExperimentConfig, info: dict[str, Any]) -> "Session":
        """A new, locked session: built under a hidden name, then renamed into place."""
        root = Path(cfg.output_path).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_creations(root)
        staging = root / f"{CREATING}{unique_suffix()}"
        staging.mkdir()
        try:
            for sub in SUBFOLDERS:
                (staging / sub).mkdir()
            atomic_write_text(staging / "configs" / CONFIG_NAME, to_yaml(cfg))
            now = time.time()
            manifest = {
                "model_identifier": cfg.model_identifier,
                "exp_identifier": cfg.exp_identifier,
                "state": "running",
                "created": now,
                "updated": now,
                "frames_done": 0,
                **info,
            }
            atomic_write_text(staging / MANIFEST, _dump(manifest))
            path = _rename_into_place(staging, root, _session_name(cfg))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        session = cls(path, manifest, SessionLock(path), _index=JournalIndex())
        session.lock.acquire()
        return session

    @classmethod
    def open(cls, path: str | Path) -> "Session":
        """A session's manifest, read and checked, and its folders checked to hold only
        regular files (not locked: see ``claim``)."""
        path = Path(path)
        manifest_path = path / MANIFEST
        if not os.path.lexists(manifest_path):
            raise BadInput(f"{shown_path(path)}: not a session folder (no {MANIFEST})")
        check_layout(path)
        text = safe_files.read_text(manifest_path, MAX_MANIFEST_BYTES)
        return cls(path, parse_manifest(text, shown_path(manifest_path)))

    def claim(self) -> "Session":
        """Lock the session for writing, or say who holds it."""
        self.lock = SessionLock(self.path)
        self.lock.acquire()
        return self

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def in_use(self) -> bool:
        return SessionLock(self.path).held_elsewhere()

    def config(self) -> ExperimentConfig:
        cfg_path = self.path / "configs" / CONFIG_NAME
        return build_config(read_config_values(self.path), source=str(cfg_path))

    @property
    def batch_size(self) -> int:
        return self.manifest["batch_size"]  # checked by parse_manifest

    @property
    def finished(self) -> bool:
        return self.manifest.get("state") == "done"

    # session.json and the journal ------------------------------------------------------
    def update(self, **fields: Any) -> None:
        """Store ``fields`` in session.json, after appending the journal lines waiting
        since the last update: both cost the same whatever the journey's length."""
        with self._guard:
            self._append_pending()
            self.manifest.update(fields)
            self.manifest["updated"] = time.time()
            atomic_write_text(self.path / MANIFEST, _dump(self.manifest))

    def save_journal(self) -> None:
        """Append the journal lines waiting since the last update; session.json stays."""
        with self._guard:
            self._append_pending()

    def _append_pending(self) -> None:
        if self._pending:
            append_lines(self.path / JOURNAL, self._pending)
            self._pending.clear()

    def add_time(self, key: str, seconds: float) -> None:
        """Add to one of the manifest's timings (stored with the next update)."""
        with self._guard:
            timings = self.manifest.get("timings")
            timings = dict(timings) if isinstance(timings, dict) else {}
            before = timings.get(key)
            before = before if isinstance(before, (int, float)) else 0.0
            timings[key] = round(before + seconds, 3)
            self.manifest["timings"] = timings

    @property
    def index(self) -> JournalIndex:
        """The journal's frames, checksums and media (read once, kept up to date)."""
        if self._index is None:
            self._index = read_journal(self.path / JOURNAL)
        return self._index

    def record(self, file: Path) -> None:
        """Note a published file's checksum; it reaches the journal with the next update.
        (Nothing recorded is kept in memory: a long run's memory does not grow with it.)"""
        if self.keeps_records:
            checksum, status = safe_files.digest(file)
            self._note(file_line(self._key(file), FileSum.of(checksum, status)))

    def record_frame(self, record: FrameRecord, unless_known: bool = False) -> None:
        """Note a frame's record; ``unless_known``: not when the journal read at the
        start of this resume has it already (a frame found on disk)."""
        if self.keeps_records and not (unless_known and self.index.frames.get(record.name) == record):
            self._note(frame_line(record))

    def record_media(self, entry: dict[str, Any]) -> None:
        if self.keeps_records:
            self._note(media_line(entry))

    def _note(self, line: bytes) -> None:
        with self._guard:
            self._pending.append(line)

    def _key(self, file: Path) -> str:
        return file.relative_to(self.path).as_posix()

    def frames(self) -> list[FrameRecord]:
        """The session's frames in story order: from the journal, or for a session made
        before frames were recorded, derived from its manifest (see ``_legacy_frames``)."""
        on_disk = {entry.name.removesuffix(".png") for entry in self._folder_files("images")
                   if entry.name.endswith(".png") and not is_temporary(Path(entry.name))}
        recorded = [r for r in self.index.frames.values() if r.name in on_disk]
        if recorded or not on_disk:
            return in_story_order(recorded)
        return _legacy_frames(self.manifest, on_disk)

    def stored_media(self) -> list[Any]:
        """Media entries, unchecked (``media.media_entries`` checks them): those that
        session.json lists in a session made before the journal, then the journal's
        (a name in both: the journal's)."""
        legacy = self.manifest.get("media", [])
        if not isinstance(legacy, list):
            return legacy
        journal = self.index.media
        return [m for m in legacy if not (isinstance(m, dict) and m.get("name") in journal)] + list(
            journal.values())

    # frames ---------------------------------------------------------------
    def image_path(self, name: str) -> Path:
        return self.path / "images" / f"{name}.png"

    def embedding_path(self, name: str) -> Path:
        return self.path / "embeddings" / f"{name}.safetensors"

    def has_frame(self, name: str) -> bool:
        """Whether ``name``'s PNG and embedding were found whole by ``verify`` (or, on
        another rank, are in the journal rank 0 wrote after verifying)."""
        return name in self._done

    def load_verified(self) -> None:
        """The frames whole on disk, as the journal lists them (right after ``verify``)."""
        files = self.index.files
        self._done = {key[len("images/"):-len(".png")] for key in files
                      if key.startswith("images/") and key.endswith(".png")
                      and f"embeddings/{key[len('images/'):-len('.png')]}.safetensors" in files}

    def write_frames(self, frames: list[FrameFiles]) -> None:
        """Frames' embeddings and PNGs, published together: flushed to disk at once, which
        costs about one flush instead of two per frame. Each frame's embedding appears
        before its PNG: a frame counts as done once its PNG exists."""
        from .latents import write_embedding

        paths = [path for frame in frames for path in (self.embedding_path(frame.record.name),
                                                       self.image_path(frame.record.name))]

        def write(temporaries: list[Path]) -> None:
            for frame, (embedding, image) in zip(frames, zip(temporaries[::2], temporaries[1::2])):
                write_embedding(embedding, frame.prompt_embed, frame.latent_noise,
                                frame.image_embed, shown=self.embedding_path(frame.record.name))
                frame.image.save(image, format="PNG")

        publish_all(paths, write)
        for frame in frames:
            self.record(self.embedding_path(frame.record.name))
            self.record(self.image_path(frame.record.name))
            self.record_frame(frame.record)

    def write_image(self, record: FrameRecord, image: Image.Image) -> None:
        from .media import save_png

        save_png(image, self.image_path(record.name))
        self.record(self.image_path(record.name))
        self.record_frame(record)

    def copy_frame(self, source: str, target: FrameRecord) -> None:
        for make in (self.embedding_path, self.image_path):
            data = safe_files.read_bytes(make(source), safe_files.MAX_EMBEDDING_BYTES)
            publish(make(target.name), lambda tmp, data=data: tmp.write_bytes(data))
            self.record(make(target.name))
        self.record_frame(target)

    def read_image(self, name: str) -> Image.Image:
        return safe_files.read_image(self.image_path(name))

    def read_embedding(self, name: str):
        from .latents import EMBEDDING_KEYS

        tensors = safe_files.read_tensors(self.embedding_path(name))
        return {k: v.float() for k, v in tensors.items() if k in EMBEDDING_KEYS}

    def _folder_files(self, sub: str) -> Iterable[os.DirEntry[str]]:
        folder = self.path / sub
        return safe_files.regular_files(folder) if os.path.lexists(folder) else ()

    # resume -----------------------------------------------------------------
    def verify(self) -> list[str]:
        """Before a resume: remove leftover temporary files and every file whose bytes do
        not match the checksum recorded when it was written (a file whose size, times and
        inode are as recorded is not read again); a file written just before a stop, whose
        checksum never reached the journal, is kept if it reads back whole. When anything
        changed the journal is written afresh (a session from before the journal gets
        one). Returns the relative paths removed; ``repairs`` lists them with the recorded
        files that are gone."""
        index = self.index
        legacy = self.manifest.pop("checksums", None) or {}
        for key, checksum in legacy.items():
            index.files.setdefault(key, FileSum(checksum))
        before = dict(index.files)
        removed, present = [], set()
        for sub in FRAME_FOLDERS:
            for entry in list(self._folder_files(sub)):
                file = Path(entry.path)
                key = f"{sub}/{entry.name}"
                if is_temporary(file):
                    safe_files.remove(file)
                elif self._whole(key, file, entry.stat(follow_symlinks=False)):
                    present.add(key)
                else:
                    safe_files.remove(file)
                    index.files.pop(key, None)
                    removed.append(key)
        gone = [key for key in before if key not in present and key not in removed]
        index.files = {k: v for k, v in index.files.items() if k in present}
        self.repairs = sorted(removed + gone)
        if legacy or index.torn or index.files != before:
            rewrite(self.path / JOURNAL, index)
            index.torn = False
        self.load_verified()
        return sorted(removed)

    def _whole(self, key: str, file: Path, status: os.stat_result) -> bool:
        recorded = self.index.files.get(key)
        if recorded is not None and recorded.unchanged(status):
            return True
        if recorded is None and not _reads_back(file):
            return False
        checksum, status = safe_files.digest(file)
        if recorded is not None and checksum != recorded.checksum:
            return False
        self.index.files[key] = FileSum.of(checksum, status)
        return True


def read_config_values(path: Path) -> dict[str, Any]:
    """A session's stored config as a mapping of keys (read without following links)."""
    cfg_path = path / "configs" / CONFIG_NAME
    return parse_yaml(safe_files.read_text(cfg_path, MAX_CONFIG_BYTES), cfg_path)


def check_layout(path: Path) -> None:
    """Every part of a session is what lse made: real folders holding regular files.
    A link or a FIFO anywhere in it refuses the whole session (lse neither follows nor
    deletes what it did not make); the session folder itself is the one the user named."""
    if not path.is_dir():
        raise BadInput(f"{shown_path(path)}: not a session folder")
    for name in (MANIFEST, JOURNAL, LOCK_NAME, OWNER_NAME):
        safe_files.require_regular(path / name, missing_ok=name != MANIFEST)
    safe_files.require_folder(path / "configs")
    safe_files.require_regular(path / "configs" / CONFIG_NAME)
    for sub in FRAME_FOLDERS:
        if os.path.lexists(path / sub):
            for _ in safe_files.regular_files(path / sub):
                pass


def stored_count(manifest: dict[str, Any], key: str) -> int | None:
    """A count from a manifest that may have been edited or damaged; None when unusable."""
    value = manifest.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _legacy_frames(manifest: dict[str, Any], on_disk: set[str]) -> list[FrameRecord]:
    """Frames of a session made before frames were recorded (a resume records them).

    Their order is the story its media tell — each GIF lists its frames in the order
    it shows them, and a diffevolution's lineage gives its parents — then any frame no
    GIF shows, by name. The labels number the frames; the file name stays in the
    preview's caption. No file name is parsed."""
    order: list[str] = []
    lineage = (manifest.get("diffevolution") or {}).get("lineage") or []
    parents = {node["id"]: node["name"] for node in lineage}
    parent_of = {node["name"]: parents.get(node["parent"]) for node in lineage}
    order += [node["name"] for node in lineage]
    media = manifest.get("media")
    for entry in media if isinstance(media, list) else ():
        frames = entry.get("frames") if isinstance(entry, dict) else None
        order += [n for n in frames if isinstance(n, str)] if isinstance(frames, list) else []
        if isinstance(entry, dict) and entry.get("grid") and isinstance(entry.get("name"), str):
            order.append(entry["name"])
    seen: dict[str, None] = dict.fromkeys(n for n in order if n in on_disk)
    seen.update(dict.fromkeys(sorted(on_disk - set(seen))))
    return [FrameRecord(name, i, f"frame {i}", "frame", parent_of.get(name))
            for i, name in enumerate(seen)]


def _reads_back(file: Path) -> bool:
    """Whether a file without a recorded checksum is whole (only frames and their
    embeddings are checked; media are written again at the end of every run)."""
    try:
        if file.suffix == ".png":
            safe_files.read_image(file)
        elif file.suffix == ".safetensors":
            safe_files.read_tensors(file)
    except BadInput:
        return False
    return True


def _dump(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, default=str)


def _session_name(cfg: ExperimentConfig) -> str:
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return f"{stamp}_{cfg.model_identifier}_{cfg.exp_identifier}"


def _rename_into_place(staging: Path, root: Path, base: str) -> Path:
    """The first free name of ``base``, ``base_2`` …; renaming fails on a taken name, so
    two runs started in the same second never share a folder."""
    n = 1
    while True:
        path = root / (base if n == 1 else f"{base}_{n}")
        if not path.exists():
            try:
                os.rename(staging, path)
                return path
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                    raise
        n += 1


def _remove_abandoned_creations(root: Path) -> None:
    """Folders of session creations on this host whose process is gone (killed mid-way)."""
    host = socket.gethostname()
    for folder in root.glob(f"{CREATING}{host}-*"):
        pid = folder.name.removeprefix(f"{CREATING}{host}-").split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
