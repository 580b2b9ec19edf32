"""Model families: SD 1.x, SD 2.x and SDXL, told from their configs, each equal to diffusers.

Tiny random folders of each family (family_models.py) are built once per run and
loaded through lse's own loading path; diffusers' pipelines load the same folders
themselves and are fed what lse wrote to its embedding files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
)
from PIL import Image
from safetensors import safe_open

from family_models import SDXL_POOLED_WIDTH
from helpers import ROOT, COMPAT, only_session, run_cli, write_config

HEIGHT, WIDTH = 64, 96  # not square: a swapped height and width would show
STEPS, SEED, STRENGTH = 3, 5, 0.7
PROMPT = "a lighthouse on a cliff|blurry"
IMAGE, MASK = ROOT / "resources/landscape.png", ROOT / "resources/landscape_mask.png"
PIPELINES = {
    (False, "txt2img"): StableDiffusionPipeline, (False, "img2img"): StableDiffusionImg2ImgPipeline,
    (False, "inpaint"): StableDiffusionInpaintPipeline, (True, "txt2img"): StableDiffusionXLPipeline,
    (True, "img2img"): StableDiffusionXLImg2ImgPipeline,
    (True, "inpaint"): StableDiffusionXLInpaintPipeline,
}
LABELS = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
CPU = torch.device("cpu")


def _config(tmp_path: Path, model: Path | str, kind: str, **keys) -> Path:
    images = {"img2img": {"image": str(IMAGE), "strength": STRENGTH},
              "inpaint": {"image": str(IMAGE), "mask": str(MASK)}}.get(kind, {})
    keys = {"exp_identifier": "single-inference", "prompt": PROMPT, "height": HEIGHT,
            "width": WIDTH, "diffusion_steps": STEPS, "rand_seed": SEED, "images_per_prompt": 1,
            "scheduler": "DPMSolverMultistepScheduler", **images, **keys}
    tmp_path.mkdir(parents=True, exist_ok=True)
    return write_config(tmp_path / "config.yaml", model_identifier=kind, model_id=str(model), **keys)


def _run(tmp_path: Path, model: Path | str, kind: str, **keys) -> Path:
    """``lse run`` of one frame; returns the session folder."""
    out = tmp_path / "sessions"
    assert run_cli("run", str(_config(tmp_path, model, kind, **keys)), "--out", str(out)) == 0
    return only_session(out)


def _frame(session: Path) -> tuple[np.ndarray, dict[str, torch.Tensor], dict[str, str]]:
    """The frame's pixels (0..1) and its embedding file's tensors and metadata."""
    [png] = (session / "images").glob("*.png")
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
    with safe_open(str(session / "embeddings" / f"{png.stem}.safetensors"), "pt") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        metadata = handle.metadata() or {}
    return pixels, tensors, metadata


def _mean_latents(pipe, pixels: torch.Tensor) -> torch.Tensor:
    # lse encodes images to the distribution's mean (the pipelines sample); the pipelines
    # accept ready latents, so both start alike.
    return pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor


@torch.no_grad()
def _diffusers_frame(folder: Path, kind: str, tensors: dict[str, torch.Tensor]) -> np.ndarray:
    """diffusers' own pipeline for the folder, fed the embeddings and noise lse wrote."""
    tokens, noise = tensors["prompt_embed"], tensors["latent_noise"]
    pooled = tensors.get("pooled_prompt_embed")
    pipe = PIPELINES[pooled is not None, kind].from_pretrained(folder)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    args = dict(prompt_embeds=tokens[1:], negative_prompt_embeds=tokens[:1],
                num_inference_steps=STEPS, guidance_scale=7.5, output_type="np")
    if pooled is not None:
        args.update(pooled_prompt_embeds=pooled[1:], negative_pooled_prompt_embeds=pooled[:1])
    image = Image.open(IMAGE).convert("RGB")
    if kind == "txt2img":
        return pipe(latents=noise, height=HEIGHT, width=WIDTH, **args).images[0]
    pixels = pipe.image_processor.preprocess(image, HEIGHT, WIDTH)
    if kind == "img2img":
        # The img2img pipelines draw their own noise from the generator: it is the file's.
        assert torch.equal(torch.randn(noise.shape, generator=torch.Generator().manual_seed(SEED)),
                           noise)
        return pipe(image=_mean_latents(pipe, pixels), strength=STRENGTH,
                    generator=torch.Generator().manual_seed(SEED), **args).images[0]
    mask = Image.open(MASK)
    masked = _mean_latents(pipe, pixels * (pipe.mask_processor.preprocess(mask, HEIGHT, WIDTH) < 0.5))
    return pipe(image=image, mask_image=mask, masked_image_latents=masked, latents=noise,
                height=HEIGHT, width=WIDTH, strength=1.0, **args).images[0]


