"""Single-file checkpoints (`--model model.safetensors`): tiny SD 1.x, SD 2.x and SDXL
pipelines written as one file in the web UIs' key layout load to the very weights they
were written from and render the same frames; the configs lse ships for full-size
checkpoints are those of the reference models; bad files end in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from checkpoint_files import (
    build_pipeline,
    clip_to_original,
    copy_configs,
    openclip_to_original,
    unet_to_original,
    write_single_file,
)
from helpers import only_session, run_cli, run_config

MODELS = {"sd1": ("sd1", False), "sd1-inpaint": ("sd1", True), "sd2": ("sd2", False),
          "sdxl": ("sdxl", False), "sdxl-inpaint": ("sdxl", True)}
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name → (diffusers folder, single file with its config folder beside it)."""
    root = tmp_path_factory.mktemp("checkpoints")
    made = {}
    for name, (family, inpaint) in MODELS.items():
        folder = build_pipeline(family, root / "pipelines" / name, inpaint)
        file = write_single_file(folder, root / "models" / f"{name}.safetensors")
        copy_configs(folder, root / "models" / name)
        made[name] = (folder, file)
    return made


def _pipeline(model_id: str, inpaint: bool, notes: list[str]):
    from lse_core.models import quiet_libraries
    from lse_core.sources import load_pipeline, locate

    quiet_libraries()
    return load_pipeline(locate(model_id), torch.float32, inpaint, notes.append)


@pytest.mark.parametrize("name", MODELS)
def test_a_single_file_loads_the_weights_it_was_written_from(models, name):
    folder, file = models[name]
    inpaint = MODELS[name][1]
    notes: list[str] = []
    from_file = _pipeline(str(file), inpaint, notes)
    from_folder = _pipeline(str(folder), inpaint, [])
    assert notes == [f"{file.name}: configs from {file.with_suffix('')}"]
    assert type(from_file) is type(from_folder)
    compared = 0
    for component in COMPONENTS:
        expected = getattr(from_folder, component, None)
        if expected is None:
            continue
        got = getattr(from_file, component).state_dict()
        want = expected.state_dict()
        assert got.keys() == want.keys(), component
        assert all(torch.equal(got[key], want[key]) for key in want), component
        compared += 1
    assert compared == (4 if name.startswith("sdxl") else 3)
    assert dict(from_file.scheduler.config) == dict(from_folder.scheduler.config)


def _pixels(session: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted((session / "images").glob("*.png"))]


@pytest.mark.parametrize("name,kind", [("sd1", "txt2img"), ("sd2", "txt2img"),
                                       ("sd1-inpaint", "inpaint"), ("sdxl", "txt2img"),
                                       ("sdxl-inpaint", "inpaint")])
def test_a_single_file_renders_the_frames_of_its_folder(models, name, kind, tmp_path):
    folder, file = models[name]
    config = {"txt2img": "configs/txt2img/single_inference.yaml",
              "inpaint": "configs/inpaint/single_inference.yaml"}[kind]
    sessions = {}
    for label, model in (("file", file), ("folder", folder)):
        out = tmp_path / label
        assert run_config(config, out, "rand_seed=7", "diffusion_steps=2", model=str(model)) == 0
        sessions[label] = only_session(out)
    from_file, from_folder = _pixels(sessions["file"]), _pixels(sessions["folder"])
    assert from_file and len(from_file) == len(from_folder)
    assert all(np.array_equal(a, b) for a, b in zip(from_file, from_folder))


def _bad_run(model: str, tmp_path: Path, capsys) -> str:
    out = tmp_path / "sessions"
    code = run_config("configs/txt2img/single_inference.yaml", out, model=model)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists() or not any(out.iterdir())
    return lines[0]


def test_a_truncated_checkpoint_is_one_line(models, tmp_path, capsys):
    data = models["sd1"][1].read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    assert "cut.safetensors: not a readable .safetensors checkpoint" in _bad_run(str(cut), tmp_path, capsys)


