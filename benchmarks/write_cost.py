"""What it costs to save one frame safely: PNG + embedding, each flushed to disk (fsync)
before the rename that publishes it, against the same writes without the flushes; frames
saved one at a time, and (``--batch N``) N at a time, as ``lse run`` saves a batch.

    python benchmarks/write_cost.py [--size 768] [--frames 40] [--batch 8] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from PIL import Image

from lse_core.config import build_config
from lse_core.frames import FrameRecord
from lse_core.latents import PromptEmbedding
from lse_core.session import FrameFiles, Session


def seconds_per_frame(folder: Path, size: int, frames: int, flush: bool, batch: int = 1) -> float:
    cfg = build_config({"model_identifier": "txt2img", "exp_identifier": "single-inference",
                        "prompt": "x", "output_path": str(folder)})
    session = Session.create(cfg, {"batch_size": 1})
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    latent = torch.randn(1, 4, size // 8, size // 8)
    embed = PromptEmbedding(torch.randn(2, 77, 1024), None, "sd2")
    fsync = os.fsync if flush else (lambda fd: None)
    with mock.patch("os.fsync", fsync):
        started = time.perf_counter()
        for start in range(0, frames, batch):
            session.write_frames([FrameFiles(FrameRecord(f"frame-{i}", i, f"frame {i}", "image"),
                                             image, embed, latent, latent)
                                  for i in range(start, min(start + batch, frames))])
        elapsed = time.perf_counter() - started
    session.release()
    return elapsed / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8, help="frames saved together")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for batch in (1, args.batch):
            without = seconds_per_frame(Path(folder) / f"a{batch}", args.size, args.frames,
                                        flush=False, batch=batch)
            flushed = seconds_per_frame(Path(folder) / f"b{batch}", args.size, args.frames,
                                        flush=True, batch=batch)
            print(f"{args.size}x{args.size} frame (PNG + embedding), {batch} at a time: "
                  f"{without * 1000:.1f} ms without fsync, {flushed * 1000:.1f} ms with; "
                  f"fsync adds {(flushed - without) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