FIDELITY = [(family, kind, prediction) for family in ("sd1", "sd2", "sdxl")
            for kind in ("txt2img", "img2img", "inpaint")
            for prediction in ("epsilon", "v_prediction")]


@pytest.mark.parametrize("family,kind,prediction", FIDELITY)
def test_frame_equals_the_diffusers_pipeline(family, kind, prediction, family_model, tmp_path):
    folder = family_model(family, kind == "inpaint", prediction)
    pixels, tensors, metadata = _frame(_run(tmp_path, folder, kind))
    assert metadata["family"] == family
    if family == "sdxl":  # negative row, positive row, as for prompt_embed
        assert tensors["pooled_prompt_embed"].shape == (2, SDXL_POOLED_WIDTH)
    else:
        assert "pooled_prompt_embed" not in tensors
    expected = _diffusers_frame(folder, kind, tensors)
    assert np.abs(pixels - expected).max() <= 2 / 255


@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_sdxl_aesthetic_score_conditioning_equals_the_pipeline(kind, family_model, tmp_path):
    """A refiner-like model (requires_aesthetics_score) reads scores instead of the size."""
    folder = family_model("sdxl", kind == "inpaint", aesthetics=True)
    pixels, tensors, _ = _frame(_run(tmp_path, folder, kind))
    assert np.abs(pixels - _diffusers_frame(folder, kind, tensors)).max() <= 2 / 255


@pytest.mark.parametrize("negative", ["blurry", ""])
@pytest.mark.parametrize("family,extra", [("sd1", {}), ("sd2", {}), ("sdxl", {}),
                                          ("sdxl", {"force_zeros": False})])
@torch.no_grad()
def test_prompt_encoding_equals_the_pipeline(family, extra, negative, family_model):
    """SDXL: both encoders' penultimate states side by side, the pooled embedding of the
    second; an empty negative prompt is zeros where the model's config says so."""
    from lse_core.latents import encode_prompt
    from lse_core.models import load_model

    folder = family_model(family, **extra)
    embed = encode_prompt(load_model(str(folder), False, CPU, torch.float32), "a red boat", negative)
    pipe = PIPELINES[family == "sdxl", "txt2img"].from_pretrained(folder)
    expected = pipe.encode_prompt("a red boat", device=CPU, num_images_per_prompt=1,
                                  do_classifier_free_guidance=True,
                                  negative_prompt=negative or None)
    assert torch.allclose(embed.tokens[1], expected[0][0], atol=1e-5)
    assert torch.allclose(embed.tokens[0], expected[1][0], atol=1e-5)
    if family == "sdxl":
        assert torch.allclose(embed.pooled[1], expected[2][0], atol=1e-5)
        assert torch.allclose(embed.pooled[0], expected[3][0], atol=1e-5)
        zeros = not negative and extra.get("force_zeros", True)
        assert (embed.pooled[0].abs().max() == 0) == zeros
    else:
        assert embed.pooled is None


@pytest.mark.parametrize("family,inpaint", [("sd1", False), ("sd2", False), ("sdxl", False),
                                            ("sd1", True), ("sdxl", True)])
