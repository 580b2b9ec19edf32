"""Shared fixtures: one tiny-model cache for the whole run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from helpers import ROOT

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
