"""SPEC §6, §8: no traceback on any input, one writer per session, nothing half-made,
and a resume that checks what is on disk."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from helpers import ROOT, one_line_exit_2, only_session, pngs, run_cli, write_config

BASE = {"model_identifier": "txt2img", "exp_identifier": "single-inference", "model_id": "tiny",
        "prompt": "a red fox|blurry", "height": 64, "width": 64, "diffusion_steps": 2,
        "rand_seed": 1}
INTERPOLATION = {**BASE, "exp_identifier": "interpolation", "inter_prompts": ["a fox", "a bird"],
                 "inter_noises": [3, 4], "interpolation_steps": 5, "batch_size": 2}


def _no_session(out: Path) -> None:
    assert not out.exists() or not any(p for p in out.iterdir() if not p.name.startswith("."))


# bad values ---------------------------------------------------------------------------

def _embedding(path: Path, **tensors: torch.Tensor) -> str:
    full = {"prompt_embed": torch.zeros(2, 77, 1024), "latent_noise": torch.zeros(1, 4, 8, 8),
            "image_embed": torch.zeros(1, 4, 8, 8), **tensors}
    save_file(full, str(path))
    return str(path)


REFUSED = [
    ("steps 1e12", {"diffusion_steps": 1e12}, "key 'diffusion_steps': Input should be less than or equal to 1000"),
    ("steps true", {"diffusion_steps": True}, "key 'diffusion_steps': expected a number, not true/false"),
    ("height 1e6", {"height": 1e6}, "key 'height': Input should be less than or equal to 4096"),
    ("seed 2^70", {"rand_seed": 2**70}, "key 'rand_seed': Input should be less than or equal to 9223372036854775807"),
    ("seed 2^64-1, 2 images", {"rand_seed": 2**64 - 1, "images_per_prompt": 2}, "key 'rand_seed'"),
    ("guidance inf", {"guidance_scale": math.inf}, "key 'guidance_scale': Input should be a finite number"),
    ("step size inf", {"exp_identifier": "random-walk", "noise_rand_walk": True, "step_size": math.inf}, "key 'step_size': Input should be a finite number"),
    ("step size nan", {"exp_identifier": "random-walk", "noise_rand_walk": True, "step_size": math.nan}, "key 'step_size': Input should be a finite number"),
    ("diffevolution step above 1", {"exp_identifier": "diffevolution", "step_size": 2}, "key 'step_size': diffevolution moves each gene this fraction"),
    ("seed in a list", {"exp_identifier": "interpolation", "inter_prompts": ["a"], "inter_noises": [1, -5]}, "key 'inter_noises.1'"),
    ("many images", {"images_per_prompt": 10**6}, "key 'images_per_prompt': Input should be less than or equal to 64"),
]


@pytest.mark.parametrize("name,keys,words", REFUSED, ids=[c[0] for c in REFUSED])
def test_out_of_range_values_are_refused(name, keys, words, tmp_path, capsys):
    config = write_config(tmp_path / "exp.yaml", **{**BASE, **keys})
    code = run_cli("run", str(config), "--out", str(tmp_path / "s"))
    one_line_exit_2(code, capsys.readouterr().err, words)
    _no_session(tmp_path / "s")


@pytest.mark.parametrize("key,tensor,words", [
    ("load_prompt_embeds", {"prompt_embed": torch.full((2, 77, 1024), math.nan)}, "tensor prompt_embed holds NaN or infinite values"),
    ("load_latent_noise", {"latent_noise": torch.full((1, 4, 8, 8), math.inf)}, "tensor latent_noise holds NaN or infinite values"),
    ("load_latent_noise", {"latent_noise": torch.zeros(1, 4, 0, 0)}, "tensor latent_noise has shape (1, 4, 0, 0)"),
])
def test_unusable_tensors_are_refused(key, tensor, words, tmp_path, capsys):
    config = write_config(tmp_path / "exp.yaml",
                          **{**BASE, key: _embedding(tmp_path / "e.safetensors", **tensor)})
    code = run_cli("run", str(config), "--out", str(tmp_path / "s"))
    one_line_exit_2(code, capsys.readouterr().err, words)
    _no_session(tmp_path / "s")


def test_control_character_in_an_override(capsys):
    code = run_cli("run", "configs/txt2img/single_inference.yaml", "--set", "prompt=a\x01b")
    one_line_exit_2(code, capsys.readouterr().err,
                     "--set prompt: value is not valid YAML: unacceptable character #x0001")


def test_nested_yaml_aliases_are_refused_at_once(tmp_path, capsys):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb = "model_identifier: txt2img\nexp_identifier: single-inference\nprompt: *a8\n"
    config = tmp_path / "bomb.yaml"
    config.write_text("\n".join(lines) + "\n" + bomb)
    started = time.monotonic()
    code = run_cli("run", str(config))
    assert time.monotonic() - started < 2
    one_line_exit_2(code, capsys.readouterr().err, "refused at line 2: aliases (*name) are not accepted")


def test_long_input_is_not_echoed(tmp_path, capsys):
    config = write_config(tmp_path / "exp.yaml", **{**BASE, "height": "x" * 5000})
    code = run_cli("run", str(config))
    one_line_exit_2(code, capsys.readouterr().err, "key 'height'")


def test_unknown_device(capsys):
    code = run_cli("run", "configs/txt2img/single_inference.yaml", "--device", "meta")
    one_line_exit_2(code, capsys.readouterr().err, "--device: unknown device 'meta' (valid: cpu, cuda, cuda:N, mps)")


def test_huge_image_is_refused(tmp_path, capsys, monkeypatch):
    # PIL's own decompression-bomb check, with its limit lowered so a small file trips it.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    config = write_config(tmp_path / "exp.yaml", **{**BASE, "model_identifier": "img2img",
                                                    "image": str(tmp_path / "big.png")})
    code = run_cli("run", str(config), "--out", str(tmp_path / "s"))
    one_line_exit_2(code, capsys.readouterr().err, "big.png: image too large (over 0 megapixels)")


def test_unwritable_output_folder_is_found_before_the_model_loads(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    config = write_config(tmp_path / "exp.yaml", **BASE)
    started = time.monotonic()
    code = run_cli("run", str(config), "--out", str(tmp_path / "a-file" / "sessions"))
    err = capsys.readouterr().err
    one_line_exit_2(code, err, "key 'output_path': cannot write sessions to ")
    assert err.rstrip().endswith("/a-file/sessions (Not a directory)")  # a long path is cut in the middle
    assert time.monotonic() - started < 1.5


def test_a_config_mistake_answers_in_well_under_a_second(tmp_path):
    config = write_config(tmp_path / "exp.yaml", **{**BASE, "diffusion_steps": "many"})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "lse_core.cli", "run", str(config)],
                          capture_output=True, cwd=ROOT, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 2 and b"key 'diffusion_steps'" in done.stderr
    # no model library was imported to find it (that alone takes seconds)
    assert elapsed < 5, elapsed


# sessions listing and export ------------------------------------------------------------

def _finished_session(tmp_path: Path, keys: dict | None = None) -> Path:
    config = write_config(tmp_path / "interp.yaml", **{**INTERPOLATION, **(keys or {})})
    assert run_cli("run", str(config), "--out", str(tmp_path / "s")) == 0
    return only_session(tmp_path / "s")


def _edit_manifest(session: Path, change) -> None:
    path = session / "session.json"
    data = json.loads(path.read_text())
    data = change(data)
    path.write_text(json.dumps(data))


def _edit_media(session: Path, change) -> None:
    """Change the media entries a session's journal lists."""
    journal = session / "frames.jsonl"
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    entries = [{"media": change(e["media"])} if "media" in e else e for e in entries]
    journal.write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_one_damaged_session_does_not_break_the_listing(tmp_path, capsys):
    import shutil

    good = _finished_session(tmp_path)
    for name, change in [("empty-list", lambda m: []), ("bad-count", lambda m: {**m, "frames_done": "abc"}),
                         ("no-time", lambda m: {**m, "updated": None})]:
        shutil.copytree(good, tmp_path / "s" / name)
        _edit_manifest(tmp_path / "s" / name, change)
    capsys.readouterr()
    assert run_cli("sessions", str(tmp_path / "s")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    by_name = {Path(line.split("\t")[5]).name: line.split("\t") for line in lines}
    assert by_name["empty-list"][1] == "unreadable"
    assert "not a session manifest" in by_name["empty-list"][6]
    assert by_name["bad-count"][1] == "done" and by_name["bad-count"][2] == "0/7"
    assert by_name["no-time"][1] == "done" and by_name[good.name][2] == "7/7"
    assert run_cli("sessions", str(tmp_path / "s"), "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert {Path(row["path"]).name for row in listed} == set(by_name)


def test_export_stays_inside_the_session(tmp_path, capsys):
    session = _finished_session(tmp_path)
    _edit_media(session, lambda m: {**m, "name": "../../../X"})
    code = run_cli("export", str(session))
    one_line_exit_2(code, capsys.readouterr().err, "media entry 0: '../../../X' is not a plain file name")
    assert not list(tmp_path.glob("X*")) and not list(Path("/").glob("X.gif"))


def test_export_refuses_a_damaged_media_entry(tmp_path, capsys):
    session = _finished_session(tmp_path)
    _edit_media(session, lambda m: {**m, "speed": 2})
    code = run_cli("export", str(session))
    one_line_exit_2(code, capsys.readouterr().err, "media entry 0 must have the keys name, frames")


@pytest.mark.parametrize("fps", ["-5", "nan", "0", "inf"])
def test_export_refuses_bad_fps(fps, tmp_path, capsys):
    session = _finished_session(tmp_path)
    code = run_cli("export", str(session), "--fps", fps)
    one_line_exit_2(code, capsys.readouterr().err, "--fps: must be from 1/60 (a frame a minute) to 100")


def test_export_writes_a_playable_mp4(tmp_path):
    import imageio.v2 as iio

    session = _finished_session(tmp_path)
    video = session / "videos" / "output-0.mp4"
    video.unlink()
    assert run_cli("export", str(session), "--mp4", "--fps", "12") == 0
    with iio.get_reader(video, format="FFMPEG") as reader:
        assert reader.get_meta_data()["fps"] == 12
        frames = [frame for frame in reader]
    assert len(frames) == 7 and frames[0].shape == (64, 64, 3)


# resume checks ----------------------------------------------------------------------------

@pytest.mark.parametrize("change,words", [
    (lambda m: [], "not a session manifest (expected a JSON object)"),
    (lambda m: {k: v for k, v in m.items() if k != "batch_size"}, "session.json: key 'batch_size': Field required"),
    (lambda m: {**m, "batch_size": "four"}, "session.json: key 'batch_size': Input should be a valid integer (got 'four')"),
])
def test_resume_of_a_damaged_manifest(change, words, tmp_path, capsys):
    session = _finished_session(tmp_path)
    _edit_manifest(session, change)
    code = run_cli("resume", str(session))
    one_line_exit_2(code, capsys.readouterr().err, words)


def test_resume_makes_a_damaged_frame_again(tmp_path, capsys):
    session = _finished_session(tmp_path)
    reference = pngs(session)
    victim = session / "images" / "interpolation_lstitms-0,1_step-3.png"
    victim.write_bytes(victim.read_bytes()[:100])  # cut short, as a second writer once did
    (session / "images" / ".interpolation_lstitms-0,1_step-4.h-1-ab.tmp.png").write_bytes(b"half")
    capsys.readouterr()
    assert run_cli("resume", str(session)) == 0
    assert "1 damaged file(s) will be made again: images/interpolation_lstitms-0,1_step-3.png" in capsys.readouterr().out
    assert pngs(session) == reference
    assert not [p for p in (session / "images").iterdir() if p.name.startswith(".")]


def test_a_second_writer_is_refused(tmp_path, capsys):
    from lse_core.session import Session

    session = _finished_session(tmp_path)
    holder = Session.open(session).claim()
    try:
        code = run_cli("resume", str(session))
        one_line_exit_2(code, capsys.readouterr().err,
                         f"session {session} is in use by pid {os.getpid()} on ")
        code = run_cli("export", str(session))
        one_line_exit_2(code, capsys.readouterr().err, "is in use by pid")
    finally:
        holder.release()
    assert run_cli("export", str(session), "--gif") == 0


def test_sessions_started_together_get_their_own_folders(tmp_path):
    from lse_core.config import build_config
    from lse_core.session import Session

    cfg = build_config({**BASE, "output_path": str(tmp_path / "s")})
    for _ in range(10):
        barrier, made, errors = threading.Barrier(2), [], []

        def create():
            barrier.wait()
            try:
                session = Session.create(cfg, {"batch_size": 1})
                made.append(session.path)
                session.release()
            except Exception as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(exc)

        threads = [threading.Thread(target=create) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors and len(set(made)) == 2
    assert not list((tmp_path / "s").glob(".*"))


def test_two_writers_of_one_file_never_collide(tmp_path):
    from lse_core.files import publish

    target, errors = tmp_path / "frame.png", []

    def write(content: bytes) -> None:
        for _ in range(50):
            try:
                publish(target, lambda tmp: tmp.write_bytes(content))
            except Exception as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(bytes([i]) * 4096,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert target.read_bytes() in (b"\0" * 4096, b"\1" * 4096)
    assert [p.name for p in tmp_path.iterdir()] == ["frame.png"]


# kill -9 at four points ---------------------------------------------------------------------

def _killed(tmp_path: Path, what: str, nth: int, *args: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "kill_hook.py"), what, str(nth), *args],
                          cwd=ROOT, capture_output=True, timeout=300)
    assert done.returncode == -9, done.stderr.decode()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("reference")
    return _finished_session(tmp_path)


def _same_as_reference(session: Path, reference: Path) -> None:
    assert pngs(session) == pngs(reference)
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["state"] == "done" and manifest["frames_done"] == 7
    assert (session / "gifs" / "output-0.gif").read_bytes() == (reference / "gifs" / "output-0.gif").read_bytes()
    leftovers = [p for sub in ("images", "embeddings", "gifs", "videos") for p in (session / sub).iterdir()
                 if p.name.startswith(".")]
    assert not leftovers


def test_kill_during_session_creation(tmp_path, reference):
    config = write_config(tmp_path / "interp.yaml", **INTERPOLATION)
    _killed(tmp_path, "creation", 1, "run", str(config), "--out", str(tmp_path / "s"))
    assert run_cli("sessions", str(tmp_path / "s")) == 0
    assert not [p for p in (tmp_path / "s").iterdir() if not p.name.startswith(".")]
    # nothing to resume: the next run starts afresh and clears the abandoned folder
    assert run_cli("run", str(config), "--out", str(tmp_path / "s")) == 0
    assert not list((tmp_path / "s").glob(".creating-*"))
    _same_as_reference(only_session(tmp_path / "s"), reference)


@pytest.mark.parametrize("what,nth", [("png", 5), ("gif", 1)])
def test_kill_while_writing_then_resume(what, nth, tmp_path, reference):
    config = write_config(tmp_path / "interp.yaml", **INTERPOLATION)
    _killed(tmp_path, what, nth, "run", str(config), "--out", str(tmp_path / "s"))
    session = only_session(tmp_path / "s")
    assert list(session.glob(f"*/.*.tmp.{what}")), "the kill left a half-published file"
    assert run_cli("resume", str(session)) == 0
    _same_as_reference(session, reference)


def test_kill_during_a_resume_then_resume_again(tmp_path, reference):
    config = write_config(tmp_path / "interp.yaml", **INTERPOLATION)
    _killed(tmp_path, "png", 3, "run", str(config), "--out", str(tmp_path / "s"))
    session = only_session(tmp_path / "s")
    _killed(tmp_path, "png", 4, "resume", str(session))
    listed = subprocess.run([sys.executable, "-m", "lse_core.cli", "sessions", str(tmp_path / "s")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60).stdout.split("\t")
    assert listed[1] == "stopped" and listed[2] != "0/7"  # a killed resume keeps its count
    assert run_cli("resume", str(session)) == 0
    _same_as_reference(session, reference)
