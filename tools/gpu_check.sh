#!/bin/sh
# Issue #13's device check, prepared for a session that is lent a GPU: one run, inside
# the device's per-command limit (about 9 minutes here):
#
#   run(command="sh tools/gpu_check.sh", timeout_s=590)
#
# 1. benchmarks/gpu.py on the real shapes (from_config, random weights): load,
#    calibration, seconds per trial, peak GPU and host memory -> $OUT/gpu.json, gpu.log;
# 2. the CUDA tests (tests/frontier/test_cuda.py) where the study's packages import
#    (the device image has torch and transformers, not optuna, lm-eval or datasets:
#    carry them as wheels in .whl, see the device README) -> $OUT/cuda-tests.log.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
nvidia-smi -L
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PWD"
fi
timeout 360 python3 benchmarks/gpu.py \
    --shapes smollm2-135m,llama-3.2-1b,gemma-2-2b,llama-3.1-8b --out "$OUT/gpu.json" \
    2>&1 | tee "$OUT/gpu.log"
if python3 -c "import optuna, lm_eval, datasets" 2>/dev/null; then
    timeout 200 python3 -m pytest -q -rs -p no:cacheprovider tests/frontier/test_cuda.py \
        2>&1 | tee "$OUT/cuda-tests.log"
else
    echo "CUDA tests not run: optuna, lm-eval or datasets missing (carry wheels in .whl)" \
        | tee "$OUT/cuda-tests.log"
fi
