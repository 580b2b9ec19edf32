"""Typed events a run emits; the TUI and the CLI only render these."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .frames import FrameRecord


@dataclass(frozen=True)
class Notice:
    """Something worth telling the user once (a file loaded, a fallback taken)."""

    message: str


@dataclass(frozen=True)
class Loaded:
    model_id: str
    device: str
    dtype: str
    seconds: float


@dataclass(frozen=True)
class Started:
    session_dir: Path
    frames_planned: int | None
    frames_done: int
    batch_size: int
    steps_per_frame: int
    ranks: int = 1  # processes sharing the work (torchrun)


@dataclass(frozen=True)
class Step:
    """One denoising step of the batch that holds ``frames``."""

    frames: tuple[str, ...]
    step: int
    total: int


@dataclass(frozen=True)
class StepPreview:
    """Live preview: the current latents of the batch that holds ``frames``, one small
    picture (PIL, at the latents' resolution) per frame, after step ``step``."""

    frames: tuple[str, ...]
    step: int
    total: int
    images: tuple[Any, ...]


@dataclass(frozen=True)
class FrameReady:
    """A frame is on disk. ``index``: how many frames were done before it."""

    index: int
    record: FrameRecord
    path: Path
    image: Any = None  # PIL.Image.Image; None for a frame found on disk (read it from path)
    from_disk: bool = False
    # visualize-diffusion: the frames saved for the denoising steps before this one, in order.
    steps: tuple[tuple[FrameRecord, Path], ...] = ()

    @property
    def name(self) -> str:
        return self.record.name


@dataclass(frozen=True)
class GenerationReady:
    """Diffevolution: all genes of one generation are on disk."""

    generation: int
    names: tuple[str, ...]
    paths: tuple[Path, ...]


@dataclass(frozen=True)
class WaitingForChoice:
    """Diffevolution waits for ``ExperimentRun.choose(Choice(...))``."""

    generation: int
    genes: int
    help: str
    lineage: tuple[dict[str, Any], ...] = ()  # nodes: id, name, parent, generation
    parent: int | None = None  # the lineage node this generation grew from


@dataclass(frozen=True)
class MediaWritten:
    paths: tuple[Path, ...]
    # Media that are pictures to look at too (visualize-diffusion's grid of all steps).
    frames: tuple[tuple[FrameRecord, Path], ...] = ()


@dataclass(frozen=True)
class Finished:
    session_dir: Path
    frames_done: int
    outputs: tuple[Path, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Interrupted:
    session_dir: Path | None
    frames_done: int


@dataclass(frozen=True)
class Failed:
    message: str
    bad_input: bool
    session_dir: Path | None = None
    key: str | None = None  # the config key at fault (bad input), for the form


Event = (Notice | Loaded | Started | Step | StepPreview | FrameReady | GenerationReady | WaitingForChoice
         | MediaWritten | Finished | Interrupted | Failed)
FINAL_EVENTS = (Finished, Interrupted, Failed)