def test_a_safetensors_file_without_a_unet_is_one_line(tmp_path, capsys):
    embedding = tmp_path / "embedding.safetensors"
    save_file({"prompt_embed": torch.zeros(2, 77, 1024)}, str(embedding))
    line = _bad_run(str(embedding), tmp_path, capsys)
    assert "embedding.safetensors is not a Stable Diffusion checkpoint" in line


def test_a_pickled_checkpoint_is_refused(tmp_path, capsys):
    pickled = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}}, pickled)
    assert "lse loads .safetensors checkpoints only" in _bad_run(str(pickled), tmp_path, capsys)


def test_a_config_folder_without_model_index_is_one_line(models, tmp_path, capsys):
    file = tmp_path / "mine.safetensors"
    file.write_bytes(models["sd1"][1].read_bytes())
    (tmp_path / "mine").mkdir()
    line = _bad_run(str(file), tmp_path, capsys)
    assert f"{tmp_path / 'mine'}/ beside the checkpoint is not a diffusers config folder" in line


@pytest.mark.parametrize("name,problem", [
    ("sd1", "its tensors fit none of the checkpoint types lse ships configs for"),
    # diffusers takes it for SD 2.x (its cross-attention is 1024 wide); the sizes do not fit
    ("sd2", "does not fit the configs in"),
])
def test_a_small_checkpoint_without_its_configs_asks_for_them(models, name, problem, tmp_path,
                                                               capsys):
    alone = tmp_path / "alone.safetensors"
    alone.write_bytes(models[name][1].read_bytes())  # no config folder beside it
    line = _bad_run(str(alone), tmp_path, capsys)
    assert problem in line
    assert line.endswith("put the model's diffusers configs (what save_pretrained writes, "
                         f"without the weights) in {tmp_path / 'alone'}/")


# --- the configs lse ships for full-size checkpoints -----------------------------------------

# Parameter counts of the reference models (diffusers' and the model cards' figures).
SD15_UNET, SD2_UNET, SDXL_UNET = 859_520_964, 865_910_724, 2_567_463_684
VAE, CLIP_L, OPENCLIP_H, OPENCLIP_BIGG = 83_653_863, 123_060_480, 340_387_840, 694_659_840
INPAINT_EXTRA = 5 * 320 * 3 * 3  # five more input channels into the first 320-wide 3×3 conv
SHIPPED = {
    # type: (diffusers' name for it, UNet, text encoders, pad token id of each tokenizer)
    "sd1": ("v1", SD15_UNET, (CLIP_L,), (49407,)),
    "sd1-inpaint": ("inpainting", SD15_UNET + INPAINT_EXTRA, (CLIP_L,), (49407,)),
    "sd2-v": ("v2", SD2_UNET, (OPENCLIP_H,), (0,)),
    "sd2-base": ("v2", SD2_UNET, (OPENCLIP_H,), (0,)),
    "sd2-inpaint": ("inpainting_v2", SD2_UNET + INPAINT_EXTRA, (OPENCLIP_H,), (0,)),
    "sdxl": ("xl_base", SDXL_UNET, (CLIP_L, OPENCLIP_BIGG), (49407, 0)),
    "sdxl-inpaint": ("xl_inpaint", SDXL_UNET + INPAINT_EXTRA, (CLIP_L, OPENCLIP_BIGG), (49407, 0)),
}
A_PHOTO_OF_A_CAT = [49406, 320, 1125, 539, 320, 2368, 49407]  # CLIP's ids for that caption


