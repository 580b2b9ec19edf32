"""What a live step preview costs per denoising step, against the step itself.

The preview runs on the render thread after every step: the latents→RGB map over the
batch's latents and the event carrying the small pictures. This times that work
against one UNet step of the engine for the same batch (classifier-free guidance on).

    python benchmarks/preview_cost.py [--model tiny|sd2-architecture] [--size 64] [--batch 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lse_core.bench import architecture
from lse_core.engine import Engine, FrameInput, RenderSettings
from lse_core.events import StepPreview
from lse_core.latents import encode_prompt, make_noise
from lse_core.live_preview import fit
from lse_core.models import load_model


def step_seconds(engine: Engine, frames: list[FrameInput], steps: int) -> float:
    """The median time between two finished denoising steps."""
    marks: list[float] = []
    engine.render(frames, RenderSettings(steps=steps, guidance_scale=7.5,
                                         scheduler="DPMSolverMultistepScheduler"),
                  on_step=lambda done, total: marks.append(time.perf_counter()))
    return statistics.median(b - a for a, b in zip(marks, marks[1:]))


def preview_seconds(preview, latents: torch.Tensor, names: tuple[str, ...], repeats: int) -> float:
    """The median time of the work the live preview adds to one step."""
    runs = []
    for step in range(repeats):
        started = time.perf_counter()
        StepPreview(names, step, repeats, tuple(preview.images(latents)))
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny or sd2-architecture (random weights)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    device = torch.device("cpu")
    if args.model == "tiny":
        model = load_model("tiny", False, device, torch.float32)
    else:
        model = architecture(args.model, device, torch.float32)
    engine = Engine(model)
    prompt = encode_prompt(model, "a red circle on a white background", "")
    noise = make_noise(0, args.batch, args.size, args.size, model.latent_channels, model.vae_scale_factor)
    frames = [FrameInput(prompt, noise[i : i + 1], step_seed=i) for i in range(args.batch)]
    step_seconds(engine, frames, 2)  # warm-up
    step = step_seconds(engine, frames, args.steps)
    preview = fit(model)
    latents = noise * 14.6  # the first step's scale; the map's cost does not depend on values
    names = tuple(f"frame-{i}" for i in range(args.batch))
    cost = preview_seconds(preview, latents, names, 200)
    print(f"{args.model} {args.size}x{args.size}, batch {args.batch}, threads {torch.get_num_threads()}: "
          f"UNet step {step * 1000:.2f} ms, live preview {cost * 1000:.3f} ms "
          f"= {100 * cost / step:.2f}% of a step")


if __name__ == "__main__":
    main()
