"""The study's baselines on its two held-out events, with window and block bootstrap side by side.

The study's stored results (bench/results/study*.json, study_scores_*.json) hold pooled
counts and intervals, not the per-window counts that a new bootstrap needs, and the learned
models' forecasts were made on the GPU machine and not kept. What can be recomputed here is
every CPU method of the study: persistence, ROVER and pysteps' Lucas–Kanade nowcast, on the
same two test events (MeteoSwiss 2016-07-11, FMI 2017-05-09) prepared exactly as
``bench/study.py prepare`` does. This script scores them once and resamples the same
per-window counts twice — single windows (what the study's intervals used) and the default
scheme of ``radarcast.evaluation`` (moving blocks here: 2 events) — so the widths compare
one for one, also for paired differences between close methods (LK − ROVER, about as close
as the study's ROVER corrections were to ROVER).

    python bench/study_intervals.py [--bootstrap 1000]      (RADARCAST_SHARED=/path/to/shared)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import study  # noqa: E402
from _common import write_json  # noqa: E402

if os.environ.get("RADARCAST_SHARED"):
    study.RAW = Path(os.environ["RADARCAST_SHARED"]) / "data" / "pysteps-data" / "radar"


def prepare_test_events() -> None:
    study.DATA.mkdir(parents=True, exist_ok=True)
    for name in study.TEST:
        (scale, pattern, glob), folder, _role, split = study.EVENTS[name]
        if (study.DATA / f"{name}.h5").exists():
            continue
        study.cli("preprocess", str(study.RAW / folder / glob), "-o",
                  str(study.DATA / f"{name}.h5"), "--input-scale", scale, *study.SCALE,
                  "--time-pattern", pattern, "--downsample", str(study.DOWNSAMPLE),
                  "--split", split, "--n-in", str(study.N_IN), "--n-out", str(study.N_OUT),
                  "--overwrite")  # fmt: skip


def score_events() -> tuple[dict, np.ndarray, np.ndarray]:
    """Per-window counts of each method over both events, window starts and event ids."""
    from radarcast.evaluation import evaluate

    fc_dir = study.DATA / "forecasts"
    fc_dir.mkdir(parents=True, exist_ok=True)
    counts, starts, events = {}, [], []
    for e, event in enumerate(study.TEST):
        files = study.baselines(event, fc_dir)
        sc = evaluate(study.DATA / f"{event}.h5", ["persistence"], files,
                      thresholds=study.THRESHOLDS, units="mmh", split="test",
                      n_in=study.N_IN, n_out=study.N_OUT)  # fmt: skip
        for m in sc.methods:
            counts.setdefault(m.name, []).append(m.acc.counts)
        starts.append(sc.starts)
        events.append(np.full(len(sc.starts), e))
    return {k: np.concatenate(v) for k, v in counts.items()}, np.concatenate(starts), \
        np.concatenate(events)


def main() -> None:
    from radarcast.bootstrap import resample
    from radarcast.evaluation import interval, paired_bootstrap

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    prepare_test_events()
    counts, starts, events = score_events()
    starts = starts + 100_000 * events  # the events' frame numbers never touch
    length = study.N_IN + study.N_OUT
    out = {"events": study.TEST, "windows": int(len(starts)), "thresholds_mmh": study.THRESHOLDS,
           "bootstrap": args.bootstrap, "schemes": {}}  # fmt: skip
    pairs = [("rover", "persistence"), ("pysteps-LK", "rover")]
    for unit in ("window", "auto"):
        weights, scheme = resample(starts, events, length, args.bootstrap, seed=0, unit=unit)
        boot = paired_bootstrap(counts, args.bootstrap, seed=0, weights=weights)
        entry = {"scheme": scheme.to_dict(), "csi": {}, "differences": {}}
        for name in counts:
            iv = interval(boot[name]["csi"])
            entry["csi"][name] = study.ci_pairs(iv)
        for a, b in pairs:
            iv = interval(boot[a]["csi"] - boot[b]["csi"])
            entry["differences"][f"{a} - {b}"] = study.ci_pairs(iv)
        out["schemes"][unit] = entry
    write_json(study.RESULTS / "study_intervals.json", out)
    for unit, entry in out["schemes"].items():
        print(f"{unit}: {entry['scheme']['description']}")
        for what, table in [*entry["csi"].items(), *entry["differences"].items()]:
            cells = "  ".join(f"[{lo:+.3f}, {hi:+.3f}]" for lo, hi in table)
            print(f"  {what:<24} {cells}")
    w = np.array(out["schemes"]["window"]["differences"]["pysteps-LK - rover"])
    b = np.array(out["schemes"]["auto"]["differences"]["pysteps-LK - rover"])
    ratio = (b[:, 1] - b[:, 0]) / (w[:, 1] - w[:, 0])
    print("block/window width of LK - ROVER per threshold:", np.round(ratio, 1).tolist())


if __name__ == "__main__":
    main()
