"""Listing saved sessions and exporting their media again."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import safe_files
from .errors import BadInput, shorten, shown_path
from .frames import FrameRecord
from .media import check_fps, media_entries, video_unavailable, write_media
from .session import MANIFEST, Session, stored_count


@dataclass(frozen=True)
class SessionSummary:
    path: Path
    kind: str
    experiment: str
    model: str
    frames_done: int
    frames_planned: int | None
    state: str
    updated: float
    problem: str | None = None  # why the session could not be read

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def list_sessions(root: Path) -> list[SessionSummary]:
    """Every session under ``root``, newest first. One damaged session does not hide the
    others: it is listed with state ``unreadable`` and the reason."""
    if not root.is_dir():
        return []
    rows = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not os.path.lexists(folder / MANIFEST):
            continue
        try:
            rows.append(_summary(Session.open(folder)))
        except BadInput as exc:
            rows.append(SessionSummary(folder, "?", "?", "?", 0, None, "unreadable",
                                       _mtime(folder / MANIFEST), str(exc)))
    return sorted(rows, key=lambda r: r.updated, reverse=True)


def _summary(session: Session) -> SessionSummary:
    data = session.manifest

    def text(key: str) -> str:
        value = data.get(key)
        return shorten(value, 60) if isinstance(value, str) else "?"

    updated = data.get("updated")  # checked by Session.open
    if updated is None:
        updated = _mtime(session.path / MANIFEST)
    state = text("state")
    if state == "running" and not session.in_use():
        state = "stopped"  # its process died without saying so (kill -9, power cut)
    return SessionSummary(session.path, text("model_identifier"), text("exp_identifier"),
                          text("model_id"), stored_count(data, "frames_done") or 0,
                          stored_count(data, "frames_planned"),
                          state, float(updated))


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


def session_frames(path: Path) -> list[FrameRecord]:
    """A session's frames in story order, as the sessions browser lists them."""
    return Session.open(path).frames()


def export_session(path: Path, gif: bool, mp4: bool, fps: float | None = None) -> list[Path]:
    """Write the session's GIFs/MP4s again from its saved frames."""
    if fps is not None:
        check_fps(fps, gif, mp4)
    if mp4 and (reason := video_unavailable()):
        raise BadInput(f"--mp4: {reason}")
    session = Session.open(path).claim()
    try:
        media = media_entries(session)
        if not media:
            raise BadInput(f"{shown_path(path)}: this session has no GIF or video to export")
        fps = fps or 1000 / session.config().gif_frame_dur
        present = {entry.name for entry in safe_files.regular_files(session.path / "images")}
        for request in media:
            missing = [n for n in request.frames if f"{n}.png" not in present]
            if missing:
                raise BadInput(f"{shown_path(path)}: frame {missing[0]} is missing; resume the session first")
        written: list[Path] = []
        for request in media:
            if request.grid or gif or (mp4 and request.video):
                paths = write_media(session, request, gif=gif, video=mp4 and request.video, fps=fps)
                for written_path in paths:
                    session.record(written_path)
                session.save_journal()  # not session.json: an export changes no session state
                written += paths
        return written
    finally:
        session.release()
