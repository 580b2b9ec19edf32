"""Session folders: effective config, frames, embeddings, media and ``session.json``.

A session appears whole or not at all: it is built under a hidden name and renamed
into place. One process writes to it at a time (a lock names the holder). Every
file is written to a unique temporary name, flushed to disk and renamed, and its
checksum is recorded, so a resume can tell a finished frame from a damaged one.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from .config import ExperimentConfig, build_config, read_yaml, to_yaml
from .errors import BadInput, shorten, shown_path
from .files import atomic_write_text, file_digest, is_temporary, publish, unique_suffix

SUBFOLDERS = ("configs", "images", "embeddings", "gifs", "videos")
MANIFEST = "session.json"
CONFIG_NAME = "config.yaml"
LOCK_NAME = ".session.lock"
OWNER_NAME = ".session.owner"
CREATING = ".creating-"


# the session lock ---------------------------------------------------------------------

class SessionLock:
    """One writer per session, across processes and hosts that share the folder.

    The owner (pid, host) is written beside the lock file, not into it: a second
    process opening the lock file truncates it before it finds the lock taken.
    """

    def __init__(self, folder: Path) -> None:
        from filelock import FileLock

        self.folder = folder
        self.lock = FileLock(folder / LOCK_NAME)

    def acquire(self) -> None:
        from filelock import Timeout

        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            raise BadInput(f"session {shown_path(self.folder)} is in use by {self._owner()}; "
                           "wait for it to finish or stop it first") from None
        except OSError as exc:
            raise BadInput(f"session {shown_path(self.folder)}: cannot lock it ({exc.strerror})") from None
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        atomic_write_text(self.folder / OWNER_NAME, json.dumps(owner))

    def release(self) -> None:
        if self.lock.is_locked:
            self.lock.release()

    def held_elsewhere(self) -> bool:
        """Whether another process (or another run in this one) writes the session now."""
        from filelock import Timeout

        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            return True
        except OSError:
            return False  # a read-only folder: nobody can be writing to it
        self.lock.release()
        return False

    def _owner(self) -> str:
        try:
            owner = json.loads((self.folder / OWNER_NAME).read_text(encoding="utf-8"))
            return f"pid {int(owner['pid'])} on {shorten(str(owner['host']), 40)}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"


# sessions -------------------------------------------------------------------------------

@dataclass
class Session:
    path: Path
    manifest: dict[str, Any]
    lock: SessionLock | None = None
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
                "checksums": {},
                **info,
            }
            atomic_write_text(staging / MANIFEST, _dump(manifest))
            path = _rename_into_place(staging, root, _session_name(cfg))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        session = cls(path, manifest, SessionLock(path))
        session.lock.acquire()
        return session

    @classmethod
    def open(cls, path: str | Path) -> "Session":
        """A session's manifest, read and checked (not locked: see ``claim``)."""
        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BadInput(f"{shown_path(path)}: not a session folder (no {MANIFEST})") from None
        except (OSError, ValueError) as exc:
            raise BadInput(f"{shown_path(path / MANIFEST)}: unreadable ({exc.__class__.__name__})") from None
        if not isinstance(manifest, dict):
            raise BadInput(f"{shown_path(path / MANIFEST)}: not a session manifest (expected a JSON object)")
        return cls(path, manifest)

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
        return build_config(read_yaml(cfg_path), source=str(cfg_path))

    @property
    def batch_size(self) -> int:
        value = self.manifest.get("batch_size")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadInput(f"{shown_path(self.path / MANIFEST)}: 'batch_size' must be a whole number ≥ 1 "
                           f"(got {shorten(repr(value))})")
        return value

    def update(self, **fields: Any) -> None:
        with self._guard:
            self.manifest.update(fields)
            self._save()

    def add_time(self, key: str, seconds: float) -> None:
        """Add to one of the manifest's timings (stored with the next update)."""
        with self._guard:
            timings = self.manifest.get("timings")
            timings = dict(timings) if isinstance(timings, dict) else {}
            before = timings.get(key)
            before = before if isinstance(before, (int, float)) else 0.0
            timings[key] = round(before + seconds, 3)
            self.manifest["timings"] = timings

    def _save(self) -> None:
        self.manifest["updated"] = time.time()
        atomic_write_text(self.path / MANIFEST, _dump(self.manifest))

    # frames ---------------------------------------------------------------
    def image_path(self, name: str) -> Path:
        return self.path / "images" / f"{name}.png"

    def embedding_path(self, name: str) -> Path:
        return self.path / "embeddings" / f"{name}.safetensors"

    def has_frame(self, name: str) -> bool:
        return self.image_path(name).is_file() and self.embedding_path(name).is_file()

    def write_frame(self, name: str, image: Image.Image, prompt_embed, latent_noise,
                    image_embed) -> Path:
        from .latents import save_embedding

        # The embedding goes first: a frame counts as done once its PNG exists.
        save_embedding(self.embedding_path(name), prompt_embed, latent_noise, image_embed)
        self.record(self.embedding_path(name))
        self.write_image(name, image)
        return self.image_path(name)

    def write_image(self, name: str, image: Image.Image) -> None:
        from .media import save_png

        save_png(image, self.image_path(name))
        self.record(self.image_path(name))

    def copy_frame(self, source: str, target: str) -> None:
        for make in (self.embedding_path, self.image_path):
            publish(make(target), lambda tmp, src=make(source): shutil.copyfile(src, tmp))
            self.record(make(target))

    def record(self, file: Path) -> None:
        """Note a published file's checksum; it is stored with the next manifest update."""
        with self._guard:
            self.manifest.setdefault("checksums", {})[self._key(file)] = file_digest(file)

    def _key(self, file: Path) -> str:
        return file.relative_to(self.path).as_posix()

    def read_image(self, name: str) -> Image.Image:
        with Image.open(self.image_path(name)) as image:
            return image.convert("RGB")

    def read_embedding(self, name: str):
        from .latents import load_embedding

        return load_embedding(self.embedding_path(name))

    # resume -----------------------------------------------------------------
    def verify(self) -> list[str]:
        """Before a resume: remove leftover temporary files and every frame file whose
        bytes do not match the checksum recorded when it was written; a file written
        just before a stop, whose checksum never reached the manifest, is kept if it
        reads back whole. Returns the relative paths removed."""
        recorded: dict[str, str] = self.manifest.setdefault("checksums", {})
        if not isinstance(recorded, dict):
            recorded = self.manifest["checksums"] = {}
        removed = []
        for sub in ("images", "embeddings", "gifs", "videos"):
            for file in sorted((self.path / sub).iterdir()) if (self.path / sub).is_dir() else ():
                key = self._key(file)
                if is_temporary(file):
                    file.unlink()
                elif not file.is_file():
                    continue
                elif key in recorded:
                    if file_digest(file) == recorded[key]:
                        continue
                    file.unlink()
                    del recorded[key]
                    removed.append(key)
                    continue
                elif _reads_back(file):
                    recorded[key] = file_digest(file)
                    continue
                else:
                    file.unlink()
                    removed.append(key)
        for key in [k for k in recorded if not (self.path / k).is_file()]:
            del recorded[key]
        return removed


def stored_count(manifest: dict[str, Any], key: str) -> int | None:
    """A count from a manifest that may have been edited or damaged; None when unusable."""
    value = manifest.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _reads_back(file: Path) -> bool:
    """Whether a file without a recorded checksum is whole (only frames and their
    embeddings are checked; media are written again at the end of every run)."""
    if file.suffix == ".png":
        try:
            with Image.open(file) as image:
                image.load()
            return True
        except Exception:  # any decoder error means a damaged file
            return False
    if file.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(file), framework="numpy") as handle:
                for name in handle.keys():
                    handle.get_tensor(name)
            return True
        except Exception:  # safetensors raises several kinds for a damaged file
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
