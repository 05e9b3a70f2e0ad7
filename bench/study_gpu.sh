#!/usr/bin/env bash
# The study's GPU stage in one device call: every model of bench/study.py trained and scored
# in its own process, all at once on one GPU (each is small; together they keep it busy).
#   OUT=/tmp/out BUDGET=420 [RUN=run6] bash bench/study_gpu.sh [MODEL ...]  # study.RUNS[RUN]
# Each process writes WORK/MODEL/out/ (WORK=/tmp/study-work); `study.py bundle` then packs
# them into the 8 files that come back: $OUT/{models.tar, train_summary.json, forecasts*.tar}.
# Then, here:  mkdir -p M && tar xf OUT/models.tar -C M && cp OUT/train_summary.json \
#   bench/results/study_train_$RUN.json && python bench/study.py evaluate \
#   --models M/*/model_scores.npz --forecasts OUT/forecasts*.tar --tag $RUN
# A check of the script on CPU: DEVICE=cpu EXTRA="--smoke --probe-steps 2 --max-steps 3"
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/radarcast-study}
WORK=${WORK:-/tmp/study-work}
BUDGET=${BUDGET:-420}
DEVICE=${DEVICE:-cuda}
EXTRA=${EXTRA:-}
RUN=${RUN:-run6}
MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  mapfile -t MODELS < <(python3 -c "import sys; sys.path.insert(0, 'bench'); import study; print('\n'.join(study.RUNS['$RUN']))")
fi
WORKERS=$(( $(nproc) / ${#MODELS[@]} ))
WORKERS=$(( WORKERS < 1 ? 1 : (WORKERS > 6 ? 6 : WORKERS) ))
rm -rf "$WORK"
mkdir -p "$OUT" "$WORK"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$WORK/gpu.txt" 2>&1
for m in "${MODELS[@]}"; do
  mkdir -p "$WORK/$m/out"
  python3 bench/study.py train --out "$WORK/$m/out" --work "$WORK/$m" --budget "$BUDGET" \
    --device "$DEVICE" --workers "$WORKERS" --models "$m" $EXTRA 2>&1 | grep -v '"event": "step"' \
    > "$WORK/$m/out/log.txt" &
done
wait
for m in "${MODELS[@]}"; do echo "== $m"; tail -2 "$WORK/$m/out/log.txt"; done
python3 bench/study.py bundle --work "$WORK" --out "$OUT"
ls -la "$OUT"
