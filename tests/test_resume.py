"""Stopping a run keeps its frames; resuming ends with exactly the uninterrupted frames."""

from __future__ import annotations

import asyncio
import json

from lse_core.config import load_config
from lse_core.events import FrameReady, Interrupted, Started
from lse_core.run import ExperimentRun

from helpers import ROOT, SMALL, only_session, run_cli, run_config

CONFIG = ROOT / "configs/txt2img/single_inference.yaml"
KEYS = ["images_per_prompt=5", "batch_size=2"]


def _interrupt_after_first_frame(out) -> None:
    cfg = load_config(CONFIG, [*SMALL, *KEYS, f"output_path={out}"], model="tiny")
    run = ExperimentRun(cfg)

    async def consume():
        kinds = []
        async for event in run.events():
            kinds.append(type(event))
            if isinstance(event, FrameReady):
                run.cancel()
        return kinds

    kinds = asyncio.run(consume())
    assert Started in kinds and kinds[-1] is Interrupted


def test_resume_equals_uninterrupted(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert run_config(CONFIG, whole, *KEYS) == 0
    _interrupt_after_first_frame(broken)
    session = only_session(broken)
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["state"] == "interrupted"
    kept = sorted(p.name for p in (session / "images").glob("*.png"))
    assert 0 < len(kept) < 5  # the first batch of two survived the stop

    assert run_cli("resume", str(session)) == 0
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["state"] == "done" and manifest["frames_done"] == 5
    reference = only_session(whole)
    names = sorted(p.name for p in (reference / "images").glob("*.png"))
    assert names == sorted(p.name for p in (session / "images").glob("*.png"))
    for name in names:
        assert (session / "images" / name).read_bytes() == (reference / "images" / name).read_bytes()


def test_sessions_lists_state_and_frames(tmp_path, capsys):
    _interrupt_after_first_frame(tmp_path)
    assert run_cli("sessions", str(tmp_path)) == 0
    text = capsys.readouterr().out
    assert "interrupted" in text and "/5" in text and "single-inference" in text
