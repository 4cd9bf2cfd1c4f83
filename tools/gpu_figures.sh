#!/usr/bin/env bash
# Every GPU figure the documentation reports, in one go on one CUDA GPU: the CUDA-only tests, training
# throughput (benchmarks/gpu_train.py), views (views.py), the learning benchmark at ViT-S/16
# (learning.py, 3 seeds) and the fine-tuning steps (finetune_step.py). Each writes DIR/NAME.log;
# the run folders stay under DIR. Without CUDA it says so and exits 0.
# Usage: tools/gpu_figures.sh [DIR]    (LEARNING_STEPS=500 by default; PYTHON=python3)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-gpu_figures}"
PY="${PYTHON:-python3}"
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_figures.sh: no CUDA device here (nothing to do)"
  exit 0
fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
run() {
  local name=$1; shift
  echo "== $(date +%T) $name -> $OUT/$name.log"
  "$@" >"$OUT/$name.log" 2>&1 || echo "   $name exited $? (see its log)"
}
run cuda_tests "$PY" -m pytest -q -p no:cacheprovider tests/ops/test_augment_cuda.py
run gpu_train "$PY" benchmarks/gpu_train.py --steps 30 --warmup 10 --row-timeout 240 --out "$OUT/gpu_train"
run views "$PY" benchmarks/views.py --device cuda
run learning "$PY" benchmarks/learning.py --device cuda --seeds 3 --steps "${LEARNING_STEPS:-500}" \
  --out "$OUT/learning" data.num_workers=8
run finetune_step "$PY" benchmarks/finetune_step.py --device cuda
echo "== $(date +%T) done: $OUT/*.log"
