"""Listing saved sessions and exporting their media again."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput, shorten, shown_path
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
        if folder.name.startswith(".") or not (folder / MANIFEST).exists():
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

    updated = data.get("updated")
    if isinstance(updated, bool) or not isinstance(updated, (int, float)) or not math.isfinite(updated):
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
        return path.stat().st_mtime
    except OSError:
        return 0.0


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
        written: list[Path] = []
        for request in media:
            missing = [n for n in request.frames if not session.image_path(n).is_file()]
            if missing:
                raise BadInput(f"{shown_path(path)}: frame {missing[0]} is missing; resume the session first")
            if request.grid or gif or (mp4 and request.video):
                written += write_media(session, request, gif=gif, video=mp4 and request.video,
                                       fps=fps)
        return written
    finally:
        session.release()
