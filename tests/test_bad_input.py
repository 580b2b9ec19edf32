"""SPEC §8: each bad input ends with one line naming the key or file, exit code 2, no session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from helpers import run_cli, write_config

BASE = {
    "model_identifier": "txt2img",
    "exp_identifier": "single-inference",
    "model_id": "tiny",
    "prompt": "a red fox|blurry",
    "height": 64,
    "width": 64,
    "diffusion_steps": 2,
    "rand_seed": 1,
}
IMG2IMG = {**BASE, "model_identifier": "img2img", "image": "resources/landscape.png"}
INPAINT = {**BASE, "model_identifier": "inpaint", "image": "resources/landscape.png",
           "mask": "resources/landscape_mask.png"}


class Evil:
    """Unpickling this would run code; .pt files must never be unpickled."""

    def __reduce__(self):
        return (print, ("unpickled!",))


def _embedding(path: Path, **shapes) -> str:
    tensors = {"prompt_embed": torch.zeros(2, 77, 1024), "latent_noise": torch.zeros(1, 4, 8, 8),
               "image_embed": torch.zeros(1, 4, 8, 8)}
    for key, shape in shapes.items():
        if shape is None:
            tensors.pop(key)
        else:
            tensors[key] = torch.zeros(shape)
    save_file(tensors, str(path))
    return str(path)


def _case_files(tmp: Path) -> dict[str, str]:
    (tmp / "empty_model").mkdir()
    (tmp / "not_image.png").write_text("plain text")
    (tmp / "corrupt.safetensors").write_bytes(b"\xff" * 64)
    torch.save({"prompt_embed": torch.zeros(2, 77, 1024), "evil": Evil()}, tmp / "evil.pt",
               pickle_protocol=2)
    return {
        "empty_model": str(tmp / "empty_model"),
        "not_image": str(tmp / "not_image.png"),
        "evil": str(tmp / "evil.pt"),
        "corrupt": str(tmp / "corrupt.safetensors"),
        "no_noise_key": _embedding(tmp / "no_noise.safetensors", latent_noise=None),
        "narrow": _embedding(tmp / "narrow.safetensors", prompt_embed=(2, 77, 768)),
        "bad_noise": _embedding(tmp / "bad_noise.safetensors", latent_noise=(1, 3, 8, 8)),
        "tiny_txt2img": str(_tiny_folder(False)),
        "tiny_inpaint": str(_tiny_folder(True)),
    }


def _tiny_folder(inpaint: bool) -> Path:
    from lse_core.tiny import tiny_path

    return tiny_path(inpaint)


CASES = [
    # (id, config keys, expected words in the message)
    ("unknown key", {**BASE, "difusion_steps": 3}, "unknown key 'difusion_steps' (did you mean 'diffusion_steps'?)"),
    ("wrong type", {**BASE, "diffusion_steps": "many"}, "key 'diffusion_steps'"),
    ("steps < 1", {**BASE, "diffusion_steps": 0}, "key 'diffusion_steps': Input should be greater than or equal to 1"),
    ("negative guidance", {**BASE, "guidance_scale": -1}, "key 'guidance_scale'"),
    ("strength 0", {**IMG2IMG, "strength": 0}, "key 'strength'"),
    ("strength > 1", {**IMG2IMG, "strength": 1.5}, "key 'strength'"),
    ("img2img with no step left", {**IMG2IMG, "strength": 0.4}, "key 'strength': img2img runs int(diffusion_steps × strength) steps, and int(2 × 0.4) is 0"),
    ("height not multiple of 8", {**BASE, "height": 65}, "key 'height': must be a multiple of 8"),
    ("width not positive", {**BASE, "width": -8}, "key 'width'"),
    ("genes > 16", {**BASE, "genes_per_generation": 17}, "key 'genes_per_generation'"),
    ("translation factor 1", {**BASE, "translation_factor": 1.0}, "key 'translation_factor'"),
    ("bad experiment", {**BASE, "exp_identifier": "zoom"}, "key 'exp_identifier'"),
    ("no prompt", {k: v for k, v in BASE.items() if k != "prompt"}, "needs 'prompt' or 'load_prompt_embeds'"),
    ("img2img without image", {**IMG2IMG, "image": None}, "key 'image' is required"),
    ("inpaint without mask", {**INPAINT, "mask": "None"}, "key 'mask' is required"),
    ("unknown scheduler", {**BASE, "scheduler": "FancyScheduler"}, "key 'scheduler': unknown scheduler (valid: DPMSolverMultistep, EulerDiscrete, "),
    ("model folder missing", {**BASE, "model_id": "./weights/nope"}, "key 'model_id': model folder ./weights/nope does not exist"),
    ("not a diffusers folder", {**BASE, "model_id": "{empty_model}"}, "is not a diffusers model folder"),
    ("inpaint on txt2img model", {**INPAINT, "model_id": "{tiny_txt2img}"}, "needs an inpainting model (9-channel UNet)"),
    ("txt2img on inpaint model", {**BASE, "model_id": "{tiny_inpaint}"}, "needs a txt2img/img2img model"),
    ("image missing", {**IMG2IMG, "image": "resources/nope.png"}, "key 'image': resources/nope.png: file not found"),
    ("image not an image", {**IMG2IMG, "image": "{not_image}"}, "not a readable image"),
    ("mask missing", {**INPAINT, "mask": "resources/nope_mask.png"}, "key 'mask': resources/nope_mask.png: file not found"),
    ("embedding missing", {**BASE, "load_prompt_embeds": "nope.safetensors"}, "key 'load_prompt_embeds': nope.safetensors: embedding file not found"),
    ("embedding wrong keys", {**BASE, "load_latent_noise": "{no_noise_key}"}, "missing tensor latent_noise"),
    ("embedding wrong width", {**BASE, "load_prompt_embeds": "{narrow}"}, "tensor prompt_embed has shape (2, 77, 768), the model needs (2, 77, 1024)"),
    ("noise wrong channels", {**BASE, "load_latent_noise": "{bad_noise}"}, "tensor latent_noise has shape (1, 3, 8, 8)"),
    ("corrupt safetensors", {**BASE, "load_prompt_embeds": "{corrupt}"}, "corrupt.safetensors: not a readable embedding file"),
    ("random walk going nowhere", {**BASE, "exp_identifier": "random-walk"}, "random-walk needs prompt_rand_walk or noise_rand_walk"),
    ("pt with objects", {**BASE, "load_prompt_embeds": "{evil}"}, "holds objects other than tensors"),
]


@pytest.mark.parametrize("name,keys,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_config_message(name, keys, expected, tmp_path, capsys):
    files = _case_files(tmp_path)
    keys = {k: (v.format(**files) if isinstance(v, str) else v) for k, v in keys.items()}
    keys = {k: v for k, v in keys.items() if v is not None}
    config = write_config(tmp_path / "exp.yaml", **keys)
    out = tmp_path / "sessions"
    code = run_cli("run", str(config), "--out", str(out))
    captured = capsys.readouterr()
    assert code == 2
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert "unpickled!" not in captured.out
    assert not out.exists() or not any(out.iterdir()), "a failed start must leave no session"


def test_missing_config_file(tmp_path, capsys):
    assert run_cli("run", str(tmp_path / "nope.yaml")) == 2
    assert capsys.readouterr().err.strip() == f"lse: {tmp_path / 'nope.yaml'}: config file not found"


def test_unreadable_config(tmp_path, capsys):
    assert run_cli("run", str(tmp_path)) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_yaml_syntax_error_names_line(tmp_path, capsys):
    config = tmp_path / "broken.yaml"
    config.write_text("model_identifier: txt2img\nexp_identifier: single-inference\nprompt: [oops\n")
    assert run_cli("run", str(config)) == 2
    err = capsys.readouterr().err
    assert "YAML syntax error at line" in err and len(err.strip().splitlines()) == 1


def test_bad_override_value(capsys):
    assert run_cli("run", "configs/txt2img/single_inference.yaml", "--set", "height") == 2
    assert "--set height: expected KEY=VALUE" in capsys.readouterr().err


def test_mask_of_other_size_is_resized_and_reported(tmp_path, capsys):
    from PIL import Image

    Image.new("L", (100, 60), 255).save(tmp_path / "mask.png")
    config = write_config(tmp_path / "exp.yaml", **{**INPAINT, "mask": str(tmp_path / "mask.png")})
    assert run_cli("run", str(config), "--out", str(tmp_path / "s")) == 0
    assert "resizing the mask" in capsys.readouterr().out


def test_resume_of_non_session(tmp_path, capsys):
    assert run_cli("resume", str(tmp_path)) == 2
    assert "not a session folder" in capsys.readouterr().err
