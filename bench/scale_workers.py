"""ROVER forecasts on 1, 2, 4, 8… worker processes against one process, in one run.

Builds a dataset from one MeteoSwiss day (the GIFs of ``--data DIR``, native 640x710 grid):
the day is 40 frames, 24 windows of 5 inputs and 12 leads, too few for start-up to be
small, so its files are read as many times as ``--limit`` needs, each copy shifted by one
day (a segment of its own: no window crosses copies). ``--synthetic FRAMES`` uses
synthetic 256x256 storms instead. Then runs ``radarcast rover --limit N --device cpu`` as
its own process: single-process with one thread (``--threads 1``), then ``--workers W``
for each W of ``--workers``; every process gets one thread (OMP/MKL/OpenBLAS variables
at 1, each worker sets torch to 1) and sees no GPU (``CUDA_VISIBLE_DEVICES=``). When
``distributed`` is importable (and not ``--no-dask``), one more run goes to a Dask
``LocalCluster`` with the largest W, one thread per worker, its workers having imported
numpy, h5py, torch and radarcast first (as a long-lived cluster's have; the time that
took is recorded apart); without Dask it is skipped.

Each forecast file is checked to be the single-process one: every array, and every
attribute but ``created_at``/``created_by``. While each command runs, /proc is sampled
every 0.2 s over its process tree: the peak resident memory of the command and of each
worker, and each worker's CPU seconds. The command's own summary line gives its time
and how many shards each worker ran. The load average is recorded before and after each
run, and a control (pure-Python busy loops on 1 and W processes, no radarcast) says what
W processes can gain on this machine at that moment. Needs numpy, h5py, torch and
radarcast only.

    python bench/scale_workers.py --workers 1,2,4,8 --limit 96 \\
        --data .carry/pysteps-data/radar/mch/20160711 --out bench/results/scale_workers_16core.json
    python bench/scale_workers.py --limit 6 --workers 1,2      # a dry run on a small machine

The path of the JSON is the last line printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np
from _common import make_dataset, rss_mib, write_json  # noqa: E402  (bench/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
DATA_DIRS = [  # the first that exists is the default --data
    Path("/work/shared/data/pysteps-data/radar/mch/20160711"),
    REPO / ".carry" / "pysteps-data" / "radar" / "mch" / "20160711",
    REPO.parent / "shared" / "data" / "pysteps-data" / "radar" / "mch" / "20160711",
]
N_IN, N_OUT = 5, 12
TICK = os.sysconf("SC_CLK_TCK")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "CUDA_VISIBLE_DEVICES": "", "COLUMNS": "400"}  # COLUMNS: no wrapped summary


def child_env() -> dict:
    env = {**os.environ, **ONE_THREAD}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def fail(message: str) -> None:
    print(f"scale_workers: {message}", file=sys.stderr)
    raise SystemExit(1)


# --------------------------------------------------------------------------- dataset
def mch_dataset(data: Path, folder: Path, limit: int) -> tuple[Path, str, int]:
    """The day of GIFs in ``data``, read ``copies`` times (each a day later), as one
    dataset; returns its path, a description and the number of copies."""
    gifs = sorted(data.glob("AQC*.gif"))
    if not gifs:
        fail(f"--data {data}: no MeteoSwiss GIFs (AQC*.gif) there")
    per_copy = len(gifs) - (N_IN + N_OUT) + 1
    if per_copy < 1:
        fail(f"--data {data}: {len(gifs)} frames make no window of {N_IN}+{N_OUT}")
    copies = max(1, math.ceil(limit / per_copy))
    raw = folder / "gifs"
    raw.mkdir()
    for k in range(copies):
        for g in gifs:  # AQC YY DDD HHMM …: the day of year moves on by k
            name = g.name
            day = int(name[5:8]) + k
            if day > 365:
                fail(f"--limit {limit} needs {copies} copies of the day: too many")
            (raw / f"{name[:5]}{day:03d}{name[8:]}").symlink_to(g.resolve())
    out = folder / "mch.h5"
    cmd = [sys.executable, "-m", "radarcast", "preprocess", str(raw / "*.gif"), "-o", str(out),
           "--input-scale", "mch", "--time-pattern", "AQC%y%j%H%M?_", "--n-in", str(N_IN),
           "--n-out", str(N_OUT), "--split", "0,0,1"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    if r.returncode:
        fail(f"preprocess of {data} failed: {r.stderr.strip()[-400:]}")
    what = (f"MeteoSwiss {data.name}, 640x710, {len(gifs)} frames read {copies} times "
            f"({per_copy} windows of {N_IN}+{N_OUT} each)")
    return out, what, copies


# --------------------------------------------------------------------------- sampling
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


def _cpu_s(pid: int) -> float:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def sample_tree(root: int, stop: threading.Event, seen: dict) -> None:
    """Per process of ``root``'s tree, by (depth, pid): peak RSS (MiB) and the last CPU
    seconds read. Depth 0 is the command, 1 its fork server, 2 the workers."""
    while not stop.is_set():
        kids, level = _children(), [(root, 0)]
        while level:
            pid, depth = level.pop()
            rss, cpu = rss_mib(pid) or 0.0, _cpu_s(pid)
            old = seen.get((depth, pid), (0.0, 0.0))
            seen[(depth, pid)] = (max(old[0], rss), max(old[1], cpu))
            level += [(k, depth + 1) for k in kids.get(pid, [])]
        stop.wait(0.2)


# --------------------------------------------------------------------------- one run
def run(ds: Path, out: Path, limit: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "radarcast", "rover", str(ds), "-o", str(out), "--split",
           "all", "--limit", str(limit), "--device", "cpu", "--overwrite", *extra]
    load0 = os.getloadavg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env())
    stop, seen = threading.Event(), {}
    sampler = threading.Thread(target=sample_tree, args=(proc.pid, stop, seen), daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop.set()
    sampler.join()
    if proc.returncode:
        fail(f"{' '.join(cmd)} failed: {stderr.strip()[-400:]}")
    line = " ".join(stdout.split())
    seconds = float(re.search(r" in ([\d.]+) s ", line).group(1))
    shards = re.search(r"shards per worker ([\d/]+), CPU s ([\d./]+)", line)
    ready = re.search(r"ready in ([\d.]+) s", line)
    ready_s = float(ready[1]) if ready else 0.0
    workers = sorted(((v, pid) for (depth, pid), v in seen.items() if depth == 2), reverse=True)
    return {
        "args": extra, "windows": limit, "seconds": seconds, "wall_s": round(wall, 2),
        "windows_per_s": limit / seconds,
        # local worker pools: their start-up (fork server, imports) and the rate after it,
        # what a long archive run approaches
        "startup_s": ready_s if ready else None,
        "windows_per_s_after_startup": limit / (seconds - ready_s) if ready else None,
        # the command and what it waited for: all of a single-process run; a sharded run's
        # workers are the fork server's children and are in worker_cpu_s instead
        "cpu_s": round((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime), 2),
        "peak_rss_mib": {"command": round(seen.get((0, proc.pid), (0.0, 0.0))[0], 1),
                         "workers": [round(v[0], 1) for v, _ in workers]},
        # from /proc, start-up included (sampled every 0.2 s: the last 0.2 s may be missing),
        # in the order of peak_rss_mib.workers
        "worker_cpu_s": [round(v[1], 2) for v, _ in workers],
        # from the command's summary line: what the shards themselves took, per worker
        "shards_per_worker": [int(v) for v in shards[1].split("/")] if shards else None,
        "shard_cpu_s_per_worker": [float(v) for v in shards[2].split("/")] if shards else None,
        "summary": line[-400:],
        "loadavg_before": load0, "loadavg_after": os.getloadavg(),
    }


def run_dask(ds: Path, out: Path, limit: int, workers: int) -> dict | None:
    try:
        from distributed import LocalCluster
    except ImportError:
        print("dask: distributed is not installed, the LocalCluster run is skipped")
        return None
    # its workers are this process' children: one thread, no GPU, this checkout's radarcast
    env = child_env()
    os.environ.update({k: env[k] for k in (*ONE_THREAD, "PYTHONPATH") if k != "COLUMNS"})
    sys.path.insert(0, str(REPO))  # spawned workers start from this process' sys.path
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        # a cluster outlives one command: its workers import numpy, h5py, torch and
        # radarcast before the timed run (local workers get them from their fork server)
        from distributed import Client

        t0 = time.perf_counter()
        with Client(cluster) as client:
            client.run(_preload)
        warm = time.perf_counter() - t0
        r = run(ds, out, limit, ["--scheduler", cluster.scheduler_address])
    r["args"] = ["--scheduler", f"LocalCluster({workers} workers x 1 thread)"]
    r["worker_imports_before_the_run_s"] = round(warm, 2)
    r.pop("peak_rss_mib")  # its workers are not in the command's process tree
    r.pop("worker_cpu_s")
    return r


def _preload() -> None:
    """Run on each Dask worker: import what a shard needs (the fork server's list)."""
    import importlib

    from radarcast.parallel.engine import PRELOAD

    for name in PRELOAD:
        importlib.import_module(name)


# --------------------------------------------------------------------------- checks
def _spin(n: int) -> float:
    t, x = time.perf_counter(), 0
    for i in range(n):
        x += i
    return time.perf_counter() - t


def control(procs: int, tasks_each: int = 3, n: int = 10_000_000) -> float:
    """Pure-Python busy loops on ``procs`` processes: tasks/s. Its ratio to 1 process is
    what the machine lends ``procs`` processes right now (``procs`` on free cores)."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(procs) as pool:
        pool.map(_spin, [1000] * procs)  # started
        t0 = time.perf_counter()
        pool.map(_spin, [n] * (procs * tasks_each))
        return procs * tasks_each / (time.perf_counter() - t0)


def _items(f: h5py.File) -> dict:
    """Every dataset's array and every attribute (but created_*) of a file, by path."""
    out = {f"/@{k}": v for k, v in f.attrs.items() if not k.startswith("created_")}

    def visit(name, obj):
        for k, v in obj.attrs.items():
            if not k.startswith("created_"):
                out[f"{name}@{k}"] = v
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[...]

    f.visititems(visit)
    return out


def same_file(a: Path, b: Path) -> bool:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        x, y = _items(fa), _items(fb)
    return sorted(x) == sorted(y) and all(
        np.array_equal(np.asarray(x[k]), np.asarray(y[k])) for k in x
    )


def machine() -> dict:
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                  if ln.startswith("model name")), None) if Path("/proc/cpuinfo").exists() else None
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or None
    except OSError:
        commit = None
    import torch

    return {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "cpu": model, "machine": platform.platform(), "python": sys.version.split()[0],
            "torch": torch.__version__, "numpy": np.__version__, "commit": commit}


