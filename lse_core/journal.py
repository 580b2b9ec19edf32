"""``frames.jsonl``: the part of a session's manifest that grows with the journey.

``session.json`` holds what changes in place and stays small (state, counts,
timings), so rewriting it after each batch costs the same at frame 10 and at frame
100,000. Everything that grows with the journey is appended here instead, one JSON
object per line, once per batch:

    {"frame": {"name": …, "position": …, "label": …, "role": …, "parent": …}}
    {"file": "images/x.png", "sum": [checksum, size, mtime_ns, ctime_ns, inode]}
    {"media": {"name": …, "frames": […], "video": …, "grid": …}}

A later line about the same frame, file or media replaces an earlier one. A kill -9
or a power cut can leave the last line torn; readers skip a last line that has no
newline or does not parse, and a resume rewrites the journal whole (without it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import safe_files
from .errors import BadInput, shown_path
from .files import publish
from .frames import FrameRecord

JOURNAL = "frames.jsonl"
MAX_JOURNAL_BYTES = 2**30
MAX_LINE_BYTES = 64 * 2**20  # a media line lists every frame of a long journey's GIF


@dataclass(frozen=True, slots=True)
class FileSum:
    """A published file's checksum, and its status when it was recorded: a file whose
    size, times and inode are unchanged is taken as unchanged without reading it (as
    git does); the change time cannot be set back by anyone but the kernel."""

    checksum: str
    size: int | None = None
    mtime_ns: int | None = None
    ctime_ns: int | None = None
    inode: int | None = None

    @classmethod
    def of(cls, checksum: str, status: os.stat_result) -> "FileSum":
        return cls(checksum, status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)

    def unchanged(self, status: os.stat_result) -> bool:
        return self.size is not None and (self.size, self.mtime_ns, self.ctime_ns, self.inode) == (
            status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)

    def as_json(self) -> list[Any]:
        return [self.checksum, self.size, self.mtime_ns, self.ctime_ns, self.inode]

    @classmethod
    def from_json(cls, data: Any) -> "FileSum":
        if isinstance(data, str):  # a checksum alone, as session.json kept them before
            return cls(data)
        if (not isinstance(data, list) or len(data) != 5 or not isinstance(data[0], str)
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in data[1:])):
            raise ValueError("a file's checksum entry is not [checksum, size, mtime, ctime, inode]")
        return cls(*data)


@dataclass
class JournalIndex:
    """What a journal says, the last line about each thing winning."""

    frames: dict[str, FrameRecord] = field(default_factory=dict)
    files: dict[str, FileSum] = field(default_factory=dict)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)  # checked by media.media_entries
    torn: bool = False  # the last line was cut short (a resume writes the journal afresh)

    def lines(self) -> bytes:
        """The whole index as journal lines (a resume writes the journal afresh)."""
        return b"".join([
            *(frame_line(r) for r in self.frames.values()),
            *(file_line(key, s) for key, s in self.files.items()),
            *(media_line(m) for m in self.media.values()),
        ])


def frame_line(record: FrameRecord) -> bytes:
    return _line({"frame": record.as_json()})


def file_line(key: str, checksum: FileSum) -> bytes:
    return _line({"file": key, "sum": checksum.as_json()})


def media_line(entry: dict[str, Any]) -> bytes:
    return _line({"media": entry})


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def read_journal(path: Path) -> JournalIndex:
    """The journal's index (empty when there is none yet). A last line that does not
    parse is a write cut short by a kill and is skipped; a damaged line before it means
    the journal is not one lse wrote."""
    index = JournalIndex()
    if safe_files.require_regular(path, missing_ok=True) is None:
        return index
    with safe_files.open_binary(path, MAX_JOURNAL_BYTES) as handle:
        number, problem = 0, None
        while line := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if problem is not None:
                raise BadInput(f"{shown_path(path)}: line {problem} is not a journal entry lse wrote")
            try:
                _apply(index, json.loads(line) if line.endswith(b"\n") else None)
            except (ValueError, TypeError, KeyError, RecursionError):
                problem = number
    index.torn = problem is not None
    return index


def _apply(index: JournalIndex, entry: Any) -> None:
    if not isinstance(entry, dict) or len(entry) not in (1, 2):
        raise ValueError("not a journal entry")
    if "frame" in entry and len(entry) == 1:
        record = FrameRecord.from_json(entry["frame"])
        index.frames[record.name] = record
    elif "file" in entry and "sum" in entry and isinstance(entry["file"], str):
        index.files[entry["file"]] = FileSum.from_json(entry["sum"])
    elif "media" in entry and len(entry) == 1 and isinstance(entry["media"], dict):
        name = entry["media"].get("name")
        if not isinstance(name, str):
            raise ValueError("a media entry without a name")
        index.media[name] = entry["media"]
    else:
        raise ValueError("not a journal entry")


def append_lines(path: Path, lines: Iterable[bytes]) -> None:
    """One write (and one flush) per batch: O(batch), whatever the journey's length."""
    data = b"".join(lines)
    if data:
        safe_files.append(path, data)


def rewrite(path: Path, index: JournalIndex) -> None:
    publish(path, lambda tmp: tmp.write_bytes(index.lines()))
