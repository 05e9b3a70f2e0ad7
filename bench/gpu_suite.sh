#!/usr/bin/env bash
# Every GPU benchmark of the training-speed work in one go (one device call):
# train_speed, a kernel profile of the 3x64 step, infer_latency, loader_speed, ddp_scaling
# (N = GPUs present), rover_batch (ROVER=1), then the whole-model torch.compile variant while
# time is left. Logs and JSON go to $OUT.
#   OUT=/tmp/out bash bench/gpu_suite.sh
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/radarcast-gpu}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
step() { echo "=== $(date -u +%T) $*" | tee -a "$LOG"; }
{ nvidia-smi; nproc; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"; } \
  > "$OUT/gpu.txt" 2>&1
step train_speed
timeout 250 python3 bench/train_speed.py --out "$OUT/train_speed.json" --configs \
  "3x64,3x128,convlstm-1,convlstm-2,convlstm-3,shi2015-480" 2>&1 | tee -a "$LOG"
step profile
timeout 40 python3 bench/train_speed.py --profile 3x64 > "$OUT/profile.txt" 2>&1
step infer_latency
timeout 50 python3 bench/infer_latency.py --out "$OUT/infer_latency.json" 2>&1 | tee -a "$LOG"
step loader_speed
timeout 80 python3 bench/loader_speed.py --workers 0,4,8,12 --batches 20 \
  --train-json "$OUT/train_speed.json" --out "$OUT/loader_speed.json" 2>&1 | tee -a "$LOG"
step ddp_scaling
timeout 90 python3 bench/ddp_scaling.py --nproc 1,2,4,8 --cases 3x64 --steps 30 --skip 8 \
  --workers 6 --out "$OUT/ddp_scaling.json" 2>&1 | tee -a "$LOG"
if [ "${ROVER:-0}" = 1 ]; then
  step rover_batch
  timeout 60 python3 bench/rover_batch.py --out "$OUT/rover_batch.json" 2>&1 | tee -a "$LOG"
fi
step train_speed compile
timeout "${COMPILE_S:-60}" python3 bench/train_speed.py --configs "3x64:radarcast-compile" \
  --out "$OUT/train_speed_compile.json" 2>&1 | tee -a "$LOG"
step done