# --------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=96, help="windows per run (default 96)")
    p.add_argument("--workers", default="1,2,4,8", help="worker counts, e.g. 1,2,4,8")
    p.add_argument("--data", type=Path, default=None,
                   help=f"folder of one MeteoSwiss day of GIFs (default: the first of "
                        f"{', '.join(map(str, DATA_DIRS))} that exists)")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "scale_workers.json"))
    p.add_argument("--synthetic", type=int, default=0, metavar="FRAMES",
                   help="2 synthetic 256x256 sequences of FRAMES frames instead of --data")
    p.add_argument("--no-dask", action="store_true", help="skip the LocalCluster run")
    a = p.parse_args()
    try:
        counts = [int(v) for v in a.workers.split(",")]
    except ValueError:
        fail(f"--workers must be counts such as 1,2,4,8, got {a.workers!r}")
    if not counts or min(counts) < 1 or a.limit < 1:
        fail("--workers counts and --limit must be ≥ 1")
    data = a.data
    if not a.synthetic:
        if data is None:
            data = next((d for d in DATA_DIRS if d.is_dir()), None)
            if data is None:
                fail(f"no MeteoSwiss day found at {', '.join(map(str, DATA_DIRS))}: "
                     "give --data DIR (or --synthetic FRAMES)")
        elif not data.is_dir():
            fail(f"--data {data}: no such folder")
    started = time.perf_counter()
    info = machine()
    print(f"{info['usable_cores']} usable cores ({info['cpu']}), load "
          f"{os.getloadavg()[0]:.1f}; workers {counts}, {a.limit} windows per run")
    doc = {"dataset": None, **info, "command": " ".join(sys.argv), "windows": a.limit,
           "workers": counts, "complete": False, "runs": [],
           "note": "windows/s from the command's own timing line (dataset planning to file "
                   "written, worker start-up included); every process 1 thread, --device cpu; "
                   "load averages are the machine's"}

    def save(final: bool = False) -> None:
        """Written after every run, so that a run cut short still leaves its numbers."""
        rows = doc["runs"]
        by = {r["workers"]: r for r in rows if "workers" in r}
        doc["speedup_vs_single"] = {str(n): r["speedup_vs_single"] for n, r in by.items()}
        doc["speedup_vs_1_worker"] = {str(n): r.get("speedup_vs_1_worker")
                                      for n, r in by.items()}
        doc["speedup_vs_1_worker_after_startup"] = {
            str(n): r.get("speedup_vs_1_worker_after_startup") for n, r in by.items()}
        doc["all_files_identical"] = all(r.get("same_file_as_single", True) for r in rows)
        doc["total_s"] = round(time.perf_counter() - started, 1)
        if final:
            write_json(a.out, doc)
        else:
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(json.dumps(doc, indent=1))

    folder = Path(tempfile.mkdtemp(prefix="scale_workers_"))
    try:
        if a.synthetic:
            ds = make_dataset(folder, 256, a.synthetic, 2)
            what, copies = f"synthetic 256x256, 2 sequences of {a.synthetic} frames", None
        else:
            ds, what, copies = mch_dataset(data, folder, a.limit)
        doc.update(dataset=what, copies_of_the_day=copies)
        print(f"dataset: {what} ({time.perf_counter() - started:.0f} s)")
        single = run(ds, folder / "single.h5", a.limit, ["--threads", "1"])
        doc["runs"].append(single)
        doc["single_cpu_s_per_window"] = per_window = single["cpu_s"] / a.limit
        save()
        print(f"single process, 1 thread: {single['windows_per_s']:.3f} windows/s, "
              f"{per_window:.2f} CPU s/window, peak RSS {single['peak_rss_mib']['command']} MiB "
              f"(load {single['loadavg_before'][0]:.1f})")
        guess = single["wall_s"] * sum(1 + 1 / n for n in counts)
        print(f"  the worker runs should take about {guess:.0f} s more")
        one = None
        for n in counts:
            r = run(ds, folder / f"w{n}.h5", a.limit, ["--workers", str(n)])
            r["workers"] = n
            r["same_file_as_single"] = same_file(folder / "single.h5", folder / f"w{n}.h5")
            r["speedup_vs_single"] = r["windows_per_s"] / single["windows_per_s"]
            one = r if n == 1 else one
            if one is not None:
                r["speedup_vs_1_worker"] = r["windows_per_s"] / one["windows_per_s"]
                r["efficiency_vs_1_worker"] = r["speedup_vs_1_worker"] / n
                r["speedup_vs_1_worker_after_startup"] = (
                    r["windows_per_s_after_startup"] / one["windows_per_s_after_startup"])
            doc["runs"].append(r)
            save()
            vs1 = f", {r['speedup_vs_1_worker']:.2f}x 1 worker" if one is not None else ""
            print(f"--workers {n}: {r['windows_per_s']:.3f} windows/s = "
                  f"{r['speedup_vs_single']:.2f}x single{vs1} (after a start-up of "
                  f"{r['startup_s']} s: {r['windows_per_s_after_startup']:.3f} windows/s); "
                  f"shards per worker "
                  f"{r['shards_per_worker']}, worker CPU s {r['worker_cpu_s']}, peak RSS per "
                  f"worker {r['peak_rss_mib']['workers']} MiB (parent "
                  f"{r['peak_rss_mib']['command']}); same file: {r['same_file_as_single']} "
                  f"(load {r['loadavg_before'][0]:.1f} → {r['loadavg_after'][0]:.1f})")
        doc["dask_localcluster"] = None
        if not a.no_dask:
            d = run_dask(ds, folder / "dask.h5", a.limit, max(counts))
            if d is not None:
                d["same_file_as_single"] = same_file(folder / "single.h5", folder / "dask.h5")
                d["speedup_vs_single"] = d["windows_per_s"] / single["windows_per_s"]
                doc["runs"].append(d)
                doc["dask_localcluster"] = max(counts)
                save()
                print(f"Dask LocalCluster, {max(counts)} workers: "
                      f"{d['windows_per_s']:.3f} windows/s = {d['speedup_vs_single']:.2f}x "
                      f"single; shards per worker {d['shards_per_worker']}; same file: "
                      f"{d['same_file_as_single']}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base = control(1)
    ctrl = {n: control(n) / base for n in sorted(set(counts)) if n > 1}
    doc["control_busy_loop_over_1_process"] = {str(n): v for n, v in ctrl.items()}
    print("control, busy loops, N processes / 1: "
          + ", ".join(f"{n}: {v:.2f}x" for n, v in ctrl.items())
          + " (N on N free cores)")
    doc["complete"] = True
    save()
    same = doc["all_files_identical"]
    print(f"every file identical to the single-process one: {same}; "
          f"{time.perf_counter() - started:.0f} s in all")
    save(final=True)  # prints the JSON's path: the last line
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
