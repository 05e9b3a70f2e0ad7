"""ROVER on a quiet machine and beside a CPU hog, in one run: does it survive load?

Makes a dataset (one MeteoSwiss day at its native 640x710 grid from ../shared/data when
present, else synthetic 256x256 storms), then runs ``radarcast rover --limit N`` four times,
each as its own process: quiet and loaded (``--hogs`` busy-looping processes, default 1), each
with the default threads (``radarcast.threads``: the cores free now) and with as many
threads as cores (torch's own default, what ROVER used before). Reports ROVER's own seconds
(from its summary line), the loaded/quiet ratios, and writes bench/results/rover_load_hogsN.json.

    python bench/rover_load.py [--limit 24] [--repeats 1] [--hogs 1]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import make_dataset, write_json  # noqa: E402  (bench/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
MCH = REPO.parent / "shared" / "data" / "pysteps-data" / "radar" / "mch" / "20160711"


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def dataset(folder: Path) -> tuple[Path, str]:
    if MCH.is_dir():
        out = folder / "mch.h5"
        subprocess.run(
            [sys.executable, "-m", "radarcast", "preprocess", str(MCH / "*.gif"), "-o", str(out),
             "--input-scale", "mch", "--time-pattern", "AQC%y%j%H%M?_", "--n-in", "5",
             "--n-out", "12", "--split", "0,0,1"],
            check=True, capture_output=True,
        )  # fmt: skip
        return out, "MeteoSwiss 2016-07-11, 640x710"
    return make_dataset(folder, 256, 60, 2), "synthetic 256x256"


def rover_seconds(ds: Path, folder: Path, threads: int, limit: int) -> tuple[float, float]:
    """ROVER's own seconds (its summary line) and the process' wall seconds."""
    cmd = [sys.executable, "-m", "radarcast", "rover", str(ds), "-o", str(folder / "r.h5"),
           "--split", "all", "--limit", str(limit), "--overwrite"]
    if threads:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    return float(re.search(r" in ([\d.]+) s ", r.stdout).group(1)), wall


def measure(ds, folder, threads, limit, repeats, hogs: int) -> dict:
    stop, procs = mp.Event(), []
    if hogs:
        procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(hogs)]
        for p in procs:
            p.start()
        time.sleep(1.0)
    try:
        runs = [rover_seconds(ds, folder, threads, limit) for _ in range(repeats)]
    finally:
        stop.set()
        for p in procs:
            p.join(5)
    best = min(runs)
    return {"rover_s": best[0], "wall_s": best[1], "runs": runs}


CORES = len(os.sched_getaffinity(0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--hogs", type=int, default=1, help="busy-looping processes (default 1)")
    args = ap.parse_args()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ds, what = dataset(folder)
        rover_seconds(ds, folder, 1, 1)  # warm the page cache and the imports
        table = {}
        for label, threads in (("auto", 0), (f"{CORES} threads", CORES)):
            for load in ("quiet", "loaded"):
                table[f"{load}, {label}"] = measure(
                    ds, folder, threads, args.limit, args.repeats,
                    hogs=args.hogs if load == "loaded" else 0,
                )
    ratio_auto = table["loaded, auto"]["rover_s"] / table["quiet, auto"]["rover_s"]
    ratio_all = table[f"loaded, {CORES} threads"]["rover_s"] / table["quiet, auto"]["rover_s"]
    print(f"ROVER, {args.limit} windows of {what}; {CORES} cores; hog: {args.hogs} busy processes")
    for name, row in table.items():
        print(f"  {name:<22} {row['rover_s']:7.2f} s   (process {row['wall_s']:.1f} s)")
    print(f"  loaded/quiet, default threads: {ratio_auto:.2f}x (goal: within 2x)")
    print(f"  loaded {CORES} threads / quiet default: {ratio_all:.2f}x (the old default)")
    write_json(REPO / "bench" / "results" / f"rover_load_hogs{args.hogs}.json", {
        "dataset": what, "windows": args.limit, "cores": CORES, "hog_processes": args.hogs,
        "machine": platform.platform(), "load_at_start": load_at_start,
        "load_at_end": os.getloadavg(),
        "results": table, "loaded_over_quiet_default": ratio_auto,
        "loaded_all_threads_over_quiet_default": ratio_all,
        "command": "python bench/rover_load.py " + " ".join(sys.argv[1:]),
    })  # fmt: skip


if __name__ == "__main__":
    main()
