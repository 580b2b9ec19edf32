"""What the README's "Determinism" promises: the same config, batch size, padding, thread
count, device and library versions give the same bytes; a resume is that run; a run
leaves the process's own settings as it found them."""

from __future__ import annotations

import json
import os
import threading

import pytest
import torch

from lse_core.config import load_config
from lse_core.engine import Engine
from lse_core.events import FrameReady, Interrupted
from lse_core.models import CACHE_VARIABLE, compile_cache
from lse_core.run import RunOptions

from helpers import ROOT, SMALL, only_session, pngs, run_cli, run_in_process

SINGLE = ROOT / "configs/txt2img/single_inference.yaml"
INTERPOLATION = ROOT / "configs/txt2img/interpolation.yaml"
# Euler a draws fresh noise at every step: a resume is only equal if that noise is each
# frame's own, seeded from the frame, never from the batch or the clock.
ANCESTRAL = [*SMALL, "images_per_prompt=5", "batch_size=2",
             "scheduler=EulerAncestralDiscreteScheduler"]


def _run(config, out, keys, options: RunOptions | None = None, stop_after: int | None = None):
    """The run's last event; ``stop_after``: stopped once that many frames are done."""
    cfg = load_config(config, [*keys, f"output_path={out}"], model="tiny")
    return run_in_process(cfg, options, FrameReady if stop_after else None, stop_after or 1)


def _threads_seen_by_a_new_thread() -> int:
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    return seen[0]


@pytest.fixture
def threads_seen_while_rendering(monkeypatch) -> list[int]:
    """torch's thread count at every batch the engine renders (the real engine renders)."""
    seen: list[int] = []
    render = Engine.render

    def watching(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return render(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "render", watching)
    return seen


def test_an_ancestral_resume_equals_the_uninterrupted_run(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert run_cli("run", str(SINGLE), "--model", "tiny", "--out", str(whole),
                   *[a for key in ANCESTRAL for a in ("--set", key)]) == 0
    assert isinstance(_run(SINGLE, broken, ANCESTRAL, stop_after=1), Interrupted)
    session = only_session(broken)
    assert 0 < len(pngs(session)) < 5
    assert run_cli("resume", str(session)) == 0
    assert pngs(session) == pngs(only_session(whole))


def test_a_resume_renders_with_the_stored_thread_count_and_then_restores_the_process(
        tmp_path, threads_seen_while_rendering):
    own = torch.get_num_threads()
    stored = 1 if own > 1 else 2
    assert isinstance(_run(SINGLE, tmp_path, ANCESTRAL, stop_after=1), Interrupted)
    session = only_session(tmp_path)
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["torch_threads"] == own and manifest["device"] == "cpu"
    (session / "session.json").write_text(json.dumps({**manifest, "torch_threads": stored}))
    threads_seen_while_rendering.clear()

    assert run_cli("resume", str(session)) == 0
    assert threads_seen_while_rendering and set(threads_seen_while_rendering) == {stored}
    # The count is process-wide (a new thread sees it): the TUI's next run starts from
    # the process's own count, not from the last resumed session's.
    assert _threads_seen_by_a_new_thread() == own and torch.get_num_threads() == own


def test_padded_batches_give_the_bytes_of_unpadded_ones(tmp_path):
    # 2 keyframes and 4 in-betweens in batches of 4: the second batch of 2 is padded to 4.
    keys = [*SMALL, "inter_prompts=['a boat|', 'a storm|']", "inter_noises=[1, 2]",
            "interpolation_steps=4", "batch_size=4"]
    plain, padded = tmp_path / "plain", tmp_path / "padded"
    _run(INTERPOLATION, plain, keys, RunOptions(fixed_shapes=False))
    _run(INTERPOLATION, padded, keys, RunOptions(fixed_shapes=True))
    assert json.loads((only_session(padded) / "session.json").read_text())["fixed_shapes"] is True
    assert json.loads((only_session(plain) / "session.json").read_text())["fixed_shapes"] is False
    assert len(pngs(only_session(plain))) == 6
    assert pngs(only_session(padded)) == pngs(only_session(plain))


def test_padding_reaches_the_engine_and_a_resume_keeps_it(tmp_path, monkeypatch):
    pads: list[int | None] = []
    render = Engine.render

    def watching(self, *args, pad_to=None, **kwargs):
        pads.append(pad_to)
        return render(self, *args, pad_to=pad_to, **kwargs)

    monkeypatch.setattr(Engine, "render", watching)
    keys = [*SMALL, "images_per_prompt=5", "batch_size=2"]  # batches of 2, 2 and 1
    assert isinstance(_run(SINGLE, tmp_path, keys, RunOptions(fixed_shapes=True), stop_after=1),
                      Interrupted)
    assert pads and set(pads) == {2}
    pads.clear()
    assert run_cli("resume", str(only_session(tmp_path))) == 0  # no option: as stored
    assert pads and set(pads) == {2}  # the last batch, of 1 frame, padded to 2 too


def test_the_compile_cache_setting_lasts_for_the_block_only(monkeypatch):
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    with compile_cache():
        assert os.environ[CACHE_VARIABLE].endswith("torch-compile")
        os.environ[CACHE_VARIABLE] = "/written/by/inductor"  # as inductor's cache_dir() does
    assert CACHE_VARIABLE not in os.environ
    monkeypatch.setenv(CACHE_VARIABLE, "/the/users/own")
    with compile_cache():
        assert os.environ[CACHE_VARIABLE] == "/the/users/own"
    assert os.environ[CACHE_VARIABLE] == "/the/users/own"
