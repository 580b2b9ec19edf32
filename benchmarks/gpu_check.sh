#!/usr/bin/env bash
# The GPU check: every benchmark and a smoke test of every experiment, on a GPU server
# without internet, in under 8 minutes on an H100 before SDXL's architecture was added
# (step 6; its time on a GPU is not measured yet).
#
#   bash benchmarks/gpu_check.sh [WHEELS_DIR [RESULTS_DIR]]
#
# WHEELS_DIR (default .whl) holds wheels of what the server's Python lacks; a typical
# CUDA image has torch, transformers, numpy, pillow, safetensors, pyyaml, imageio,
# scipy, rich and huggingface_hub, but not diffusers, pydantic, pydantic-core,
# platformdirs, filelock or imageio-ffmpeg. Without imageio-ffmpeg (a 68 MB wheel) the
# runs skip their MP4s with a one-line notice. Results (JSON, log) go to RESULTS_DIR
# (default gpu-check). A CPU dry run of the same steps, at toy sizes:
#   LSE_CHECK_DEVICE=cpu LSE_CHECK_SIZE=64 LSE_CHECK_STEPS=2 bash benchmarks/gpu_check.sh
# (that builds SDXL's architecture in float32 too: about 14 GB of memory for a minute).
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS="${1:-.whl}"
RESULTS="$(mkdir -p "${2:-gpu-check}" && cd "${2:-gpu-check}" && pwd)"
PY="${PYTHON:-python3}"
DEVICE="${LSE_CHECK_DEVICE:-cuda}"
SIZE="${LSE_CHECK_SIZE:-768}"
SDXL_SIZE="${LSE_CHECK_SDXL_SIZE:-${LSE_CHECK_SIZE:-1024}}"  # SDXL's native size
# 20 frames on a GPU; a CPU dry run checks the path with one frame (a 2.6-billion-parameter
# UNet takes tens of seconds per call on a CPU).
SDXL_WORK="${LSE_CHECK_SDXL_WORK:-$([ "$DEVICE" = cpu ] && echo visualize || echo diffevolution)}"
# Eager by default: compiling SDXL's UNet takes minutes; LSE_CHECK_SDXL_COMPILE=1 times it compiled.
SDXL_COMPILE=$([ "${LSE_CHECK_SDXL_COMPILE:-0}" = 1 ] && echo --compile || echo --no-compile)
STEPS="${LSE_CHECK_STEPS:-25}"
WORKS="${LSE_CHECK_WORKS:-interpolation diffevolution visualize}"
REPEATS="${LSE_CHECK_REPEATS:-1}"  # one timed run each keeps the check under 8 minutes
LOG="$RESULTS/log.txt"
: > "$LOG"
say() { echo "gpu_check: $*" | tee -a "$LOG"; }
started=$SECONDS

# 1. What this Python lacks, from the wheels brought along ------------------------------
SITE=/tmp/lse-site
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
first_missing() {  # the first module that the given imports lack ("" when none)
    "$PY" -c "
import re
try:
    import $1
except ModuleNotFoundError as exc:  # a missing distribution's metadata says so in words
    name = exc.name if exc.name and ' ' not in exc.name else re.findall(\"'([^']+)'\", str(exc))[0]
    print(name.split('.')[0])" 2>/dev/null
}
install_missing() {  # install wheels until `import $1` works; 1 when a wheel is lacking
    local module wheel
    for _ in $(seq 30); do
        module=$(first_missing "$1")
        [ -z "$module" ] && return 0
        wheel=$(ls "$WHEELS"/"$module"-*.whl "$WHEELS"/"${module//_/-}"-*.whl 2>/dev/null | head -1)
        [ -z "$wheel" ] && { say "no wheel in $WHEELS for the module $module"; return 1; }
        say "installing $(basename "$wheel")"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$wheel" \
            || return 1
    done
    return 1
}
install_missing "diffusers, transformers, pydantic, platformdirs, filelock, lse_core.run, lse_core.bench" || exit 2
install_missing imageio_ffmpeg || say "MP4s will be skipped (each run says so in one line)"
export LSE_CACHE="$RESULTS/cache"   # the tiny model and the compile cache, fresh per check
LSE=("$PY" -m lse_core.cli)
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee -a "$LOG"

# 2. Smoke test: every experiment and model kind, on the device -----------------------
failures=0
for config in configs/*/*.yaml; do
    extra=()
    case "$config" in *diffevolution*) extra=(--auto 1) ;; esac
    if "${LSE[@]}" run "$config" --model tiny --device "$DEVICE" --out "$RESULTS/smoke" \
            --set height=64 --set width=64 --set diffusion_steps=2 --set walk_steps=2 \
            --set interpolation_steps=2 --set num_filler_frames=4 --set compile=false \
            "${extra[@]}" > "$RESULTS/smoke.out" 2>&1; then
        say "smoke ok: $config"
    else
        failures=$((failures + 1)); say "SMOKE FAILED: $config: $(tail -1 "$RESULTS/smoke.out")"
    fi
done

# 3. SD 2.x's architecture with random weights, as a model folder ----------------------
MODEL="$RESULTS/sd2-random"
"$PY" -c "from lse_core.bench import save_full_size_model; save_full_size_model('$MODEL')" \
    || { say "could not build the SD 2.x architecture"; exit 1; }

# 4. Start-up: first launch (empty compile cache) against the second ------------------
for launch in first second; do
    t0=$SECONDS
    "${LSE[@]}" run configs/txt2img/single_inference.yaml --model "$MODEL" --device "$DEVICE" \
        --out "$RESULTS/startup" --set height="$SIZE" --set width="$SIZE" \
        --set diffusion_steps="$STEPS" --set images_per_prompt=1 >> "$LOG" 2>&1
    say "$launch launch, one ${SIZE}px frame (default path): $((SECONDS - t0)) s"
done

# 5. Benchmarks: naive against the engine, each work --------------------------------------
for work in $WORKS; do
    "${LSE[@]}" bench --model "$MODEL" --work "$work" --size "$SIZE" --steps "$STEPS" \
        --device "$DEVICE" --repeats "$REPEATS" --json "$RESULTS/bench-$work.json" 2>&1 | tee -a "$LOG"
done
"${LSE[@]}" bench --model "$MODEL" --work interpolation --size "$SIZE" --steps "$STEPS" \
    --device "$DEVICE" --repeats "$REPEATS" --no-compile \
    --json "$RESULTS/bench-interpolation-eager.json" 2>&1 | tee -a "$LOG"

rm -rf "$MODEL"  # gigabytes of random weights

# 6. SDXL's architecture with random weights (two text encoders, pooled embedding, size
#    conditioning, the VAE upcast in fp16): s/frame and the fraction of fp16 peak --------
"${LSE[@]}" bench --model sdxl-architecture --work "$SDXL_WORK" --size "$SDXL_SIZE" \
    --steps "$STEPS" --device "$DEVICE" --repeats "$REPEATS" "$SDXL_COMPILE" \
    --json "$RESULTS/bench-sdxl-$SDXL_WORK.json" 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" = 0 ] || { failures=$((failures + 1)); say "SDXL ARCHITECTURE FAILED"; }
say "done in $((SECONDS - started)) s; failures: $failures; results in $RESULTS"
exit $((failures > 0))
