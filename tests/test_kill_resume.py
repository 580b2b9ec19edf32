"""`kill -9` mid-run, then `lse resume`: the final PNGs equal an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import ROOT, only_session, run_cli, write_config


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lse_core.cli", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())


def _kill_when(out: Path, pattern: str, at_least: int, process: subprocess.Popen) -> int:
    """SIGKILL the run once ``at_least`` files match; returns how many frames were on disk."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list(out.glob(f"*/images/{pattern}"))
        if len(found) >= at_least:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return len(list(out.glob("*/images/*.png")))
        if process.poll() is not None:
            raise AssertionError(f"run ended before it could be killed: {process.stderr.read()}")
        time.sleep(0.01)
    raise AssertionError("the run never produced frames")


def _same_pngs(a: Path, b: Path) -> None:
    names = sorted(p.name for p in (a / "images").glob("*.png"))
    assert names == sorted(p.name for p in (b / "images").glob("*.png"))
    for name in names:
        assert (a / "images" / name).read_bytes() == (b / "images" / name).read_bytes(), name


def test_kill_during_interpolation_then_resume(tmp_path):
    config = write_config(tmp_path / "interp.yaml", model_identifier="txt2img",
                          exp_identifier="interpolation", model_id="tiny", height=128, width=128,
                          diffusion_steps=3, rand_seed=1, batch_size=4, interpolation_steps=18,
                          inter_prompts=["a red fox", "a blue whale"], inter_noises=[1, 2])
    assert run_cli("run", str(config), "--out", str(tmp_path / "whole")) == 0
    whole = only_session(tmp_path / "whole")
    assert len(list((whole / "images").glob("*.png"))) == 20

    process = _start(["run", str(config), "--out", str(tmp_path / "killed")])
    kept = _kill_when(tmp_path / "killed", "*.png", 1, process)
    assert kept < 20
    killed = only_session(tmp_path / "killed")
    assert json.loads((killed / "session.json").read_text())["state"] == "running"
    assert run_cli("resume", str(killed)) == 0
    _same_pngs(whole, killed)
    assert json.loads((killed / "session.json").read_text())["state"] == "done"


def test_kill_during_diffevolution_auto_then_resume(tmp_path):
    config = write_config(tmp_path / "evo.yaml", model_identifier="txt2img",
                          exp_identifier="diffevolution", model_id="tiny", prompt="a quiet harbour",
                          height=128, width=128, diffusion_steps=3, rand_seed=4, batch_size=2,
                          genes_per_generation=3, step_size=0.3)
    assert run_cli("run", str(config), "--out", str(tmp_path / "whole"), "--auto", "5") == 0
    whole = only_session(tmp_path / "whole")

    process = _start(["run", str(config), "--out", str(tmp_path / "killed"), "--auto", "5"])
    _kill_when(tmp_path / "killed", "difevostep-3_*.png", 1, process)
    killed = only_session(tmp_path / "killed")
    assert run_cli("resume", str(killed)) == 0
    _same_pngs(whole, killed)
    whole_evo = json.loads((whole / "session.json").read_text())["diffevolution"]
    killed_evo = json.loads((killed / "session.json").read_text())["diffevolution"]
    assert killed_evo["lineage"] == whole_evo["lineage"]


def test_sigterm_stops_cleanly_with_exit_130(tmp_path):
    config = write_config(tmp_path / "rw.yaml", model_identifier="txt2img",
                          exp_identifier="random-walk", model_id="tiny", prompt="a fox",
                          height=128, width=128, diffusion_steps=3, rand_seed=2, batch_size=2,
                          walk_steps=24, noise_rand_walk=True)
    process = _start(["run", str(config), "--out", str(tmp_path / "s")])
    deadline = time.monotonic() + 120
    while not list((tmp_path / "s").glob("*/images/*.png")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    session = only_session(tmp_path / "s")
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["state"] == "interrupted"
    assert 0 < manifest["frames_done"] < 25
    assert run_cli("resume", str(session)) == 0
    assert len(list((session / "images").glob("*.png"))) == 25
