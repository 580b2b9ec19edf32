"""Speed-up of one journey rendered by 1 process and by N torchrun ranks (one torch thread
each on a CPU, one GPU each on a GPU machine), and a check that the frames are the same.

    python benchmarks/scale_out.py [--ranks 2] [--device cpu] [--size 64] [--steps 4]
                                   [--frames 32] [--json bench-results/scale_out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _render_seconds(out: Path) -> tuple[float, int]:
    """From the session's own clock: creation (model loaded) to the last update (done)."""
    [session] = [p for p in out.iterdir() if not p.name.startswith(".")]
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["state"] == "done", manifest.get("error")
    return manifest["updated"] - manifest["created"], manifest["frames_done"]


def _pngs(out: Path) -> dict[str, bytes]:
    [session] = [p for p in out.iterdir() if not p.name.startswith(".")]
    return {p.name: p.read_bytes() for p in (session / "images").glob("*.png")}


def run(ranks: int, out: Path, args: argparse.Namespace) -> dict:
    lse = [str(Path(sys.executable).parent / "lse")]
    if ranks > 1:
        lse = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={ranks}", "--no-python", *lse]
    command = [*lse, "run", "configs/txt2img/interpolation.yaml", "--model", args.model,
               "--out", str(out), "--device", args.device,
               "--set", f"height={args.size}", "--set", f"width={args.size}",
               "--set", f"diffusion_steps={args.steps}", "--set", f"batch_size={args.batch_size}",
               "--set", f"interpolation_steps={args.frames - 2}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if args.device == "cpu" else dict(os.environ)
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    render, frames = _render_seconds(out)
    return {"ranks": ranks, "wall_s": round(wall, 2), "render_s": round(render, 2),
            "s_per_frame": round(render / frames, 4), "frames": frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (one GPU per rank)")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--json", default="bench-results/scale_out.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        one = run(1, Path(folder) / "one", args)
        many = run(args.ranks, Path(folder) / "many", args)
        same = _pngs(Path(folder) / "one") == _pngs(Path(folder) / "many")
    result = {"device": args.device, "model": args.model, "size": args.size, "steps": args.steps,
              "batch_size": args.batch_size, "one": one, "many": many,
              "speedup": round(one["render_s"] / many["render_s"], 3), "same_frames": same}
    print(f"1 process: {one['s_per_frame']:.3f} s/frame; {args.ranks} ranks: "
          f"{many['s_per_frame']:.3f} s/frame; speed-up {result['speedup']:.2f}x "
          f"(render phase; whole commands {one['wall_s']:.1f}s and {many['wall_s']:.1f}s); "
          f"frames byte-identical: {same}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
