"""Shared fixtures: one tiny-model cache for the whole run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from helpers import ROOT

# pytest-xdist (-n auto, as pyproject asks) runs a worker per core; torch's OpenMP threads
# on top oversubscribe the cores, and on small frames their spin-waits cost more than they
# compute (the suite took 396 s with them and 343 s without on 2 cores). Set before any
# test imports torch; subprocesses inherit it. A test that needs a thread count sets it.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    cores_per_worker = len(os.sched_getaffinity(0)) // workers
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores_per_worker)))

# CI draws the same examples every run, so a red build always points at a change;
# `LSE_HYPOTHESIS=explore pytest tests/test_any_input.py` draws new ones to find more.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("LSE_HYPOTHESIS", "ci"))


def pytest_configure(config):
    # One cache for every test (and for CI reruns on the same machine).
    os.environ.setdefault("LSE_CACHE", str(ROOT / ".pytest_cache" / "lse-cache"))
    # Tests never reach the network: a model id that looks like a hub id fails at once.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.chdir(ROOT)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture(scope="session")
def family_model(tmp_path_factory):
    """Tiny random diffusers folders of each family (family_models.py), each built once per
    run: ``family_model("sdxl", inpaint=True, prediction="v_prediction")``. The folders'
    names say nothing of their family: lse must tell it from the configs."""
    from family_models import build

    built: dict = {}

    def get(family: str, inpaint: bool = False, prediction: str = "epsilon", **extra) -> Path:
        key = (family, inpaint, prediction, tuple(sorted(extra.items())))
        if key not in built:
            built[key] = build(tmp_path_factory.mktemp("model"), family, inpaint, prediction,
                               **extra)
        return built[key]

    return get
