"""`lse models`: the models on this machine with family, kinds and size; `lse models pull`
against a small hub server (fp16 weights where the repository has them, nothing lse does
not load), interrupted with Ctrl-C and resumed; the TUI's model field completes them."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from checkpoint_files import build_pipeline
from helpers import ROOT
from hub_fixtures import (
    FakeHub,
    cache_snapshot,
    closed_port,
    lse_env,
    run_lse,
    run_lse_in_terminal,
)
from test_tui_support import make_app, type_into, wait_until

REPO = "lse-test/tiny"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Path:
    """tiny-random as a hub repository: full and fp16 UNet weights, and a safety checker
    that lse never loads."""
    from lse_core.tiny import tiny_path

    repo = tmp_path_factory.mktemp("served") / "repo"
    shutil.copytree(tiny_path(False, trained=False), repo)
    unet = repo / "unet"
    weights = load_file(str(unet / "diffusion_pytorch_model.safetensors"))
    save_file({k: v.half() for k, v in weights.items()}, str(unet / "diffusion_pytorch_model.fp16.safetensors"))
    index = json.loads((repo / "model_index.json").read_text())
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    (repo / "model_index.json").write_text(json.dumps(index))
    (repo / "safety_checker").mkdir()
    (repo / "safety_checker" / "config.json").write_text("{}")
    (repo / "safety_checker" / "model.safetensors").write_bytes(b"\0" * 4096)
    return repo


def _listed(env: dict[str, str]) -> dict[str, dict]:
    done = run_lse("models", "--json", env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return {row["model_id"]: row for row in json.loads(done.stdout)}


def _one_line(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_pull_fetches_what_lse_loads_and_the_model_then_runs_offline(served, tmp_path):
    hub = FakeHub({REPO: served})
    try:
        done = run_lse("models", "pull", REPO, env=lse_env(tmp_path / "hf", endpoint=hub.url))
    finally:
        hub.close()
    assert done.returncode == 0, done.stderr
    snapshot = Path(done.stdout.strip().rsplit(" in ", 1)[1])
    fetched = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in fetched
    assert "unet/diffusion_pytorch_model.safetensors" not in fetched
    assert not [name for name in fetched if name.startswith("safety_checker")]
    offline = lse_env(tmp_path / "hf", offline=True)
    row = _listed(offline)[REPO]
    assert (row["family"], row["kinds"], row["state"]) == ("SD 2.x", ["txt2img", "img2img"], "ready")
    assert row["size"] == sum((snapshot / name).stat().st_size for name in fetched)
    config = tmp_path / "run.yaml"
    config.write_text(f"model_identifier: txt2img\nexp_identifier: single-inference\n"
                      f"model_id: {REPO}\nprompt: a red circle\nheight: 64\nwidth: 64\n"
                      "diffusion_steps: 2\n")
    ran = run_lse("run", str(config), "--out", str(tmp_path / "sessions"), env=offline)
    assert ran.returncode == 0, ran.stderr
    assert len(list((tmp_path / "sessions").glob("*/images/*.png"))) == 1


def test_pull_shows_its_progress_on_a_terminal(served, tmp_path):
    hub = FakeHub({REPO: served})
    try:
        code, shown = run_lse_in_terminal("models", "pull", REPO,
                                          env=lse_env(tmp_path / "hf", endpoint=hub.url))
    finally:
        hub.close()
    assert code == 0, shown
    assert "100%|" in shown and f"{REPO}: ready" in shown


def test_an_interrupted_pull_is_listed_incomplete_and_pulling_again_resumes_it(served, tmp_path):
    hub = FakeHub({REPO: served}, delay=0.05)  # 64 KiB every 50 ms: seconds per file
    env = lse_env(tmp_path / "hf", endpoint=hub.url)
    try:
        pulling = subprocess.Popen([sys.executable, "-m", "lse_core.cli", "models", "pull", REPO],
                                   env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not any(r.startswith("GET") and r.endswith("model.safetensors") for r in hub.requests):
            assert time.monotonic() < deadline and pulling.poll() is None, "no weights requested"
            time.sleep(0.05)
        time.sleep(0.5)  # part of the weights arrived
        pulling.send_signal(signal.SIGINT)
        _, err = pulling.communicate(timeout=30)
        assert pulling.returncode == 130
        assert err.strip() == f"lse: pull interrupted; `lse models pull {REPO}` fetches the rest"
        storage = tmp_path / "hf" / "hub" / "models--lse-test--tiny"
        assert not list(storage.rglob("*.incomplete")), "a half-written file was left behind"

        row = _listed(env)[REPO]
        assert row["state"] == "incomplete" and row["missing"]
        config = tmp_path / "run.yaml"
        config.write_text(f"model_identifier: txt2img\nexp_identifier: single-inference\n"
                          f"model_id: {REPO}\nprompt: a\n")
        refused = run_lse("run", str(config), "--out", str(tmp_path / "sessions"),
                          env=lse_env(tmp_path / "hf", offline=True))
        assert refused.returncode == 2
        assert f"{REPO} is only partly in the local Hugging Face cache" in _one_line(refused)

        snapshot = Path(row["path"])
        kept = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()}
        assert "model_index.json" in kept
        hub.delay = 0
        hub.requests.clear()
        again = run_lse("models", "pull", REPO, env=env)
        assert again.returncode == 0, again.stderr
        fetched_again = {r.split("/resolve/", 1)[1].split("/", 1)[1] for r in hub.requests
                         if r.startswith("GET") and "/resolve/" in r}
        assert fetched_again and not fetched_again & kept, "files already in the cache came again"
    finally:
        hub.close()
    assert _listed(env)[REPO]["state"] == "ready"


@pytest.mark.parametrize("model_id,endpoint,words", [
    ("not an id!", "hub", "not an id! is not a Hugging Face hub id (org/name)"),
    ("lse-test/nothing", "hub", "lse-test/nothing: the hub at"),
    ("lse-test/tiny", "closed", "cannot be reached (ConnectError)"),
])
def test_a_pull_that_cannot_happen_is_one_line(served, tmp_path, model_id, endpoint, words):
    hub = FakeHub({REPO: served})
    url = hub.url if endpoint == "hub" else f"http://127.0.0.1:{closed_port()}"
    try:
        done = run_lse("models", "pull", model_id, env=lse_env(tmp_path / "hf", endpoint=url),
                       timeout=60)
    finally:
        hub.close()
    assert done.returncode == 2 and words in _one_line(done)


def test_models_lists_each_cached_pipeline_with_family_kinds_and_size(tmp_path):
    hf_home = tmp_path / "hf"
    for name, family, inpaint in (("lse-test/sd1", "sd1", False), ("lse-test/sdxl-inpaint", "sdxl", True)):
        cache_snapshot(hf_home, name, build_pipeline(family, tmp_path / name, inpaint))
    cache_snapshot(hf_home, "lse-test/not-a-pipeline", _plain_folder(tmp_path / "plain"))
    rows = _listed(lse_env(hf_home, offline=True))
    assert list(rows)[:2] == ["tiny", "tiny-random"]
    assert (rows["lse-test/sd1"]["family"], rows["lse-test/sd1"]["kinds"]) == ("SD 1.x", ["txt2img", "img2img"])
    assert (rows["lse-test/sdxl-inpaint"]["family"], rows["lse-test/sdxl-inpaint"]["kinds"]) == ("SDXL", ["inpaint"])
    blobs = hf_home / "hub" / "models--lse-test--sd1" / "blobs"
    assert rows["lse-test/sd1"]["size"] == sum(p.stat().st_size for p in blobs.iterdir())
    assert "lse-test/not-a-pipeline" not in rows
    piped = run_lse("models", env=lse_env(hf_home, offline=True), timeout=60).stdout.splitlines()
    assert [line for line in piped if line.startswith("lse-test/sd1\t")][0].startswith(
        "lse-test/sd1\tSD 1.x\ttxt2img,img2img\t")


def _plain_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    return folder


async def test_the_model_field_completes_local_models(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await type_into(pilot, "#edit-model_id", "tiny-r")
        field = app.screen.query_one("#edit-model_id")
        await wait_until(pilot, lambda: field._suggestion == "tiny-random", "the completion")
        await pilot.press("right")  # accepts the completion, as in a shell
        await pilot.pause()
        assert app.screen.query_one("#edit-model_id").value == "tiny-random"


async def test_the_model_field_completes_models_in_the_hub_cache(served, out: Path, tmp_path,
                                                                monkeypatch) -> None:
    from huggingface_hub import constants

    cache_snapshot(tmp_path / "hf", "lse-test/tiny-cached", served)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await type_into(pilot, "#edit-model_id", "lse-test/t")
        field = app.screen.query_one("#edit-model_id")
        await wait_until(pilot, lambda: field._suggestion == "lse-test/tiny-cached",
                         "the completion")
        await pilot.press("right")
        await pilot.pause()
        assert app.screen.query_one("#edit-model_id").value == "lse-test/tiny-cached"
