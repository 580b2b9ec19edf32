"""Acceptance numbers of the trained ``tiny`` model: ``python -m lse_core.tiny.evaluate``.

Renders each caption for N seeds through the real loading path and engine
(64×64, guidance 7.5 and DPMSolverMultistep at 25 steps — the config defaults —
unless told otherwise) and counts the images whose background is near the
caption's background colour and whose shape pixels are, on average, nearest to
the caption's colour. The default captions are the issue's main one and the
held-out combinations, which no training caption contains as a whole sentence.

``--table`` does it for every scheduler lse offers (or those named with
``--schedulers``) at each of ``--step-counts``, and prints a Markdown table of
the images right in both respects, out of captions × seeds.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..config import SCHEDULERS, resolve_scheduler_name
from ..errors import BadInput
from .scenes import BACKGROUNDS, COLOURS, HELD_OUT, Scene

BORDER = 3  # pixels of each edge taken as the background
BACKGROUND_TOLERANCE = 48.0  # RGB distance of the border's median from the background colour
SHAPE_DISTANCE = 100.0  # a pixel this far from the background colour belongs to the shape
MIN_SHAPE_SHARE = 0.01  # a shape covers at least this share of the image
DEFAULT_SCHEDULER = "DPMSolverMultistepScheduler"
TABLE_STEPS = (4, 10, 25)


@dataclass
class Verdict:
    background_ok: bool
    shape_ok: bool

    @property
    def ok(self) -> bool:
        return self.background_ok and self.shape_ok


def judge(image: Image.Image, colour: str, background: str) -> Verdict:
    """Whether ``image`` shows a ``colour`` shape on a ``background`` background."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    edge = np.ones(pixels.shape[:2], dtype=bool)
    edge[BORDER:-BORDER, BORDER:-BORDER] = False
    expected = np.array(BACKGROUNDS[background], dtype=np.float32)
    border_colour = np.median(pixels[edge], axis=0)
    background_ok = float(np.linalg.norm(border_colour - expected)) <= BACKGROUND_TOLERANCE
    shape = np.linalg.norm(pixels - expected, axis=-1) > SHAPE_DISTANCE
    shape_ok = False
    if shape.mean() >= MIN_SHAPE_SHARE:
        mean = pixels[shape].mean(axis=0)
        nearest = min(COLOURS, key=lambda name: np.linalg.norm(mean - np.array(COLOURS[name])))
        shape_ok = nearest == colour
    return Verdict(background_ok, shape_ok)


class Renderer:
    """The trained tiny model behind the engine, loaded once for every setting."""

    def __init__(self) -> None:
        import torch

        from ..engine import Engine
        from ..models import load_model

        self.engine = Engine(load_model("tiny", False, torch.device("cpu"), torch.float32))

    def render(self, captions: list[str], seeds: int, steps: int, guidance: float, size: int,
               scheduler: str = DEFAULT_SCHEDULER) -> dict[str, list[Image.Image]]:
        """{caption: [image per seed]}, seeds 0..N-1."""
        from ..engine import FrameInput, RenderSettings
        from ..latents import encode_prompt, make_noise

        settings = RenderSettings(steps=steps, guidance_scale=guidance, scheduler=scheduler)
        images = {}
        for caption in captions:
            embed = encode_prompt(self.engine.model, caption, "")
            frames = [FrameInput(embed, make_noise(seed, 1, size, size), step_seed=seed)
                      for seed in range(seeds)]
            images[caption] = [r.image for batch in range(0, seeds, 10)
                               for r in self.engine.render(frames[batch : batch + 10], settings)]
        return images


def render(captions: list[str], seeds: int, steps: int, guidance: float, size: int,
           scheduler: str = DEFAULT_SCHEDULER) -> dict[str, list[Image.Image]]:
    """{caption: [image per seed]} from the trained tiny model, seeds 0..N-1."""
    return Renderer().render(captions, seeds, steps, guidance, size, scheduler)


