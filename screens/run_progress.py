"""Progress and ETA of a run, computed from the core's events alone."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from lse_core.events import FrameReady, Started, Step


@dataclass
class RunProgress:
    """Frames and denoising steps so far; the ETA comes from the rendering rate.

    Frames found on disk (a resume) count as done but not towards the rate, so
    a resumed run does not promise an ETA it cannot keep.
    """

    clock: Callable[[], float] = time.monotonic
    frames_planned: int | None = None
    frames_done: int = 0
    step: int = 0
    steps_total: int = 0
    batch_frames: int = 0
    _rendered: int = 0
    _started_at: float | None = None
    _seconds_per_frame: float | None = field(default=None, repr=False)

    def update(self, event: Started | Step | FrameReady) -> None:
        if isinstance(event, Started):
            self.frames_planned = event.frames_planned
            self.frames_done = event.frames_done
            self.steps_total = event.steps_per_frame
            self._started_at = self.clock()
        elif isinstance(event, Step):
            self.step, self.steps_total = event.step, event.total
            self.batch_frames = len(event.frames)
            self._measure()
        elif isinstance(event, FrameReady):
            self.frames_done = event.index + 1
            if not event.from_disk:
                self._rendered += 1
                self.batch_frames = max(0, self.batch_frames - 1)
                self._measure()

    def _in_flight(self) -> float:
        """Frames of the current batch already worked on, as a fraction of frames."""
        if not self.steps_total or not self.batch_frames:
            return 0.0
        return self.batch_frames * self.step / self.steps_total

    def _measure(self) -> None:
        if self._started_at is None:
            return
        work = self._rendered + self._in_flight()
        elapsed = self.clock() - self._started_at
        if work > 0 and elapsed > 0:
            self._seconds_per_frame = elapsed / work

    @property
    def eta_seconds(self) -> float | None:
        if self.frames_planned is None or self._seconds_per_frame is None:
            return None
        remaining = max(0.0, self.frames_planned - self.frames_done - self._in_flight())
        return remaining * self._seconds_per_frame

    def describe(self) -> str:
        planned = "?" if self.frames_planned is None else str(self.frames_planned)
        parts = [f"frames {self.frames_done}/{planned}"]
        if self.steps_total:
            parts.append(f"step {self.step}/{self.steps_total}")
        eta = self.eta_seconds
        if eta is not None:
            minutes, seconds = divmod(round(eta), 60)
            parts.append(f"ETA {minutes}:{seconds:02d}")
        return " · ".join(parts)
