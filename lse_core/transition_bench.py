"""``lse bench --work transition``: one interpolation journey made three ways (each
in-between denoised in full, placed by perceptual spacing, or branched by latent
blending), with the UNet evaluations each costs and how evenly its frames change."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from .bench import write_result
from .config import build_config
from .events import Failed, Finished
from .experiments.transitions import picture_distance
from .run import ExperimentRun, RunOptions
from .session import Session

PROMPTS = ["a red circle on a white background", "a blue square on a white background",
           "a green triangle on a black background"]
MODES = {"full": {}, "perceptual": {"interpolation_spacing": "perceptual"},
         "blend": {"transition": "blend"}}


def journey(model_id: str, size: int, steps: int, between: int, batch_size: int,
            device: str | None, dtype: str | None, keys: dict, folder: str) -> dict:
    """One journey, run as ``lse run`` runs it; its cost and its neighbour distances."""
    cfg = build_config({"model_identifier": "txt2img", "exp_identifier": "interpolation",
                        "model_id": model_id, "height": size, "width": size,
                        "diffusion_steps": steps, "interpolation_steps": between,
                        "batch_size": batch_size, "rand_seed": 0, "output_path": folder,
                        "inter_prompts": PROMPTS, "inter_noises": [5], **keys})
    run = ExperimentRun(cfg, RunOptions(device=device, dtype=dtype))

    async def last_event():
        async for event in run.events():
            final = event
        return final

    started = time.perf_counter()
    final = asyncio.run(last_event())
    seconds = time.perf_counter() - started
    if not isinstance(final, Finished):
        raise RuntimeError(final.message if isinstance(final, Failed) else "the journey stopped")
    session = Session.open(final.session_dir)
    records = session.frames()
    images = [session.read_image(record.name) for record in records]
    distances = [picture_distance(a, b) for a, b in zip(images, images[1:])]
    return {"frames": len(records), "unet_evaluations": session.manifest["unet_evaluations"],
            "seconds": round(seconds, 3), "largest_distance": round(max(distances), 4),
            "largest_over_smallest": round(max(distances) / max(min(distances), 1e-9), 3)}


def main(args) -> int:
    result = {"work": "transition", "model": args.model, "size": args.size, "steps": args.steps,
              "interpolation_steps": 3, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as folder:
        for mode, keys in MODES.items():
            result[mode] = journey(args.model, args.size, args.steps, 3, args.batch_size,
                                   args.device, args.dtype, keys, str(Path(folder) / mode))
            m = result[mode]
            print(f"{mode:>10}: {m['frames']} frames, {m['unet_evaluations']} UNet evaluations, "
                  f"largest neighbour distance {m['largest_distance']:.3f}, largest/smallest "
                  f"{m['largest_over_smallest']:.2f}, {m['seconds']:.1f}s")
    print(f"blend: {result['blend']['unet_evaluations'] / result['full']['unet_evaluations']:.0%} "
          f"of full's UNet evaluations [{args.model}, {args.size}x{args.size}, {args.steps} steps, "
          f"3 keyframes, 3 in-betweens each]")
    if args.json:
        write_result(Path(args.json), result)
    return 0
