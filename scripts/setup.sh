#!/usr/bin/env bash
# Creates .venv with lse installed. Torch comes first so that pip does not pull
# a multi-GB CUDA build on CPU-only machines; set LSE_TORCH to choose another.
#   bash scripts/setup.sh          # lse itself
#   bash scripts/setup.sh --dev    # plus the test tools
# Every line says how long setup has run; while a step is quiet (pip unpacks
# for a minute without a word), a line every few seconds says it is still at it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
HEARTBEAT_S="${LSE_SETUP_HEARTBEAT:-4}"
START=$SECONDS

clock() { local s=$((SECONDS - START)); printf '%d:%02d' $((s / 60)) $((s % 60)); }
say() { printf '\033[1m[%s] setup:\033[0m %s\n' "$(clock)" "$*"; }
# pip's own lines about what it fetches and installs, without its dependency
# chatter; its list of packages is cut to a line.
pip_news() {
    { grep -E "^(Collecting|Downloading|Installing|Successfully|ERROR|error:)" || true; } \
        | while IFS= read -r line; do
            [ ${#line} -gt 110 ] && line="${line:0:107}…"
            printf '[%s]   %s\n' "$(clock)" "$line"
        done
}
quietly() { cat >/dev/null; }

# step WHAT SHOW COMMAND...: runs COMMAND, passing each new line of its output
# through the function SHOW as it comes; when nothing has been shown for
# HEARTBEAT_S seconds, says that WHAT goes on, with the command's last line. On
# failure, shows the end of the output (pip's real errors).
step() {
    local what=$1 show=$2
    shift 2
    local log
    log=$(mktemp "${TMPDIR:-/tmp}/lse-setup.XXXXXX")
    local began=$SECONDS lines=0 quiet=0 status=0 new total last
    "$@" >"$log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        total=$(wc -l <"$log")
        new=$(sed -n "$((lines + 1)),${total}p" "$log" | "$show")
        lines=$total
        if [ -n "$new" ]; then
            printf '%s\n' "$new"
            quiet=0
        elif [ $((++quiet)) -ge "$HEARTBEAT_S" ]; then
            quiet=0
            last=$(tail -n 1 "$log" | cut -c1-60)
            say "… still ${what} ($((SECONDS - began)) s so far${last:+; last: ${last}})"
        fi
    done
    wait "$pid" || status=$?
    new=$(sed -n "$((lines + 1)),\$p" "$log" | "$show")
    if [ -n "$new" ]; then printf '%s\n' "$new"; fi
    if [ "$status" -ne 0 ]; then
        say "${what} failed (exit ${status}); the end of its output:"
        tail -n 40 "$log" >&2
    fi
    rm -f "$log"
    return "$status"
}

export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $("$PYTHON" --version)"
    step "creating .venv" quietly "$PYTHON" -m venv .venv
fi
TORCH="${LSE_TORCH:-torch==2.13.0}"
say "installing ${TORCH} (CPU build unless LSE_TORCH says otherwise; about 200 MB)"
# shellcheck disable=SC2086  # LSE_TORCH may carry pip options such as --index-url
PYTHONUNBUFFERED=1 step "installing torch" pip_news \
    .venv/bin/python -m pip install --progress-bar off ${TORCH} || exit 1
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
say "installing lse${extras} and its libraries (diffusers, transformers, textual …); a few minutes the first time"
PYTHONUNBUFFERED=1 step "installing lse's libraries" pip_news \
    .venv/bin/python -m pip install --progress-bar off -e ".${extras}" || exit 1
say "checking that lse imports (the first import compiles the libraries' Python files)"
step "checking the install" quietly .venv/bin/python -c "import lse_core, diffusers, textual" \
    || { say "the install did not finish (see the messages above)"; exit 1; }
say "done in $(clock): .venv/bin/lse is ready"
