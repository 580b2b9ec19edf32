"""`lse run` on the project's own configs writes the session the spec describes."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from safetensors.torch import load_file

from helpers import ROOT, only_session, run_config

KINDS = ("txt2img", "img2img", "inpaint")


@pytest.mark.parametrize("kind", KINDS)
def test_single_inference_writes_session(kind, out):
    assert run_config(ROOT / "configs" / kind / "single_inference.yaml", out,
                      "images_per_prompt=2") == 0
    session = only_session(out)
    assert session.name.endswith(f"_{kind}_single-inference")
    for sub in ("configs", "images", "embeddings", "gifs", "videos"):
        assert (session / sub).is_dir()
    pngs = sorted(p.name for p in (session / "images").glob("*.png"))
    assert pngs == ["output-0_diffstep-3.png", "output-1_diffstep-3.png"]
    for name in pngs:
        with Image.open(session / "images" / name) as image:
            assert image.size == (64, 64)
        tensors = load_file(session / "embeddings" / name.replace(".png", ".safetensors"))
        assert tensors["prompt_embed"].shape == (2, 77, 1024)
        assert tensors["latent_noise"].shape == (1, 4, 8, 8)
        assert tensors["image_embed"].shape == (1, 4, 8, 8)
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["state"] == "done"
    assert manifest["frames_done"] == manifest["frames_planned"] == 2
    assert manifest["batch_size"] >= 1
    assert {"lse", "torch", "diffusers"} <= set(manifest["versions"])
    stored = (session / "configs" / "config.yaml").read_text()
    assert "model_id: tiny" in stored and "rand_seed: 42" in stored
    assert "scheduler: DPMSolverMultistepScheduler" in stored  # defaults are stored too
    with Image.open(session / "gifs" / "outputs.gif") as gif:
        assert gif.n_frames == 2


@pytest.mark.parametrize("kind", KINDS)
def test_visualize_diffusion_writes_steps_gif_grid(kind, out):
    assert run_config(ROOT / "configs" / kind / "visualize_diffusion.yaml", out,
                      "strength=1.0") == 0
    session = only_session(out)
    # the original tool numbers the steps that ran from 0
    steps = [session / "images" / f"output-0_diffstep-{s}.png" for s in (0, 1, 2)]
    assert all(p.is_file() for p in steps)
    assert all((session / "embeddings" / f"output-0_diffstep-{s}.safetensors").is_file()
               for s in (0, 1, 2))
    with Image.open(session / "gifs" / "output-0.gif") as gif:
        assert gif.n_frames == 3
    with Image.open(session / "images" / "output-0_diffusion-grid.png") as sheet:
        assert sheet.size == (128, 128)  # 3 steps on a 2x2 sheet of 64x64 frames
        with Image.open(steps[0]) as first:
            assert sheet.crop((0, 0, 64, 64)).tobytes() == first.convert("RGB").tobytes()
    assert (session / "videos" / "output-0.mp4").stat().st_size > 0


def test_img2img_strength_runs_fewer_steps(out):
    assert run_config(ROOT / "configs/img2img/visualize_diffusion.yaml", out,
                      "diffusion_steps=5", "strength=0.5") == 0
    session = only_session(out)
    steps = sorted(p.name for p in (session / "images").glob("output-0_diffstep-*.png"))
    # int(5 * 0.5) = 2 denoising steps (round() would give 3), named 0 and 1 as the original does
    assert steps == ["output-0_diffstep-0.png", "output-0_diffstep-1.png"]


def test_same_seed_gives_identical_bytes(tmp_path):
    config = ROOT / "configs/txt2img/single_inference.yaml"
    first, second = tmp_path / "a", tmp_path / "b"
    assert run_config(config, first, "images_per_prompt=3", "batch_size=2") == 0
    assert run_config(config, second, "images_per_prompt=3", "batch_size=2") == 0
    a, b = only_session(first), only_session(second)
    names = sorted(p.name for p in (a / "images").glob("*.png"))
    assert len(names) == 3
    for name in names:
        assert (a / "images" / name).read_bytes() == (b / "images" / name).read_bytes()


def test_export_rewrites_gif_and_mp4(out):
    import imageio_ffmpeg

    from helpers import run_cli
    from lse_core.session import Session

    assert run_config(ROOT / "configs/txt2img/visualize_diffusion.yaml", out,
                      "gif_frame_dur=100") == 0
    session = only_session(out)
    (entry,) = [m for m in Session.open(session).stored_media() if m["name"] == "output-0"]
    frames = len(entry["frames"])  # every denoising step, 3 here
    gif, mp4 = session / "gifs" / "output-0.gif", session / "videos" / "output-0.mp4"
    gif.unlink()
    mp4.unlink()
    assert run_cli("export", str(session), "--gif", "--mp4") == 0
    with Image.open(gif) as image:
        shown = sum(image.seek(i) or image.info["duration"] for i in range(image.n_frames))
    assert frames == 3 and shown == frames * 100
    assert imageio_ffmpeg.count_frames_and_secs(str(mp4))[0] == frames


def test_drawn_seed_is_recorded_and_reproduces(tmp_path):
    import yaml

    config = ROOT / "configs/txt2img/single_inference.yaml"
    assert run_config(config, tmp_path / "a", "rand_seed=None") == 0
    first = only_session(tmp_path / "a")
    seed = yaml.safe_load((first / "configs" / "config.yaml").read_text())["rand_seed"]
    assert isinstance(seed, int)
    assert run_config(config, tmp_path / "b", f"rand_seed={seed}") == 0
    second = only_session(tmp_path / "b")
    for png in (first / "images").glob("*.png"):
        assert png.read_bytes() == (second / "images" / png.name).read_bytes()


def test_two_runs_in_one_process_at_different_sizes(tmp_path):
    """The engine (shared by runs, as in the TUI) must not reuse an encoding of another size."""
    config = ROOT / "configs/img2img/single_inference.yaml"
    assert run_config(config, tmp_path / "a", "images_per_prompt=1") == 0
    assert run_config(config, tmp_path / "b", "images_per_prompt=1", "width=128") == 0
    with Image.open(next((only_session(tmp_path / "b") / "images").glob("*.png"))) as image:
        assert image.size == (128, 64)


@pytest.mark.parametrize("scheduler", ["HeunDiscreteScheduler", "PNDMScheduler", "KDPM2DiscreteScheduler"])
def test_visualize_diffusion_saves_one_frame_per_step_with_multistage_schedulers(scheduler, out):
    assert run_config(ROOT / "configs/txt2img/visualize_diffusion.yaml", out, f"scheduler={scheduler}") == 0
    session = only_session(out)
    steps = sorted(p.name for p in (session / "images").glob("output-0_diffstep-*.png"))
    assert steps == [f"output-0_diffstep-{s}.png" for s in (0, 1, 2)]
