"""`lse bench`, the padded batches it relies on, and runs without a video encoder (SPEC §9)."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from helpers import ROOT, only_session, run_cli, run_config
from lse_core.engine import Engine, FrameInput, RenderSettings
from lse_core.latents import encode_prompt, make_noise
from lse_core.models import load_model

MEASURE_KEYS = {"seconds", "s_per_frame", "unet_calls", "s_per_unet_call", "peak_memory_mb",
                "runs_s", "tflops", "fraction_of_fp16_peak"}


@pytest.mark.parametrize("work,frames", [("interpolation", 32), ("diffevolution", 20),
                                         ("visualize", 2)])
def test_bench_writes_every_field(work, frames, tmp_path, capsys):
    result = tmp_path / "bench.json"
    assert run_cli("bench", "--model", "tiny", "--work", work, "--size", "64", "--steps", "2",
                   "--batch-size", "4", "--repeats", "2", "--json", str(result)) == 0
    data = json.loads(result.read_text())
    assert data["work"] == work and data["frames"] == frames and data["compiled"] is False
    for way in ("naive", "engine"):
        assert set(data[way]) == MEASURE_KEYS
        assert data[way]["seconds"] > 0 and data[way]["tflops"] > 0
        assert len(data[way]["runs_s"]) == 2 and min(data[way]["runs_s"]) <= data[way]["seconds"]
        assert data[way]["fraction_of_fp16_peak"] is None  # no fp16 peak for a CPU
    assert data["speedup"] == pytest.approx(data["naive"]["seconds"] / data["engine"]["seconds"])
    assert data["tflop_per_frame"] > 0
    assert data["end_to_end"]["frames"] >= 1 and data["end_to_end"]["s_per_frame"] > 0
    assert "speedup (naive time / engine time)" in capsys.readouterr().out


@torch.no_grad()
def test_a_padded_batch_gives_the_same_bytes():
    model = load_model("tiny", False, torch.device("cpu"), torch.float32)
    engine = Engine(model)
    frames = [FrameInput(encode_prompt(model, f"a boat number {i}", ""), make_noise(i, 1, 64, 64),
                         step_seed=i) for i in range(4)]
    settings = RenderSettings(steps=3, guidance_scale=7.5, scheduler="EulerAncestralDiscrete")
    padded = engine.render(frames[:3], settings, pad_to=4)
    full = engine.render(frames, settings)[:3]
    assert len(padded) == 3
    for a, b in zip(padded, full):
        assert torch.equal(a.image_embed, b.image_embed)
        assert a.image.tobytes() == b.image.tobytes()


def test_without_a_video_encoder_the_run_writes_gifs_and_says_so(out, monkeypatch, capsys):
    from lse_core.media import video_unavailable

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as on a server without it
    video_unavailable.cache_clear()
    try:
        assert run_config(ROOT / "configs/txt2img/random_walk.yaml", out, "walk_steps=2") == 0
    finally:
        video_unavailable.cache_clear()
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "MP4" in line] == [
        "MP4 needs imageio-ffmpeg (pip install imageio-ffmpeg); skipping MP4 videos (GIFs are written)"]
    session = only_session(out)
    assert list((session / "gifs").glob("*.gif")) and not list((session / "videos").iterdir())
