"""The procedural dataset the ``tiny`` model learns to draw: one shape on a plain background.

Captions come from a small grammar,
``a|an [small|large] <colour> <shape> [<position>] on a <background> background``,
and every caption has a matching renderer, so images are made on the fly and
the training script needs no files. Some whole (colour, shape, background)
combinations are held out of training so that the acceptance checks can ask
for sentences the model has never seen.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 30),
    "green": (30, 160, 60),
    "blue": (30, 70, 220),
    "purple": (135, 45, 175),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "beige": (225, 205, 165),
}
SHAPES = ("circle", "square", "triangle", "star")
# Diameter of the shape's bounding circle as a share of the image side.
SIZES: dict[str, tuple[float, float]] = {
    "small": (0.26, 0.32),
    "": (0.40, 0.50),
    "large": (0.62, 0.72),
}
# Centre of the shape as shares of (width, height); None = anywhere it fits.
POSITIONS: dict[str, tuple[float, float] | None] = {
    "": None,
    "in the centre": (0.5, 0.5),
    "on the left": (0.27, 0.5),
    "on the right": (0.73, 0.5),
    "at the top": (0.5, 0.27),
    "at the bottom": (0.5, 0.73),
    "at the top left": (0.27, 0.27),
    "at the top right": (0.73, 0.27),
    "at the bottom left": (0.27, 0.73),
    "at the bottom right": (0.73, 0.73),
}
# Whole (colour, shape, background) combinations never shown in training, in
# any size or position: the acceptance checks ask for them.
HELD_OUT: tuple[tuple[str, str, str], ...] = (
    ("green", "triangle", "black"),
    ("yellow", "star", "grey"),
    ("blue", "circle", "beige"),
)
SUPERSAMPLE = 4  # drawn large and downsampled, for anti-aliased edges
# Every word a caption can use; the tokenizer keeps each as one token.
WORDS: tuple[str, ...] = tuple(sorted({
    word
    for phrase in (*COLOURS, *SHAPES, *BACKGROUNDS, *SIZES, *POSITIONS, "a an on background")
    for word in phrase.split()
}))


@dataclass(frozen=True)
class Scene:
    colour: str
    shape: str
    background: str
    size: str = ""
    position: str = ""

    @property
    def caption(self) -> str:
        described = f"{self.size} {self.colour}" if self.size else self.colour
        article = "an" if described[0] in "aeiou" else "a"
        position = f" {self.position}" if self.position else ""
        return f"{article} {described} {self.shape}{position} on a {self.background} background"

    @property
    def held_out(self) -> bool:
        return (self.colour, self.shape, self.background) in HELD_OUT


def random_scene(rng: random.Random) -> Scene:
    """A training scene; sizes and positions are often left unsaid, as people write them."""
    while True:
        scene = Scene(
            colour=rng.choice(list(COLOURS)),
            shape=rng.choice(SHAPES),
            background=rng.choice(list(BACKGROUNDS)),
            size=rng.choices(list(SIZES), weights=(1, 2, 1))[0],
            position=rng.choices(list(POSITIONS), weights=(3,) + (1,) * 9)[0],
        )
        if not scene.held_out:
            return scene


def _outline(shape: str, cx: float, cy: float, radius: float) -> list[tuple[float, float]]:
    """Polygon points of an upright shape inside the circle (cx, cy, radius)."""
    if shape == "square":
        half = radius / math.sqrt(2)
        return [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half),
                (cx - half, cy + half)]
    if shape == "triangle":
        return [(cx + radius * math.sin(a), cy - radius * math.cos(a))
                for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)]
    if shape == "star":
        points = []
        for k in range(10):
            r = radius if k % 2 == 0 else radius * 0.45
            angle = k * math.pi / 5
            points.append((cx + r * math.sin(angle), cy - r * math.cos(angle)))
        return points
    raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene, size: int, rng: random.Random, cut: bool = False) -> Image.Image:
    """Draw ``scene`` at ``size`` × ``size``; ``rng`` picks the unsaid size and exact place.

    ``cut``: where the caption leaves the place unsaid, up to half the shape may
    lie outside the image, as an outpainting camera move leaves it.
    """
    low, high = SIZES[scene.size]
    radius = rng.uniform(low, high) * size / 2
    anchor = POSITIONS[scene.position]
    if anchor is None:
        margin = 0 if cut else radius
        cx, cy = rng.uniform(margin, size - margin), rng.uniform(margin, size - margin)
    else:
        jitter = 0.04 * size
        cx = anchor[0] * size + rng.uniform(-jitter, jitter)
        cy = anchor[1] * size + rng.uniform(-jitter, jitter)
        # A large shape at the edge is pushed inward rather than cut off.
        cx, cy = min(max(cx, radius), size - radius), min(max(cy, radius), size - radius)
    big = size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    cx, cy, radius = cx * SUPERSAMPLE, cy * SUPERSAMPLE, radius * SUPERSAMPLE
    if scene.shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=COLOURS[scene.colour])
    else:
        draw.polygon(_outline(scene.shape, cx, cy, radius), fill=COLOURS[scene.colour])
    return image.resize((size, size), Image.Resampling.BOX)