def _meta_models(folder: Path) -> dict[str, torch.nn.Module]:
    """The folder's models with no memory behind them: shapes and names only."""
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel

    with torch.device("meta"):
        made = {"unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet")),
                "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))}
        for name in ("text_encoder", "text_encoder_2"):
            if (folder / name).is_dir():
                config = json.loads((folder / name / "config.json").read_text())
                model_class = getattr(transformers, config["architectures"][0])
                made[name] = model_class(transformers.CLIPTextConfig.from_pretrained(folder / name))
    return made


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_are_the_reference_architectures(name, tmp_path):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from transformers import CLIPTokenizer

    from lse_core.checkpoint_configs import config_folder

    diffusers_type, unet, encoders, pads = SHIPPED[name]
    folder = config_folder(name, tmp_path)
    made = _meta_models(folder)
    assert _count(made["unet"]) == unet and _count(made["vae"]) == VAE
    texts = [made[n] for n in ("text_encoder", "text_encoder_2") if n in made]
    assert [_count(m) for m in texts] == list(encoders)
    for tokenizer, pad in zip(("tokenizer", "tokenizer_2"), pads):
        loaded = CLIPTokenizer.from_pretrained(folder / tokenizer)
        assert loaded("a photo of a cat").input_ids == A_PHOTO_OF_A_CAT
        assert loaded.pad_token_id == pad and len(loaded) == 49408
    # The original key layout of these shapes is what diffusers recognises as that type.
    layout = {"model.diffusion_model." + k: v
              for k, v in unet_to_original(made["unet"].state_dict(), made["unet"].config).items()}
    if len(texts) == 2:
        layout.update({"conditioner.embedders.1.model." + k: v for k, v in
                       openclip_to_original(texts[1].state_dict(), texts[1].config.hidden_size).items()})
    elif texts[0].config.hidden_size == 1024:
        layout.update({"cond_stage_model.model." + k: v for k, v in
                       openclip_to_original(texts[0].state_dict(), 1024).items()})
    else:
        layout.update({"cond_stage_model.transformer." + k: v
                       for k, v in clip_to_original(texts[0].state_dict()).items()})
    assert infer_diffusers_model_type(layout) == diffusers_type


# --- which shipped configs a full-size checkpoint gets -----------------------------------------
# Skeleton checkpoints: only the tensors diffusers tells the type by, with their real shapes
# (the names and shapes are those of the reference checkpoints). They hold no weights, so
# the load that follows the choice fails; the choice is what is checked.
SD2_KEY = "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
SKELETONS = {
    "sd2": {SD2_KEY: (320, 1024)},
    "refiner": {"model.diffusion_model.input_blocks.0.0.weight": (384, 4, 3, 3),
                "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias": (1280,)},
}


def _skeleton(tmp_path: Path, kind: str, metadata: dict[str, str] | None = None) -> Path:
    file = tmp_path / f"{kind}.safetensors"
    save_file({k: torch.zeros(shape) for k, shape in SKELETONS[kind].items()}, str(file),
              metadata=metadata)
    return file


def _chosen(file: Path, tmp_path: Path, capsys) -> tuple[str, str]:
    """The line saying which configs lse took, and the line the failed load ends with."""
    out = tmp_path / "sessions"
    code = run_config("configs/txt2img/single_inference.yaml", out, model=str(file))
    captured = capsys.readouterr()
    notes = [line for line in captured.out.splitlines() if line.startswith(file.name)]
    errors = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(notes) == 1 and len(errors) == 1, captured
    return notes[0], errors[0]


@pytest.mark.parametrize("original,metadata,chosen,why", [
    (None, None, "SD 2.x 768-v (v-prediction)", "assumed, as diffusers does"),
    ('model:\n  params:\n    parameterization: "v"\n', None, "SD 2.x 768-v (v-prediction)",
     "sd2.yaml says so"),
    ("model:\n  params:\n    linear_start: 0.00085\n", None, "SD 2.x 512 base (ε-prediction)",
     "sd2.yaml says so"),
    (None, {"modelspec.prediction_type": "epsilon"}, "SD 2.x 512 base (ε-prediction)",
     "its metadata says so"),
])
def test_an_sd2_checkpoint_gets_the_configs_of_its_prediction(original, metadata, chosen, why,
                                                              tmp_path, capsys):
    file = _skeleton(tmp_path, "sd2", metadata)
    if original is not None:
        file.with_suffix(".yaml").write_text(original)
    note, error = _chosen(file, tmp_path, capsys)
    assert note.startswith(f"sd2.safetensors: an {chosen} checkpoint ({why}")
    assert f"(a copy in {tmp_path / 'sd2'}/ is used instead)" in note
    assert "does not fit the configs in" in error


def test_a_checkpoint_of_another_kind_is_one_line(tmp_path, capsys):
    line = _bad_run(str(_skeleton(tmp_path, "refiner")), tmp_path, capsys)
    assert "refiner.safetensors is a checkpoint of another kind (diffusers calls it 'xl_refiner')" in line
