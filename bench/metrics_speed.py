"""Contingency scoring speed: radarcast.metrics vs pysteps' det_cat_fct on the same arrays.

4 thresholds × 12 lead times on 700×700 frames. A "frame" is one lead of one window
(700×700 pixels). Prints a table and writes bench/results/metrics_speed.json.

    python bench/metrics_speed.py [--windows 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np

from radarcast.data.units import Units
from radarcast.metrics import ScoreAccumulator, contingency_counts

THRESHOLDS = [16.5, 74.5, 133.5, 160.5]  # between pixel levels, so > and ≥ agree
LEADS, SIZE = 12, 700


def fields(n_windows: int, seed: int = 0):
    """Smooth rain-like truth (uint8) and a noisy float32 forecast (B, 12, 700, 700)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    truth = np.empty((n_windows, LEADS, SIZE, SIZE), np.uint8)
    for b in range(n_windows):
        for lead in range(LEADS):
            cx, cy = rng.uniform(100, 600, 2)
            f = 230 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 120.0**2))
            truth[b, lead] = np.clip(f + rng.normal(0, 8, f.shape), 0, 255).astype(np.uint8)
    noise = rng.normal(0, 12, truth.shape).astype(np.float32)
    pred = np.clip(np.rint(truth + noise), 0, 255).astype(np.float32)
    return pred, truth


def pysteps_per_lead(pred, truth):
    """The plain way: one det_cat_fct call per lead time and threshold."""
    from pysteps.verification.detcatscores import det_cat_fct

    return [[det_cat_fct(pred[:, lead], truth[:, lead], t, ["CSI", "HSS"]) for t in THRESHOLDS]
            for lead in range(pred.shape[1])]


def pysteps_axis(pred, truth):
    """pysteps' fastest use: one call per threshold, integrating over all axes but lead."""
    from pysteps.verification.detcatscores import det_cat_fct

    return [det_cat_fct(pred, truth, t, ["CSI", "HSS"], axis=(0, 2, 3)) for t in THRESHOLDS]


def ours_counts(pred, truth):
    return contingency_counts(pred, truth, THRESHOLDS)


def ours_all(pred, truth):
    acc = ScoreAccumulator.init(THRESHOLDS, LEADS, Units())
    acc.add(pred, truth)
    return acc.compute()


def timed(fn, pred, truth, repeats: int) -> dict:
    fn(pred, truth)  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(pred, truth)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn(pred, truth)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    frames = pred.shape[0] * pred.shape[1]
    best = min(times)
    return {"seconds_best": best, "seconds_all": times, "frames_per_s": frames / best,
            "peak_extra_bytes": peak, "peak_extra_frames_f32": peak / (SIZE * SIZE * 4)}


def check_agreement(pred, truth) -> None:
    """The counts must equal pysteps' before any timing means anything."""
    from pysteps.verification.detcatscores import det_cat_fct_accum, det_cat_fct_init

    ours = ours_counts(pred, truth)
    for k, t in enumerate(THRESHOLDS):
        for lead in range(pred.shape[1]):
            tab = det_cat_fct_init(t)
            det_cat_fct_accum(tab, pred[:, lead], truth[:, lead])
            theirs = [tab[c] for c in ("hits", "misses", "false_alarms", "correct_negatives")]
            if not np.array_equal(ours[lead, k], np.array(theirs, dtype=np.int64)):
                raise AssertionError(f"counts differ at lead {lead}, threshold {t}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    default_out = Path(__file__).parent / "results" / "metrics_speed.json"
    ap.add_argument("--out", type=Path, default=default_out)
    args = ap.parse_args()
    pred, truth = fields(args.windows)
    check_agreement(pred, truth)
    truth_f32 = truth.astype(np.float32)  # converted outside the timed call
    runs = {
        "pysteps det_cat_fct, per lead x threshold": pysteps_per_lead,
        "pysteps det_cat_fct, axis=(0,2,3) per threshold": pysteps_axis,
        "radarcast contingency_counts (float32 pred, uint8 truth)": ours_counts,
        "radarcast contingency_counts (float32 pred, float32 truth)":
            lambda p, t: ours_counts(p, truth_f32),
        "radarcast ScoreAccumulator.add+compute (all 6 categorical + 6 continuous)": ours_all,
    }
    results = {}
    for name, fn in runs.items():
        results[name] = timed(fn, pred, truth, args.repeats)
    ref = max(v["frames_per_s"] for k, v in results.items() if k.startswith("pysteps"))
    print(f"{args.windows} windows x {LEADS} leads of {SIZE}x{SIZE}, {len(THRESHOLDS)} thresholds")
    print(f"{'method':<76} {'frames/s':>9} {'x fastest pysteps':>18} {'peak extra MB':>14}")
    for name, r in results.items():
        r["ratio_to_fastest_pysteps"] = r["frames_per_s"] / ref
        print(f"{name:<76} {r['frames_per_s']:>9.1f} {r['ratio_to_fastest_pysteps']:>18.1f} "
              f"{r['peak_extra_bytes'] / 2**20:>14.1f}")
    doc = {
        "benchmark": "metrics_speed", "thresholds_pixel": THRESHOLDS, "leads": LEADS,
        "grid": [SIZE, SIZE], "windows": args.windows, "repeats": args.repeats,
        "frame": "one lead of one window (700x700)", "counts_agree_with_pysteps": True,
        "input_bytes": int(pred.nbytes + truth.nbytes),
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "processor": platform.processor() or platform.machine()},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