def test_family_comes_from_the_configs(family, inpaint, family_model):
    from diffusers import DiffusionPipeline

    from lse_core.families import Anatomy, detect_family
    from lse_core.models import load_model

    folder = family_model(family, inpaint)
    assert load_model(str(folder), inpaint, CPU, torch.float32).family.key == family
    # the same rules on a pipeline already loaded (how single-file checkpoints arrive)
    pipe = DiffusionPipeline.from_pretrained(folder)
    assert detect_family(Anatomy.of_pipeline(pipe), str(folder)).key == family
    assert load_model("tiny", inpaint, CPU, torch.float32).family.key == "sd2"


# every experiment × kind for every family ---------------------------------------------------

CONFIGS = sorted((ROOT / "configs").glob("*/*.yaml"))
CHEAP = ["height=32", "width=32", "diffusion_steps=2", "images_per_prompt=1", "walk_steps=1",
         "walk_directions=1", "interpolation_steps=1", "genes_per_generation=2",
         "num_filler_frames=2", "translation_factor=0.25", "batch_size=4"]


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{c.parent.name}-{c.stem}" for c in CONFIGS])
@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_every_experiment_runs_for_every_family(family, config, family_model, tmp_path):
    folder = family_model(family, config.parent.name == "inpaint")
    args = ["run", str(config), "--model", str(folder), "--out", str(tmp_path)]
    for item in CHEAP:
        args += ["--set", item]
    if "diffevolution" in config.stem:
        args += ["--auto", "1"]
    assert run_cli(*args) == 0
    session = only_session(tmp_path)
    files = list((session / "embeddings").glob("*.safetensors"))
    assert files and len(list((session / "images").glob("*.png"))) >= len(files)
    for file in files:
        with safe_open(str(file), "pt") as handle:
            assert handle.metadata()["family"] == family
            assert ("pooled_prompt_embed" in handle.keys()) == (family == "sdxl")


# the pooled embedding moves with the token embeddings (SDXL) ---------------------------------

