"""Where in-between frames go: measuring how much neighbouring frames differ, placing
frames at equal steps of that difference, and choosing the gaps latent blending fills."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class BlendNode:
    """A frame of a blended segment: its t in the segment, picture, latents at the branch
    step (a keyframe's kept latents; an in-between's starting latents) and name."""

    t: float
    image: Any  # PIL.Image.Image; None until rendered
    latents: torch.Tensor | None
    name: str


def picture_distance(a: Any, b: Any) -> float:
    """How much two frames differ: the mean absolute difference of their RGB values in
    [0, 1]. Plain pixels need no extra model; a perceptual metric would weigh structure
    over colour, but it is a heavy dependency for choosing where frames go."""
    first = np.asarray(a.convert("RGB"), dtype=np.float64)
    second = np.asarray(b.convert("RGB"), dtype=np.float64)
    return float(np.abs(first - second).mean() / 255)


def place_evenly(distances: list[float], count: int) -> list[float]:
    """``count`` t values in (0, 1) at equal steps of accumulated picture change.

    ``distances`` are those between the neighbours of a uniform pass over the segment
    (``count + 1`` gaps of width 1/(count + 1)); the change is taken to grow linearly
    inside each gap, and the cumulative change is inverted."""
    gaps = len(distances)
    total = sum(distances)
    if total <= 0:
        return [i / gaps for i in range(1, count + 1)]
    places, reached, gap = [], 0.0, 0
    for i in range(1, count + 1):
        target = total * i / (count + 1)
        while gap < gaps - 1 and reached + distances[gap] < target:
            reached += distances[gap]
            gap += 1
        inside = (target - reached) / distances[gap] if distances[gap] > 0 else 0.0
        places.append((gap + min(max(inside, 0.0), 1.0)) / gaps)
    return places


def next_gaps(segments: list[list[BlendNode]], left: int) -> list[tuple[int, int]]:
    """The gaps (segment, index of the left neighbour) to fill next: the half of all gaps
    (at least one, at most ``left``) whose neighbours differ most, the first in the journey
    first among equals. A round's frames render as one request; the count per round
    depends on the journey alone, so any batch size or number of ranks fills the same gaps."""
    gaps = [(-picture_distance(nodes[i].image, nodes[i + 1].image), k, i)
            for k, nodes in enumerate(segments) for i in range(len(nodes) - 1)]
    take = min(left, max(1, math.ceil(len(gaps) / 2)))
    return [(k, i) for _, k, i in sorted(gaps)[:take]]
