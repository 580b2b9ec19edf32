"""`lse bench`, the padded batches it relies on, and runs without a video encoder (SPEC §9)."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from helpers import ROOT, only_session, run_cli, run_config
from lse_core.bench import Work, batched_pipeline, make_work
from lse_core.engine import Engine, FrameInput, RenderSettings
from lse_core.latents import encode_prompt, make_noise
from lse_core.models import load_model

MEASURE_KEYS = {"seconds", "s_per_frame", "unet_calls", "s_per_unet_call", "peak_memory_mb",
                "runs_s", "tflops", "fraction_of_fp16_peak"}


# UNet calls, counted from each work's definition: per-frame calls run every frame alone;
# the engine and the batched pipeline run batches of 4 (a diffevolution generation's 5
# genes are 2 batches).
CALLS = {"interpolation": (32 * 2, 8 * 2), "diffevolution": (20 * 2, 4 * 2 * 2),
         "visualize": (1 * 2, 1 * 2)}
# Pictures lse run saves for each work: diffevolution's start frame and its 4 generations
# of 5 genes; visualize's every step.
SAVED = {"interpolation": 32, "diffevolution": 1 + 20, "visualize": 2}


@pytest.mark.parametrize("work,frames", [("interpolation", 32), ("diffevolution", 20),
                                         ("visualize", 2)])
def test_bench_writes_every_field(work, frames, tmp_path, capsys):
    result = tmp_path / "bench.json"
    assert run_cli("bench", "--model", "tiny", "--work", work, "--size", "32", "--steps", "2",
                   "--batch-size", "4", "--repeats", "2", "--json", str(result)) == 0
    data = json.loads(result.read_text())
    assert data["work"] == work and data["frames"] == frames and data["compiled"] is False
    per_frame_calls, batched_calls = CALLS[work]
    for way, calls in (("naive", per_frame_calls), ("batched_pipeline", batched_calls),
                       ("engine", batched_calls)):
        measure = data[way]
        assert set(measure) == MEASURE_KEYS
        assert measure["unet_calls"] == calls
        # The reported time is the median run (of two: their mean), not the best or the first.
        assert len(measure["runs_s"]) == 2
        assert measure["seconds"] == pytest.approx(sum(measure["runs_s"]) / 2, abs=1e-4)
        assert measure["s_per_frame"] == pytest.approx(measure["seconds"] / frames)
        assert measure["tflops"] > 0 and measure["fraction_of_fp16_peak"] is None  # a CPU
    assert "batched_pipeline_compiled" not in data  # nothing was compiled
    assert data["speedup_vs_batched_pipeline"] > 0 and data["speedup"] > 0
    assert data["tflop_per_frame"] > 0
    # lse run's figure counts the same pictures (visualize: every step's).
    end_to_end = data["end_to_end"]
    assert end_to_end["frames"] == SAVED[work] and end_to_end["s_per_frame"] > 0
    assert end_to_end["vs_engine"] == pytest.approx(
        end_to_end["s_per_frame"] / data["engine"]["s_per_frame"])
    out = capsys.readouterr().out
    assert "speedup against the batched pipeline" in out and "lse run (end to end)" in out


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


@torch.no_grad()
def test_the_batched_pipeline_renders_what_the_engine_renders():
    """lse bench's baseline is a fair one: the same frames, not easier work."""
    model = load_model("tiny", False, torch.device("cpu"), torch.float32)
    work = make_work("interpolation", model, 64, 2, 4)
    first = Work(work.name, work.groups[:1], work.settings)
    (latents,) = batched_pipeline(model, first, 4, output_type="latent")()
    engine = Engine(model).render(work.groups[0], work.settings)
    ours = torch.cat([frame.image_embed for frame in engine]) * model.vae.config.scaling_factor
    assert latents.shape == ours.shape == (4, 4, 8, 8)
    assert (latents - ours).abs().max() <= 1e-5 * ours.abs().max()
