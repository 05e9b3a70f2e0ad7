"""Synthetic storm generation speed at 128×128 on one core (goal: ≥ 200 frames/s).

    python bench/synth_speed.py [--frames 400]

Prints a table and writes bench/results/synth_speed.json.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # before numpy loads: one core means one BLAS thread too

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from radarcast.data.synthetic import SynthConfig, generate, write_synth  # noqa: E402

OUT = Path(__file__).parent / "results" / "synth_speed.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=400, help="frames per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rows = []
    for growth in (0.0, 1.0, 4.0):
        cfg = SynthConfig(sequences=4, frames=args.frames // 4, growth=growth)
        best = min(
            _time(lambda cfg=cfg: sum(1 for _ in generate(cfg))) for _ in range(args.repeats)
        )
        rows.append(
            {
                "case": f"generate 128x128, growth {growth:g}",
                "frames": args.frames,
                "seconds": best,
                "frames_per_s": args.frames / best,
            }
        )
    cfg = SynthConfig(sequences=4, frames=args.frames // 4)
    with tempfile.TemporaryDirectory() as tmp:
        best = min(
            _time(lambda i=i: write_synth(Path(tmp) / f"s{i}", cfg)) for i in range(args.repeats)
        )
    rows.append(
        {
            "case": "write_synth PNG 128x128",
            "frames": args.frames,
            "seconds": best,
            "frames_per_s": args.frames / best,
        }
    )
    print(f"{'case':40s} {'frames':>7s} {'s':>8s} {'frames/s':>10s}")
    for r in rows:
        print(f"{r['case']:40s} {r['frames']:7d} {r['seconds']:8.3f} {r['frames_per_s']:10.0f}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "goal_frames_per_s": 200,
                "cores": 1,
                "best_of": args.repeats,
                "machine": platform.platform(),
                "python": platform.python_version(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {OUT}")


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
