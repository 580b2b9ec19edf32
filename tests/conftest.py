"""Shared fixtures: one tiny-model cache for the whole run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import ROOT


def pytest_configure(config):
    # One cache for every test (and for CI reruns on the same machine).
    os.environ.setdefault("LSE_CACHE", str(ROOT / ".pytest_cache" / "lse-cache"))
    # Tests never reach the network: a model id that looks like a hub id fails at once.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.chdir(ROOT)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "sessions"
