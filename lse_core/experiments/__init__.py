"""One module per experiment; each is pure core code driven by the runner."""

from __future__ import annotations

from .base import Experiment
from .diffevolution import Diffevolution
from .interpolation import Interpolation
from .outpaint import OutpaintWalk
from .random_walk import RandomWalk
from .single import SingleInference, VisualizeDiffusion

EXPERIMENTS: dict[str, type[Experiment]] = {
    "single-inference": SingleInference,
    "visualize-diffusion": VisualizeDiffusion,
    "random-walk": RandomWalk,
    "interpolation": Interpolation,
    "diffevolution": Diffevolution,
    "outpaint-walk": OutpaintWalk,
}
