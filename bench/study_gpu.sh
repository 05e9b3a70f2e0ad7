#!/usr/bin/env bash
# The study's GPU stage in one device call: every model of bench/study.py trained and scored
# in its own process, all at once on one GPU (each is small; together they keep it busy).
#   OUT=/tmp/out BUDGET=420 bash bench/study_gpu.sh [MODEL ...]
# Writes $OUT/MODEL/{model_scores.npz, train_summary.json, runs.tar, forecasts*.tar, log.txt};
# then: python bench/study.py evaluate --models $OUT/*/model_scores.npz \
#         --forecasts $OUT/*/forecasts*.tar --tag run4
# A check of the script on CPU: DEVICE=cpu EXTRA="--smoke --probe-steps 2 --max-steps 3"
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/radarcast-study}
BUDGET=${BUDGET:-420}
DEVICE=${DEVICE:-cuda}
EXTRA=${EXTRA:-}
MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  mapfile -t MODELS < <(python3 -c "import sys; sys.path.insert(0, 'bench'); import study; print('\n'.join(study.MODELS))")
fi
WORKERS=$(( $(nproc) / ${#MODELS[@]} ))
WORKERS=$(( WORKERS < 1 ? 1 : (WORKERS > 6 ? 6 : WORKERS) ))
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
for m in "${MODELS[@]}"; do
  mkdir -p "$OUT/$m"
  python3 bench/study.py train --out "$OUT/$m" --work "/tmp/study-work/$m" --budget "$BUDGET" \
    --device "$DEVICE" --workers "$WORKERS" --models "$m" $EXTRA 2>&1 | grep -v '"event": "step"' \
    > "$OUT/$m/log.txt" &
done
wait
for m in "${MODELS[@]}"; do echo "== $m"; tail -2 "$OUT/$m/log.txt"; done
