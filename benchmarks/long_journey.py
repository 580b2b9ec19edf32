"""A long journey: an N-frame random walk at 8×8 with one denoising step, through `lse run`.

    python benchmarks/long_journey.py [--frames 100000] [--batch-size 4] [--out DIR]
                                      [--model tiny|FOLDER] [--json bench-results/long_journey.json]

Reports the peak resident memory of the run, its seconds per frame over the first
and the last 10% of the frames (from the frames' write times: a run whose cost per
frame grows with the frames already made shows it here), and the time to resume
the finished session and a session whose last frame is missing (every other frame
is checked and skipped, the media are written again). Each frame's embedding file
holds the (2, 77, width) prompt embedding: with `tiny` (width 1024) about 630 kB, so
N frames need N × 0.63 MB of disk; the benchmark checks the free space first. A
model folder of narrower text (`--model FOLDER`, e.g. the tiny SDXL folder
`tests/family_models.build_sdxl` writes, 80 wide) needs a fraction of that.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY_TEXT_WIDTH = 1024
# Per frame beside its embedding: the 8×8 PNG, the safetensors header, file system blocks.
OVERHEAD_PER_FRAME = 16_384


def _lse(*args: str) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes and stderr of one `lse` command in its own process."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "lse_core.cli", *args], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # wait4 gives this child's own peak RSS (getrusage(CHILDREN) would mix runs).
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"lse {args[0]} failed ({process.returncode}): {stderr.strip()[-500:]}")
    return wall, usage.ru_maxrss * 1024, stderr


def _bytes_per_frame(model: str) -> int:
    """Disk one frame takes: its (2, 77, width) float32 prompt embedding (the text encoders'
    widths side by side), an SDXL folder's (2, projection) pooled one, and the PNG."""
    if model == "tiny":
        width, pooled = TINY_TEXT_WIDTH, 0
    else:
        from lse_core.families import Anatomy

        anatomy = Anatomy.of_folder(Path(model))
        if anatomy is None:
            sys.exit(f"--model: {model} is not a diffusers folder")
        encoders = [anatomy.configs[name] for name in ("text_encoder", "text_encoder_2")
                    if name in anatomy.configs]
        width = sum(int(config.get("hidden_size", 0)) for config in encoders)
        if not width:
            sys.exit(f"--model: {model} has no text encoder config that gives its width")
        pooled = int(anatomy.configs.get("text_encoder_2", {}).get("projection_dim", 0))
    return (2 * 77 * width + 2 * pooled) * 4 + OVERHEAD_PER_FRAME


def _seconds_per_frame(session: Path) -> tuple[float, float, int]:
    """Over the first and the last 10% of the frames, from their PNGs' write times."""
    times = sorted(entry.stat().st_mtime_ns for entry in os.scandir(session / "images")
                   if entry.name.endswith(".png") and not entry.name.startswith("."))
    tenth = max(1, len(times) // 10)
    first = (times[tenth] - times[0]) / tenth / 1e9
    last = (times[-1] - times[-1 - tenth]) / tenth / 1e9
    return first, last, len(times)


def _session(out: Path) -> Path:
    [session] = [p for p in out.iterdir() if not p.name.startswith(".")]
    return session


def _mark_interrupted(session: Path) -> None:
    """As a run stopped before its last frame: that frame's files gone, state interrupted."""
    last = max((entry for entry in os.scandir(session / "images") if entry.name.endswith(".png")),
               key=lambda entry: entry.stat().st_mtime_ns)
    stem = last.name.removesuffix(".png")
    os.unlink(last.path)
    os.unlink(session / "embeddings" / f"{stem}.safetensors")
    manifest_path = session / "session.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["state"] = "interrupted"
    manifest_path.write_text(json.dumps(manifest))


def measure(frames: int, batch_size: int, out: Path, model: str) -> dict:
    config = out / "walk.yaml"
    config.write_text(
        f"model_identifier: txt2img\nexp_identifier: random-walk\nmodel_id: {json.dumps(model)}\n"
        "prompt: a red circle on a white background\nheight: 8\nwidth: 8\n"
        f"diffusion_steps: 1\nrand_seed: 7\nbatch_size: {batch_size}\nwalk_directions: 1\n"
        f"walk_steps: {frames - 1}\nprompt_rand_walk: true\nnoise_rand_walk: true\n"
        "step_size: 0.001\n")
    sessions = out / "sessions"
    run_s, run_rss, _ = _lse("run", str(config), "--out", str(sessions))
    session = _session(sessions)
    first, last, made = _seconds_per_frame(session)
    finished_s, finished_rss, _ = _lse("resume", str(session))
    _mark_interrupted(session)
    missing_s, missing_rss, _ = _lse("resume", str(session))
    return {
        "frames": made,
        "model": model,
        "batch_size": batch_size,
        "run_s": round(run_s, 1),
        "peak_rss_gb": round(run_rss / 1e9, 3),
        "s_per_frame_first_10pct": round(first, 5),
        "s_per_frame_last_10pct": round(last, 5),
        "last_over_first": round(last / first, 3) if first else None,
        "resume_finished_s": round(finished_s, 2),
        "resume_finished_peak_rss_gb": round(finished_rss / 1e9, 3),
        "resume_last_frame_missing_s": round(missing_s, 2),
        "resume_last_frame_missing_peak_rss_gb": round(missing_rss / 1e9, 3),
        "goals": {"peak_rss_gb": "< 1.5", "last_over_first": "<= 1.2", "resume_finished_s": "< 30"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", type=Path, help="where the session goes (default: a temporary "
                                                 "folder, removed afterwards)")
    parser.add_argument("--model", default="tiny",
                        help="tiny, or a diffusers folder (stored as an absolute path)")
    parser.add_argument("--json", default="bench-results/long_journey.json")
    args = parser.parse_args()
    if args.frames < 10:
        sys.exit("--frames: at least 10 (a tenth of them is measured)")
    model = args.model if args.model == "tiny" else str(Path(args.model).resolve())
    per_frame = _bytes_per_frame(model)
    out = args.out or Path(tempfile.mkdtemp(prefix="lse-long-journey-"))
    out.mkdir(parents=True, exist_ok=True)
    needed, free = args.frames * per_frame, shutil.disk_usage(out).free
    if needed > free * 0.9:
        sys.exit(f"{args.frames} frames need about {needed / 1e9:.1f} GB in {out}; "
                 f"{free / 1e9:.1f} GB are free")
    try:
        result = measure(args.frames, args.batch_size, out, model)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