def _reference_slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Textbook slerp of two whole tensors (an independent check of lse's)."""
    cos = torch.dot(a.flatten(), b.flatten()) / (a.norm() * b.norm())
    theta = torch.acos(cos.clamp(-1, 1))
    return (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)


def _embedding(session: Path, name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(session / "embeddings" / f"{name}.safetensors")


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_sdxl_interpolation_moves_the_pooled_embedding(method, family_model, tmp_path):
    config = write_config(tmp_path / "i.yaml", model_identifier="txt2img",
                          exp_identifier="interpolation", model_id=str(family_model("sdxl")),
                          inter_prompts=["a red boat|blurry", "a green hill at night|fog"],
                          inter_noises=[3], interpolation_steps=1, interpolation_method=method,
                          height=32, width=32, diffusion_steps=2)
    assert run_cli("run", str(config), "--out", str(tmp_path / "s")) == 0
    session = only_session(tmp_path / "s")
    start, middle, end = (_embedding(session, f"interpolation_lstitms-0,1_step-{s}")
                          for s in ("start", "1", "end"))
    for key in ("prompt_embed", "pooled_prompt_embed"):
        a, b = start[key], end[key]
        expected = (a + b) / 2 if method == "lerp" else _reference_slerp(a, b, 0.5)
        assert not torch.allclose(a, b)
        assert torch.allclose(middle[key], expected, atol=1e-5), key


def test_sdxl_random_walk_moves_the_pooled_embedding(family_model, tmp_path):
    config = write_config(tmp_path / "w.yaml", model_identifier="txt2img",
                          exp_identifier="random-walk", model_id=str(family_model("sdxl")),
                          prompt="a red boat|blurry", prompt_rand_walk=True, noise_rand_walk=False,
                          walk_steps=2, walk_directions=1, step_size=0.1, height=32, width=32,
                          diffusion_steps=2, rand_seed=4)
    assert run_cli("run", str(config), "--out", str(tmp_path / "s")) == 0
    session = only_session(tmp_path / "s")
    start, one, two = (_embedding(session, f"output-0_direction-0_randwalkstep-{s}")
                       for s in ("start", "1", "2"))
    for key in ("prompt_embed", "pooled_prompt_embed"):
        delta = one[key] - start[key]
        assert 0 < delta.abs().max() <= 0.1 + 1e-6, key  # uniform in [-1, 1] x step_size
        assert torch.allclose(two[key] - start[key], 2 * delta, atol=1e-5), key


def test_sd_random_walk_draws_only_its_own_deltas(tmp_path):
    """SD 1.x/2.x walks draw what they always drew (a noise delta, then a token delta, per
    direction, from the seed), so their frames stay byte-identical: no pooled delta."""
    config = write_config(tmp_path / "w.yaml", model_identifier="txt2img",
                          exp_identifier="random-walk", model_id="tiny", prompt="a red boat",
                          prompt_rand_walk=True, noise_rand_walk=True, walk_steps=1,
                          walk_directions=2, step_size=0.1, height=32, width=32,
                          diffusion_steps=1, rand_seed=4)
    assert run_cli("run", str(config), "--out", str(tmp_path / "s")) == 0
    session = only_session(tmp_path / "s")
    start = _embedding(session, "output-0_direction-0_randwalkstep-start")
    generator = torch.Generator().manual_seed(4)
    for direction in range(2):
        noise_delta = 0.1 * (torch.rand(start["latent_noise"].shape, generator=generator) * 2 - 1)
        prompt_delta = 0.1 * (torch.rand(start["prompt_embed"].shape, generator=generator) * 2 - 1)
        step = _embedding(session, f"output-0_direction-{direction}_randwalkstep-1")
        assert torch.equal(step["latent_noise"], start["latent_noise"] + noise_delta)
        assert torch.equal(step["prompt_embed"], start["prompt_embed"] + prompt_delta)


@torch.no_grad()
def test_sdxl_diffevolution_moves_the_pooled_embedding(family_model, tmp_path):
    from lse_core.latents import encode_prompt
    from lse_core.models import load_model

    folder = family_model("sdxl")
    config = write_config(tmp_path / "e.yaml", model_identifier="txt2img",
                          exp_identifier="diffevolution", model_id=str(folder),
                          prompt="a calm sea|blurry", genes_per_generation=2, step_size=0.4,
                          height=32, width=32, diffusion_steps=2, rand_seed=9)
    actions = tmp_path / "actions.txt"
    actions.write_text(";;a storm over the sea|fog\n0\nexit\n")  # re-roll towards a new target
    assert run_cli("run", str(config), "--out", str(tmp_path / "s"), "--actions", str(actions)) == 0
    session = only_session(tmp_path / "s")
    start = _embedding(session, "difevostep-start")
    target = encode_prompt(load_model(str(folder), False, CPU, torch.float32),
                           "a storm over the sea", "fog")
    for gene in range(2):
        moved = _embedding(session, f"difevostep-2_parent-start_gene-{gene}")
        for key, towards in (("prompt_embed", target.tokens), ("pooled_prompt_embed", target.pooled)):
            expected = _reference_slerp(start[key], towards, 0.4)
            assert torch.allclose(moved[key], expected, atol=1e-4), key


def test_sdxl_embedding_file_drives_a_render_again(family_model, tmp_path):
    """load_prompt_embeds carries the pooled embedding: the same file gives the same frame."""
    folder = family_model("sdxl")
    first = _run(tmp_path / "a", folder, "txt2img")
    [png] = (first / "images").glob("*.png")
    file = first / "embeddings" / f"{png.stem}.safetensors"
    again = _run(tmp_path / "b", folder, "txt2img", prompt=None, load_prompt_embeds=str(file),
                 load_latent_noise=str(file))
    assert (again / "images" / png.name).read_bytes() == png.read_bytes()


# bad input and run-time faults ---------------------------------------------------------------

def _one_line_failure(capsys, *args: str, code: int = 2) -> str:
    capsys.readouterr()  # what building the models printed
    assert run_cli(*args) == code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def _pipeline_folder(folder: Path, index: dict) -> Path:
    """Only a model_index.json: lse must refuse it before reading any weights."""
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


UNKNOWN = {
    "flux": ({"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"],
              "text_encoder": ["transformers", "CLIPTextModel"],
              "text_encoder_2": ["transformers", "T5EncoderModel"]},
             "looks like a diffusion transformer (FluxPipeline: a transformer instead of a UNet)"),
    "sd3": ({"_class_name": "StableDiffusion3Pipeline",
             "transformer": ["diffusers", "SD3Transformer2DModel"],
             "text_encoder_3": ["transformers", "T5EncoderModel"]},
            "looks like SD3 (StableDiffusion3Pipeline: a transformer instead of a UNet)"),
    "kandinsky": ({"_class_name": "KandinskyV22Pipeline", "unet": ["diffusers", "UNet2DConditionModel"],
                   "movq": ["diffusers", "VQModel"]},
                  "looks like Kandinsky (KandinskyV22Pipeline: a prior or MoVQ decoder)"),
}


@pytest.mark.parametrize("name", sorted(UNKNOWN))
def test_unknown_family_is_one_line(name, tmp_path, capsys):
    index, expected = UNKNOWN[name]
    folder = _pipeline_folder(tmp_path / "model", index)
    line = _one_line_failure(capsys, "run", str(_config(tmp_path, folder, "txt2img")),
                             "--out", str(tmp_path / "out"))
    assert expected in line
    assert line.endswith("lse supports SD 1.x, SD 2.x (ε and v-prediction) and SDXL")
    assert not any((tmp_path / "out").iterdir()), "a refused model leaves no session"


def test_text_width_of_no_family_is_one_line(tmp_path, capsys):
    from family_models import build_sd

    folder = build_sd(tmp_path / "model", "sd1", text_width=512)
    line = _one_line_failure(capsys, "run", str(_config(tmp_path, folder, "txt2img")),
                             "--out", str(tmp_path / "out"))
    assert ("looks like Stable Diffusion with a text width of 512 (SD 1.x reads 768, "
            "SD 2.x 1024); lse supports") in line


def test_unknown_pipeline_class_is_one_line(family_model, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(family_model("sd1"), folder)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": "AltDiffusionPipeline"}))
    line = _one_line_failure(capsys, "run", str(_config(tmp_path, folder, "txt2img")),
                             "--out", str(tmp_path / "out"))
    assert "looks like a model for AltDiffusionPipeline (a pipeline lse does not drive)" in line


def test_a_unet_of_another_shape_is_one_line(family_model, tmp_path, capsys):
    folder = tmp_path / "model"  # SD 2 depth's UNet: the latents and a depth map, 5 channels
    shutil.copytree(family_model("sd2"), folder)
    unet = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps({**unet, "in_channels": 5}))
    line = _one_line_failure(capsys, "run", str(_config(tmp_path, folder, "txt2img")),
                             "--out", str(tmp_path / "out"))
    assert "looks like a model whose UNet takes 5 input channels (lse drives 4, or 9 for " \
           "inpainting)" in line


def _original_tool_file(path: Path, width: int = 1024) -> Path:
    """An embedding file as the original tool wrote it: torch.save, fp16, no family."""
    torch.save({"prompt_embed": torch.randn(2, 77, width).half(),
                "latent_noise": torch.randn(1, 4, 8, 12).half(),
                "image_embed": torch.randn(1, 4, 8, 12).half()}, path)
    return path


def test_sd2_pt_into_sdxl_is_one_line(family_model, tmp_path, capsys):
    pt = _original_tool_file(tmp_path / "original.pt")
    config = _config(tmp_path, family_model("sdxl"), "txt2img", load_prompt_embeds=str(pt))
    line = _one_line_failure(capsys, "run", str(config), "--out", str(tmp_path / "out"))
    assert line.startswith(f"lse: {pt}: an SD 2.x embedding file, but the model is SDXL")


def test_sdxl_file_into_sd2_is_one_line(family_model, tmp_path, capsys):
    session = _run(tmp_path / "xl", family_model("sdxl"), "txt2img")
    [file] = (session / "embeddings").glob("*.safetensors")
    config = _config(tmp_path, "tiny", "txt2img", load_prompt_embeds=str(file))
    line = _one_line_failure(capsys, "run", str(config), "--out", str(tmp_path / "out"))
    assert line.startswith(f"lse: {file}: an SDXL embedding file, but the model is SD 2.x")


def test_sdxl_file_without_its_pooled_embedding_is_one_line(family_model, tmp_path, capsys):
    """A file recorded as SDXL must carry the pooled embedding."""
    from safetensors.torch import load_file, save_file

    session = _run(tmp_path / "xl", family_model("sdxl"), "txt2img")
    [file] = (session / "embeddings").glob("*.safetensors")
    tensors = load_file(file)
    del tensors["pooled_prompt_embed"]
    save_file(tensors, tmp_path / "cut.safetensors", metadata={"family": "sdxl"})
    config = _config(tmp_path, family_model("sdxl"), "txt2img",
                     load_prompt_embeds=str(tmp_path / "cut.safetensors"))
    line = _one_line_failure(capsys, "run", str(config), "--out", str(tmp_path / "out"))
    assert "cut.safetensors: missing tensor pooled_prompt_embed" in line


@pytest.mark.skipif(not COMPAT.is_dir(), reason="shared/compat not present")
def test_original_tool_pt_into_sdxl_is_one_line(family_model, tmp_path, capsys):
    pt = COMPAT / "txt2img_output-0_diffstep-25.pt"
    config = _config(tmp_path, family_model("sdxl"), "txt2img", load_prompt_embeds=str(pt))
    line = _one_line_failure(capsys, "run", str(config), "--out", str(tmp_path / "out"))
    assert "an SD 2.x embedding file, but the model is SDXL" in line


def test_sdxl_vae_is_upcast_in_fp16(family_model):
    from lse_core.models import load_model

    xl = load_model(str(family_model("sdxl")), False, CPU, torch.float16)
    assert xl.unet.dtype == torch.float16 and xl.text_encoder_2.dtype == torch.float16
    assert xl.vae.dtype == torch.float32  # force_upcast, as diffusers' SDXL pipelines do
    sd = load_model(str(family_model("sd1")), False, CPU, torch.float16)
    assert sd.vae.dtype == torch.float16  # diffusers' SD pipelines keep it


def test_frame_decoding_to_nan_stops_the_run(family_model, tmp_path, capsys):
    """Never a black frame: the run stops with one line saying why and what to do."""
    from diffusers import AutoencoderKL

    folder = tmp_path / "model"
    shutil.copytree(family_model("sd1"), folder)
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    with torch.no_grad():
        vae.decoder.conv_out.bias.fill_(float("nan"))  # weights damaged on the way
    vae.save_pretrained(folder / "vae")
    config = _config(tmp_path, folder, "txt2img")
    line = _one_line_failure(capsys, "run", str(config), "--out", str(tmp_path / "out"), code=1)
    assert "a frame came out as NaN from the VAE decoder, so it was not saved" in line
    assert not list((only_session(tmp_path / "out") / "images").glob("*.png"))


def test_bench_times_an_sdxl_model(family_model, tmp_path):
    """lse bench drives SDXL both ways: its own pipeline (the naive way) and the engine."""
    result = tmp_path / "bench.json"
    assert run_cli("bench", "--model", str(family_model("sdxl")), "--work", "visualize",
                   "--size", "32", "--steps", "2", "--repeats", "1", "--json", str(result)) == 0
    data = json.loads(result.read_text())
    assert data["naive"]["s_per_frame"] > 0 and data["engine"]["s_per_frame"] > 0
    assert data["tflop_per_frame"] > 0 and data["end_to_end"]["frames"] >= 1
