#!/usr/bin/env bash
# The short GPU run for the hand-written gate kernels (one device call, ~4 min on an H100):
# the numerics check (Triton gate kernels and a model's gradients vs float64), then
# train_speed side by side — reference, radarcast (Triton gate kernels) and
# radarcast-inductor (the previous torch.compile'd gate arithmetic) — for 3x64 and the
# thesis presets, a repeat of 3x64 radarcast for the spread, and a kernel profile of 3x64.
# Logs and JSON go to $OUT.
#   OUT=/tmp/out bash bench/gpu_gate.sh
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/radarcast-gpu}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
step() { echo "=== $(date -u +%T) $*" | tee -a "$LOG"; }
{ nvidia-smi; nproc; python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name(0))"; } \
  > "$OUT/gpu.txt" 2>&1
step check
timeout 120 python3 bench/train_speed.py --check --out "$OUT/gate_check.json" 2>&1 | tee -a "$LOG"
echo "check exit: ${PIPESTATUS[0]}" | tee -a "$LOG"
step train_speed
V=reference+radarcast+radarcast-inductor
timeout 260 python3 bench/train_speed.py --out "$OUT/train_speed.json" --configs \
  "3x64:$V,convlstm-1:$V,convlstm-2:$V,convlstm-3:$V,shi2015-480:$V,3x64:radarcast" \
  2>&1 | tee -a "$LOG"
step profile
timeout 50 python3 bench/train_speed.py --profile 3x64 > "$OUT/profile.txt" 2>&1
step done
