"""ROVER forecasts on 1 and 2 worker processes against one process, in one run.

Makes a dataset (one MeteoSwiss day at its native 640x710 grid from ../shared/data when
present, else synthetic 256x256 storms), then runs ``radarcast rover --limit N`` as its own
process: single-process with one thread (``--threads 1``), ``--workers 1`` and
``--workers 2``. Each forecast file is checked to be the single-process one, array for
array. While each runs, the resident memory of every process of its tree is sampled from
/proc (every 0.2 s): the peak of the command's own process and of each worker (the
processes forked from the fork server), and the CPU seconds of the single-process run (the
core-time per window that docs/scale.md multiplies by archive sizes). The load average is
recorded before and after each run, and a control (pure-Python busy loops on 1 and 2
processes) says how much a second process can gain on this machine at that moment.

    python bench/scale_workers.py [--limit 24] [--workers 1,2] [--out bench/results/...]
    python bench/scale_workers.py --synthetic 200 --limit 360   # more, cheaper windows
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np
from _common import make_dataset, write_json  # noqa: E402
from rover_load import dataset  # noqa: E402  (bench/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids


def _rss_mib(pid: int) -> float:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def sample_tree(root: int, stop: threading.Event, peaks: dict) -> None:
    """Peak RSS (MiB) per process of ``root``'s tree, by depth: 0 the command, 2 workers."""
    while not stop.is_set():
        kids, level = _children(), [(root, 0)]
        while level:
            pid, depth = level.pop()
            key = (depth, pid)
            peaks[key] = max(peaks.get(key, 0.0), _rss_mib(pid))
            level += [(k, depth + 1) for k in kids.get(pid, [])]
        stop.wait(0.2)


def run(ds: Path, out: Path, limit: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "radarcast", "rover", str(ds), "-o", str(out), "--split",
           "all", "--limit", str(limit), "--overwrite", *extra]
    load0 = os.getloadavg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, peaks = threading.Event(), {}
    sampler = threading.Thread(target=sample_tree, args=(proc.pid, stop, peaks), daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {stderr.strip()}")
    seconds = float(re.search(r" in ([\d.]+) s ", stdout.replace("\n", " ")).group(1))
    workers = [v for (depth, _), v in peaks.items() if depth == 2]
    return {
        "args": extra, "windows": limit, "seconds": seconds, "wall_s": round(wall, 2),
        "windows_per_s": limit / seconds,
        # CPU seconds of the command and of the processes it waited for (all of the
        # single-process run; the workers of a sharded one may be missing from it)
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": {"command": round(peaks.get((0, proc.pid), 0.0), 1),
                         "workers": [round(v, 1) for v in sorted(workers)]},
        "loadavg_before": load0, "loadavg_after": os.getloadavg(),
    }


def _spin(n: int) -> float:
    t, x = time.perf_counter(), 0
    for i in range(n):
        x += i
    return time.perf_counter() - t


def control(procs: int, tasks_each: int = 3, n: int = 10_000_000) -> float:
    """Pure-Python busy loops on ``procs`` processes: tasks/s. The ratio for 2 and 1 is what
    the machine lends a second process right now (2.0 on two free cores)."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(procs) as pool:
        pool.map(_spin, [1000] * procs)  # started
        t0 = time.perf_counter()
        pool.map(_spin, [n] * (procs * tasks_each))
        return procs * tasks_each / (time.perf_counter() - t0)


def same_file(a: Path, b: Path) -> bool:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        return sorted(fa) == sorted(fb) and all(
            np.array_equal(fa[k][...], fb[k][...]) for k in fa
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=24)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "scale_workers.json"))
    p.add_argument("--synthetic", type=int, default=0, metavar="FRAMES",
                   help="2 synthetic 256x256 sequences of FRAMES frames instead (more windows)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if a.synthetic:
            ds = make_dataset(folder, 256, a.synthetic, 2)
            what = f"synthetic 256x256, 2 sequences of {a.synthetic} frames"
        else:
            ds, what = dataset(folder)
        single = run(ds, folder / "single.h5", a.limit, ["--threads", "1"])
        rows = [single]
        print(f"{what}: single process, 1 thread: {single['windows_per_s']:.3f} windows/s, "
              f"{single['cpu_s'] / a.limit:.2f} CPU s/window "
              f"(load {single['loadavg_before'][0]:.1f})")
        for n in [int(v) for v in a.workers.split(",")]:
            out = folder / f"w{n}.h5"
            r = run(ds, out, a.limit, ["--workers", str(n)])
            r["same_file_as_single"] = same_file(folder / "single.h5", out)
            r["speedup_vs_single"] = r["windows_per_s"] / single["windows_per_s"]
            rows.append(r)
            print(f"--workers {n}: {r['windows_per_s']:.3f} windows/s = "
                  f"{r['speedup_vs_single']:.2f}x single, peak RSS per worker "
                  f"{r['peak_rss_mib']['workers']} MiB, same file: {r['same_file_as_single']} "
                  f"(load {r['loadavg_before'][0]:.1f} → {r['loadavg_after'][0]:.1f})")
    cpu = {n: control(n) for n in (1, 2)}
    cpu_ratio = cpu[2] / cpu[1]
    print(f"control, busy loops: 2 processes / 1 = {cpu_ratio:.2f}x (what this machine lends "
          f"a second process now; 2.0 on two free cores)")
    by = {tuple(r["args"]): r for r in rows}
    if ("--workers", "1") in by and ("--workers", "2") in by:
        ratio = by[("--workers", "2")]["windows_per_s"] / by[("--workers", "1")]["windows_per_s"]
        print(f"2 workers / 1 worker: {ratio:.2f}x (goal ≥ 1.8x on 2 free cores)")
    else:
        ratio = None
    write_json(a.out, {
        "dataset": what, "cores": os.cpu_count(), "machine": platform.platform(),
        "python": sys.version.split()[0], "command": " ".join(sys.argv), "runs": rows,
        "workers2_over_workers1": ratio,
        "control_busy_loop_2_over_1_processes": cpu_ratio,
        "note": "windows/s from the command's own timing line (dataset planning to file "
                "written, worker start-up included); load averages are the machine's, shared",
    })


if __name__ == "__main__":
    main()
