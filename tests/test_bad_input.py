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


# the key at fault, as data ------------------------------------------------------------

KEYS = {
    "unknown key": None, "wrong type": "diffusion_steps", "steps < 1": "diffusion_steps",
    "strength 0": "strength", "img2img with no step left": "strength",
    "height not multiple of 8": "height", "no prompt": "prompt",
    "img2img without image": "image", "inpaint without mask": "mask",
    "unknown scheduler": "scheduler", "model folder missing": "model_id",
    "not a diffusers folder": "model_id", "inpaint on txt2img model": "model_id",
    "image missing": "image", "image not an image": "image",
    "embedding missing": "load_prompt_embeds", "embedding wrong keys": "load_latent_noise",
    "embedding wrong width": "load_prompt_embeds", "noise wrong channels": "load_latent_noise",
    "corrupt safetensors": "load_prompt_embeds", "random walk going nowhere": "prompt_rand_walk",
}


def _problem_key(config: Path) -> str | None:
    """The key of the first problem, found as the CLI finds it: config and preflight
    first, then (for what needs the model) the run's Failed event."""
    import asyncio

    from lse_core.config import load_config
    from lse_core.errors import BadInput
    from lse_core.events import Failed
    from lse_core.preflight import preflight
    from lse_core.run import ExperimentRun

    try:
        cfg = load_config(config)
        preflight(cfg, source=str(config))
    except BadInput as exc:
        return exc.key

    async def failure() -> Failed:
        async for event in ExperimentRun(cfg).events():
            if isinstance(event, Failed):
                return event
        raise AssertionError("the run did not fail")

    failed = asyncio.run(failure())
    assert failed.bad_input and failed.session_dir is None, failed
    return failed.key


@pytest.mark.parametrize("name,keys", [(c[0], c[1]) for c in CASES if c[0] in KEYS],
                         ids=[c[0] for c in CASES if c[0] in KEYS])
def test_each_error_carries_the_key_it_is_about(name, keys, tmp_path):
    files = _case_files(tmp_path)
    keys = {k: (v.format(**files) if isinstance(v, str) else v) for k, v in keys.items()}
    keys = {k: v for k, v in keys.items() if v is not None}
    config = write_config(tmp_path / "exp.yaml", **keys, output_path=str(tmp_path / "s"))
    assert _problem_key(config) == KEYS[name]


# hostile YAML ---------------------------------------------------------------------------

def _one_line_exit_2(code: int, err: str) -> str:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def test_deep_nesting_in_a_config_is_one_line(tmp_path, capsys):
    config = tmp_path / "deep.yaml"
    config.write_text("model_identifier: txt2img\nexp_identifier: single-inference\n"
                      f"prompt: {'[' * 1000}\n")
    line = _one_line_exit_2(run_cli("run", str(config)), capsys.readouterr().err)
    assert line == f"lse: {config}: refused at line 3: nested deeper than 32 levels"


def test_deep_nesting_in_an_override_is_one_line(capsys):
    code = run_cli("run", "configs/txt2img/single_inference.yaml", "--set", "prompt=" + "[" * 1000)
    line = _one_line_exit_2(code, capsys.readouterr().err)
    assert line == "lse: --set prompt: value refused at line 1: nested deeper than 32 levels"


@pytest.mark.parametrize("lists,read", [(30, True), (31, False)])
def test_nesting_up_to_the_limit_is_read(lists, read, tmp_path, capsys):
    """The config's mapping, 30 lists and the value in them: 32 levels."""
    config = tmp_path / "nested.yaml"
    config.write_text("model_identifier: txt2img\nexp_identifier: single-inference\n"
                      f"prompt: {'[' * lists}x{']' * lists}\n")
    line = _one_line_exit_2(run_cli("run", str(config)), capsys.readouterr().err)
    # Read, the value is then refused for what it is; or refused for its depth.
    assert ("key 'prompt': Input should be a valid string" in line) is read, line


def test_a_key_given_twice_is_named(tmp_path, capsys):
    config = tmp_path / "twice.yaml"
    config.write_text("model_identifier: txt2img\nexp_identifier: single-inference\n"
                      "prompt: a fox\ndiffusion_steps: 3\nprompt: a bird\n")
    line = _one_line_exit_2(run_cli("run", str(config)), capsys.readouterr().err)
    assert line == f"lse: {config}: refused at line 5: key 'prompt' is given twice"


def test_a_key_given_twice_inside_an_override_is_named(capsys):
    code = run_cli("run", "configs/txt2img/single_inference.yaml", "--set", "prompt={a: 1, a: 2}")
    line = _one_line_exit_2(code, capsys.readouterr().err)
    assert line == "lse: --set prompt: value refused at line 1: key 'a' is given twice"


# library warnings ---------------------------------------------------------------------------

def _bomb_png(path: Path) -> str:
    """A PNG whose header claims 100 megapixels (past Pillow's warning limit) over a few
    bytes of data: Pillow warns, then cannot decode it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", 10_000, 10_000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    return str(path)


def _protocol_4_pt(path: Path) -> str:
    """A .pt file torch.load warns about (pickle protocol 4) before refusing it."""
    torch.save({"prompt_embed": torch.zeros(2, 77, 1024)}, path, pickle_protocol=4)
    return str(path)


@pytest.mark.parametrize("case", ["image", "embedding"])
def test_no_library_warning_comes_before_the_one_line_message(case, tmp_path):
    import subprocess
    import sys

    from helpers import ROOT

    keys = ({**IMG2IMG, "image": _bomb_png(tmp_path / "bomb.png")} if case == "image"
            else {**BASE, "load_prompt_embeds": _protocol_4_pt(tmp_path / "p4.pt")})
    config = write_config(tmp_path / "exp.yaml", **keys, output_path=str(tmp_path / "s"))
    # A fresh interpreter: pytest's own warning capture would hide what a user sees.
    done = subprocess.run([sys.executable, "-m", "lse_core.cli", "run", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("lse: ") and "not a readable" in done.stderr


# sessions ---------------------------------------------------------------------------------

def test_sessions_of_a_folder_that_does_not_exist(tmp_path, capsys):
    line = _one_line_exit_2(run_cli("sessions", str(tmp_path / "nope")), capsys.readouterr().err)
    assert line == f"lse: {tmp_path / 'nope'}: no such folder (give the folder that holds the " \
                   "sessions: lse sessions DIR)"


def test_sessions_of_an_empty_folder(tmp_path, capsys):
    assert run_cli("sessions", str(tmp_path)) == 0
    assert capsys.readouterr().out == f"no sessions in {tmp_path}\n"
