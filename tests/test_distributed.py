"""Scale-out (torchrun): N ranks render one journey into one session, byte for byte what
one process renders, and a session a rank died in resumes with any number of ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import ROOT, only_session, pngs, run_cli

LSE = str(Path(sys.executable).parent / "lse")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
SMALL = ["--set", "height=64", "--set", "width=64", "--set", "diffusion_steps=4"]

JOURNEYS = {
    "interpolation": ["configs/txt2img/interpolation.yaml", "--set", "interpolation_steps=5"],
    # Perceptual spacing's coarse pass and latent blending's rounds of insertions depend
    # on frames rendered earlier: every rank must place the same frames.
    # (tiny's shapes journey: its segments change unevenly, so placement matters.)
    "interpolation-perceptual": ["docs/tiny/interpolation.yaml", "--set", "interpolation_steps=3",
                                 "--set", "interpolation_spacing=perceptual", "--set", "batch_size=2"],
    "interpolation-blend": ["docs/tiny/interpolation.yaml", "--set", "interpolation_steps=3",
                            "--set", "transition=blend", "--set", "batch_size=1"],
    "random-walk": ["configs/txt2img/random_walk.yaml", "--set", "walk_steps=3",
                    "--set", "walk_directions=2"],
    "diffevolution": ["configs/txt2img/diffevolution.yaml", "--set", "batch_size=2", "--auto", "2"],
    "outpaint-walk": ["configs/inpaint/outpaint_walk.yaml", "--set", "num_filler_frames=4",
                      "--set", "batch_size=1"],
}


def _one_thread(*args: str) -> int:
    """Run lse in this process as each rank runs: one torch thread (torchrun's default),
    since a CPU's arithmetic, and so a frame's bytes, depend on its thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_cli(*args)
    finally:
        torch.set_num_threads(threads)


def _torchrun(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("journey", sorted(JOURNEYS))
def test_two_ranks_write_what_one_process_writes(journey, tmp_path):
    config, *keys = JOURNEYS[journey]
    assert _one_thread("run", config, "--model", "tiny", "--out", str(tmp_path / "one"),
                       *SMALL, *keys) == 0
    done = _torchrun("--no-python", LSE, "run", config, "--model", "tiny",
                     "--out", str(tmp_path / "two"), *SMALL, *keys)
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = only_session(tmp_path / "one"), only_session(tmp_path / "two")
    reference = pngs(one)
    assert len(reference) > 4 and pngs(two) == reference
    manifest = json.loads((two / "session.json").read_text())
    assert manifest["state"] == "done" and manifest["ranks"] == 2
    # rank 0 recorded the checksum and record of every frame, whichever rank wrote it
    from lse_core.session import Session

    index = Session.open(two).index
    assert {f"images/{name}" for name in reference} <= set(index.files)
    assert {name.removesuffix(".png") for name in reference} == set(index.frames)
    # one progress report, from rank 0
    assert done.stdout.count("done: ") == 1


def test_a_rank_killed_mid_run_resumes_in_one_process(tmp_path):
    config, *keys = JOURNEYS["interpolation"]
    keys = [*keys, "--set", "interpolation_steps=14", "--set", "batch_size=2"]
    assert _one_thread("run", config, "--model", "tiny", "--out", str(tmp_path / "one"),
                       *SMALL, *keys) == 0
    killed = _torchrun("--no-python", sys.executable, str(ROOT / "tests" / "kill_hook.py"), "png",
                       "3", "run", config, "--model", "tiny", "--out", str(tmp_path / "two"),
                       *SMALL, *keys, env={"KILL_RANK": "1"})
    assert killed.returncode != 0
    session = only_session(tmp_path / "two")
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["state"] in ("interrupted", "running")
    assert 0 < len(pngs(session)) < 16
    assert _one_thread("resume", str(session)) == 0
    assert pngs(session) == pngs(only_session(tmp_path / "one"))
    assert json.loads((session / "session.json").read_text())["state"] == "done"
