"""What experiments ask of the runner, and the base every experiment builds on.

An experiment is a generator of requests: it yields a ``Render`` of frame jobs
and receives the rendered frames, yields ``Media`` for GIFs and videos, and
(diffevolution) yields ``AskChoice`` and receives the user's action. It never
touches files, threads or the UI, so the TUI and the CLI drive it alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator

from PIL import Image

from ..config import ExperimentConfig
from ..engine import Engine, FrameInput, RenderSettings
from ..media import Media
from ..models import LoadedModel
from .inputs import Inputs


@dataclass
class FrameJob:
    name: str
    input: FrameInput
    step_names: tuple[str, ...] = ()  # visualize-diffusion: one saved frame per step
    # Applied to the decoded image before it is saved (outpaint keeps the old pixels);
    # saving only the finished image keeps a resumed run identical to an uninterrupted one.
    finish: Callable[[Image.Image], Image.Image] | None = None


@dataclass
class Render:
    jobs: list[FrameJob]
    settings: RenderSettings
    generation: int | None = None  # diffevolution: these jobs are one generation's genes


@dataclass
class SaveImages:
    """Frames made without diffusion (outpaint fillers): PNGs only, in this order."""

    images: list[tuple[str, Image.Image]]


@dataclass
class Copy:
    """Frames equal to an already saved frame (a random walk's start for each direction)."""

    pairs: list[tuple[str, str]]  # (source, target)


@dataclass
class AskChoice:
    generation: int
    genes: int
    help: str
    lineage: tuple[dict[str, Any], ...] = ()
    parent: int | None = None


@dataclass
class Record:
    """Fields to store in ``session.json`` (e.g. the diffevolution lineage)."""

    fields: dict[str, Any] = field(default_factory=dict)


Request = Render | Media | SaveImages | Copy | AskChoice | Record
Plan = Generator[Request, Any, None]


class Experiment:
    """Shared set-up: inputs resolved (and checked) before a session exists."""

    def __init__(self, cfg: ExperimentConfig, model: LoadedModel, engine: Engine,
                 notify: Callable[[str], None], saved: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.saved = saved or {}  # session.json of a resumed run (diffevolution replays it)
        self.model = model
        self.engine = engine
        self.inputs = Inputs(cfg, model, engine, notify)

    @property
    def seed(self) -> int:
        # ``with_defaults`` draws and records a seed before any experiment is built.
        assert self.cfg.rand_seed is not None
        return self.cfg.rand_seed

    def prepare(self) -> None:
        """Resolve every input now, so bad input fails before a session folder exists."""

    @property
    def frames_planned(self) -> int | None:
        return None

    @property
    def parallel_frames(self) -> int:
        """How many frames the largest group of independent frames holds."""
        return self.frames_planned or 1

    def split_note(self, batch_size: int, ranks: int) -> str | None:
        """One line for a run over several ranks when some of them will wait."""
        batches = -(-self.parallel_frames // batch_size)
        if batches >= ranks:
            return None
        return (f"{ranks} ranks take turns at batches of up to {batch_size} frames, but "
                f"{self.cfg.exp_identifier} has only {batches} at a time: {ranks - batches} "
                "rank(s) will idle (a smaller batch_size splits the work further)")

    def settings(self, capture_steps: bool = False) -> RenderSettings:
        cfg = self.cfg
        return RenderSettings(
            steps=cfg.diffusion_steps,
            guidance_scale=cfg.guidance_scale,
            scheduler=cfg.scheduler,
            strength=cfg.strength if cfg.model_identifier == "img2img" else 1.0,
            capture_steps=capture_steps,
        )

    def plan(self) -> Plan:
        raise NotImplementedError

