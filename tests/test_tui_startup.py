"""The TUI's first screen waits for nothing heavy: no torch, no diffusers at import."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT

HEAVY = ("torch", "diffusers", "transformers", "safetensors")


def test_importing_the_app_imports_no_model_library() -> None:
    code = ("import sys\n"
            "import screens.app\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
