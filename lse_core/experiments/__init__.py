"""One module per experiment; each is pure core code driven by the runner."""

from __future__ import annotations

from .base import Experiment
from .single import SingleInference, VisualizeDiffusion

EXPERIMENTS: dict[str, type[Experiment]] = {
    "single-inference": SingleInference,
    "visualize-diffusion": VisualizeDiffusion,
}
