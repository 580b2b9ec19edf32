#!/usr/bin/env bash
# Creates .venv with lse installed. Torch comes first so that pip does not pull
# a multi-GB CUDA build on CPU-only machines; set LSE_TORCH to choose another.
#   bash scripts/setup.sh          # lse itself
#   bash scripts/setup.sh --dev    # plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
# pip's own lines about what it fetches and installs, without its dependency chatter
pip_install() {
    .venv/bin/python -m pip install --progress-bar on "$@" 2>&1 \
        | grep -E "^(Collecting|Downloading|Installing|Successfully|ERROR)" || true
}
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
TORCH="${LSE_TORCH:-torch==2.13.0}"
say "installing ${TORCH} (CPU build unless LSE_TORCH says otherwise)"
# shellcheck disable=SC2086  # LSE_TORCH may carry pip options such as --index-url
pip_install ${TORCH}
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
say "installing lse${extras} and its libraries (diffusers, transformers, textual …); a few minutes the first time"
pip_install -e ".${extras}"
.venv/bin/python -c "import lse_core, diffusers, textual" \
    || { say "the install did not finish (see pip's messages above)"; exit 1; }
say "done: .venv/bin/lse is ready"
