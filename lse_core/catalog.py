"""Listing saved sessions and exporting their media again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import BadInput
from .experiments.base import Media
from .media import write_media
from .session import MANIFEST, Session


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


def list_sessions(root: Path) -> list[SessionSummary]:
    """Sessions under ``root``, newest first; unreadable folders are skipped."""
    if not root.is_dir():
        return []
    rows = []
    for manifest in root.glob(f"*/{MANIFEST}"):
        try:
            data = Session.open(manifest.parent).manifest
        except BadInput:
            continue
        rows.append(SessionSummary(
            path=manifest.parent,
            kind=data.get("model_identifier", "?"),
            experiment=data.get("exp_identifier", "?"),
            model=data.get("model_id", "?"),
            frames_done=int(data.get("frames_done", 0)),
            frames_planned=data.get("frames_planned"),
            state=data.get("state", "?"),
            updated=float(data.get("updated", 0)),
        ))
    return sorted(rows, key=lambda r: r.updated, reverse=True)


def export_session(path: Path, gif: bool, mp4: bool, fps: float | None = None) -> list[Path]:
    """Write the session's GIFs/MP4s again from its saved frames."""
    session = Session.open(path)
    media = session.manifest.get("media", [])
    if not media:
        raise BadInput(f"{path}: this session has no GIF or video to export")
    fps = fps or 1000 / session.config().gif_frame_dur
    written: list[Path] = []
    for entry in media:
        request = Media(**entry)
        missing = [n for n in request.frames if not session.image_path(n).is_file()]
        if missing:
            raise BadInput(f"{path}: frame {missing[0]} is missing; resume the session first")
        if request.grid or gif or (mp4 and request.video):
            written += write_media(session, request, gif=gif, video=mp4 and request.video, fps=fps)
    return written
