"""What experiments ask of the runner, and the base every experiment builds on.

An experiment is a generator of requests: it yields a ``Render`` of frame jobs
(and, when it builds on them, receives the rendered frames), yields ``Media`` for
GIFs and videos, and (diffevolution) yields ``AskChoice`` and receives the user's
action. It never touches files, threads or the UI, so the TUI and the CLI drive it
alike. Every frame is described as data (a ``FrameRecord``) when it is planned.

Plans are lazy: a ``Render``'s jobs are an iterator, and a job's tensors are made
only when its batch is rendered, so a journey of 100,000 frames holds one batch in
memory, and a resume that finds a frame on disk never computes its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterable

from PIL import Image

from ..config import ExperimentConfig
from ..engine import Engine, FrameInput, RenderSettings
from ..frames import FrameRecord
from ..media import Media
from ..models import LoadedModel
from .inputs import Inputs


@dataclass
class FrameJob:
    record: FrameRecord
    make_input: Callable[[], FrameInput]  # called only when the frame is rendered
    steps: tuple[FrameRecord, ...] = ()  # visualize-diffusion: one saved frame per step
    # Applied to the decoded image before it is saved (outpaint keeps the old pixels);
    # saving only the finished image keeps a resumed run identical to an uninterrupted one.
    finish: Callable[[Image.Image], Image.Image] | None = None

    @property
    def name(self) -> str:
        return self.record.name


@dataclass
class Render:
    jobs: Iterable[FrameJob]
    settings: RenderSettings
    generation: int | None = None  # diffevolution: these jobs are one generation's genes
    # The plan receives the rendered frames only when it asks (outpaint grows from them);
    # otherwise none is kept once it is saved.
    results: bool = False
    # False: the frames are rendered only for the plan to measure (perceptual spacing's
    # coarse pass), never saved or announced, and rendered again by a resume.
    keep: bool = True


@dataclass
class SaveImages:
    """Frames made without diffusion (outpaint fillers): PNGs only, in this order."""

    images: list[tuple[FrameRecord, Image.Image]]


@dataclass
class Copy:
    """Frames equal to an already saved frame (a random walk's start for each direction)."""

    pairs: list[tuple[str, FrameRecord]]  # (source name, target)


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

    # Whether a finished session goes on when resumed (a diffevolution grows its lineage);
    # resuming any other finished session has nothing to do.
    continuable = False

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

