"""`radarcast evaluate` wall time, an older commit's code against this checkout's, side by side.

The same command (thresholds 0.5/2/5/10 mm/h, FSS scales 1/4/16, bootstrap 1000, the
thesis study's scoring) runs once with each tree's code (PYTHONPATH), alternately, on the
same dataset and forecast files; the scores.json numbers of the two must be identical
(everything but created_by/created_at). Writes bench/results/evaluate_speed.json.

    python bench/evaluate_speed.py DATASET.h5 FORECAST.h5 ... [--old COMMIT] [--repeats 1]

The old tree is ``git archive COMMIT`` unpacked in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import write_json  # noqa: E402

ARGS = ["-m", "persistence", "--n-in", "5", "--n-out", "12", "--thresholds", "0.5,2,5,10",
        "--units", "mmh", "--fss-scales", "1,4,16", "--bootstrap", "1000"]


def run(tree: Path, dataset: str, forecasts: list[str], out: Path) -> float:
    cmd = [sys.executable, "-m", "radarcast", "evaluate", dataset]
    for f in forecasts:
        cmd += ["-f", f]
    cmd += [*ARGS, "--out", str(out), "--overwrite"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=tree)
    return time.perf_counter() - t0


def numbers(path: Path) -> dict:
    doc = json.loads((path / "scores.json").read_text())
    for key in ("created_by", "created_at"):
        doc.get("provenance", doc).pop(key, None)
        doc.pop(key, None)
    return doc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("forecasts", nargs="+")
    ap.add_argument("--old", default="6d00393", help="commit of the code to compare against")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", default=str(ROOT / "bench/results/evaluate_speed.json"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = tmp / "old"
        old.mkdir()
        tar = subprocess.run(["git", "archive", a.old], cwd=ROOT, check=True,
                             capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=tar, check=True)
        load = [os.getloadavg()]
        times = {"old": [], "new": []}
        for _ in range(a.repeats):
            for name, tree in (("old", old), ("new", ROOT)):
                times[name].append(run(tree, a.dataset, a.forecasts, tmp / name))
                load.append(os.getloadavg())
        same = numbers(tmp / "old") == numbers(tmp / "new")
    best = {k: min(v) for k, v in times.items()}
    doc = {"command": "radarcast evaluate DATASET -f ... " + " ".join(ARGS),
           "dataset": a.dataset, "forecasts": a.forecasts, "old_commit": a.old,
           "seconds": times, "ratio_old_over_new": best["old"] / best["new"],
           "identical_scores": same, "loadavg": load, "cpus": os.cpu_count()}
    print(f"old {best['old']:.1f} s, new {best['new']:.1f} s, "
          f"x{doc['ratio_old_over_new']:.2f}, identical scores: {same}")
    write_json(a.json, doc)
    if not same:
        sys.exit("scores.json numbers differ between the two trees")


if __name__ == "__main__":
    main()