def acceptance_scenes() -> list[Scene]:
    return [Scene("red", "circle", "white")] + [Scene(c, s, b) for c, s, b in HELD_OUT]


def hits(scenes: list[Scene], rendered: dict[str, list[Image.Image]]) -> int:
    """Images right in both background and shape colour, over every caption."""
    return sum(judge(image, scene.colour, scene.background).ok
               for scene in scenes for image in rendered[scene.caption])


def table(renderer: Renderer, schedulers: list[str], step_counts: list[int], seeds: int,
          guidance: float, size: int) -> str:
    """A Markdown table: schedulers × step counts, images right out of captions × seeds."""
    scenes = acceptance_scenes()
    captions = [scene.caption for scene in scenes]
    total = len(scenes) * seeds
    lines = ["| scheduler | " + " | ".join(f"{n} steps" for n in step_counts) + " |",
             "| --- |" + " --- |" * len(step_counts)]
    print("\n".join(lines), flush=True)  # each row as soon as it is measured: a table takes minutes
    for scheduler in schedulers:
        cells = [f"{hits(scenes, renderer.render(captions, seeds, n, guidance, size, scheduler))}"
                 f"/{total}" for n in step_counts]
        line = f"| {scheduler.removesuffix('Scheduler')} | " + " | ".join(cells) + " |"
        print(line, flush=True)
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    held_out = [Scene(c, s, b).caption for c, s, b in HELD_OUT]
    parser = argparse.ArgumentParser(prog="python -m lse_core.tiny.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--scheduler", default=DEFAULT_SCHEDULER,
                        help="any name the config's 'scheduler' key takes (e.g. DDIM, Euler)")
    parser.add_argument("--save", help="write a contact sheet per caption with this path prefix")
    parser.add_argument("--table", action="store_true",
                        help="hits per scheduler and step count, as a Markdown table")
    parser.add_argument("--schedulers", default="all",
                        help="with --table: comma-separated names, or all (default)")
    parser.add_argument("--step-counts", default=",".join(map(str, TABLE_STEPS)),
                        help="with --table: comma-separated step counts (default 4,10,25)")
    args = parser.parse_args(argv)

    try:
        names = list(SCHEDULERS) if args.schedulers == "all" else [
            resolve_scheduler_name(name.strip()) for name in args.schedulers.split(",")]
        scheduler = resolve_scheduler_name(args.scheduler)
    except BadInput as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    if args.table:
        step_counts = [int(n) for n in args.step_counts.split(",")]
        print(f"{args.seeds} seeds × {len(acceptance_scenes())} captions, {args.size}x{args.size}, "
              f"guidance {args.guidance}: images right (background and shape colour)")
        table(Renderer(), names, step_counts, args.seeds, args.guidance, args.size)
        return 0

    scenes = acceptance_scenes()
    rendered = render([s.caption for s in scenes], args.seeds, args.steps, args.guidance,
                      args.size, scheduler)
    print(f"{args.seeds} seeds, {args.size}x{args.size}, {scheduler}, {args.steps} steps, "
          f"guidance {args.guidance}")
    for scene in scenes:
        verdicts = [judge(image, scene.colour, scene.background) for image in rendered[scene.caption]]
        tag = " (held out)" if scene.caption in held_out else ""
        print(f"{scene.caption!r}{tag}: background {sum(v.background_ok for v in verdicts)}, "
              f"shape colour {sum(v.shape_ok for v in verdicts)}, "
              f"both {sum(v.ok for v in verdicts)} of {args.seeds}")
        if args.save:
            images = rendered[scene.caption]
            sheet = Image.new("RGB", (args.size * len(images), args.size))
            for index, image in enumerate(images):
                sheet.paste(image, (index * args.size, 0))
            sheet.save(f"{args.save}{scene.colour}-{scene.shape}-{scene.background}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
