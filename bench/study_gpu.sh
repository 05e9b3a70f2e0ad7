#!/usr/bin/env bash
# The thesis study (examples/thesis.toml) on one GPU machine, in one call:
#   bash bench/study_gpu.sh [OUT]        # OUT: where report.html/report.json are copied
# The raw events travel in .carry/pysteps-data (a copy of ../shared/data/pysteps-data's
# mch and fmi folders); they are linked to where the study file looks, ../shared/data.
# Everything else is `radarcast study --device cuda` (docs/study.md).
set -euo pipefail
OUT=${1:-${OUT:-/tmp/radarcast-study}}
STUDY=${STUDY:-/tmp/thesis-study}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
if [ ! -e ../shared/data/pysteps-data ] && [ -d .carry/pysteps-data ]; then
  mkdir -p ../shared/data && ln -s "$PWD/.carry/pysteps-data" ../shared/data/pysteps-data
fi
if [ ! -d ../shared/data/pysteps-data/radar/mch ] || [ ! -d ../shared/data/pysteps-data/radar/fmi ]; then
  echo "study_gpu.sh: no radar data: carry .carry/pysteps-data/radar/{mch,fmi} (24 MB)" >&2
  exit 1
fi
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1 || true
python3 -m radarcast study examples/thesis.toml -o "$STUDY" --device cuda 2>&1 | tee "$OUT/log.txt"
# 7 files back (the device returns at most 8); docs/results.md is then refreshed here with
#   radarcast report OUT/report.json --update docs/results.md   (timing.json beside it)
cp "$STUDY/report.html" "$STUDY/report.json" "$STUDY/manifest.json" "$STUDY/timing.json" "$OUT/"
tar cf "$OUT/runs.tar" -C "$STUDY" --exclude='*.pt' runs evaluate
