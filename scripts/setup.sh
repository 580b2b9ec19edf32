#!/usr/bin/env bash
# Creates .venv with lse installed. Torch comes first so that pip does not pull
# a multi-GB CUDA build on CPU-only machines; set LSE_TORCH to choose another.
#   bash scripts/setup.sh          # lse itself
#   bash scripts/setup.sh --dev    # plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q "${LSE_TORCH:-torch==2.13.0}"
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
.venv/bin/python -m pip install -q -e ".${extras}"
