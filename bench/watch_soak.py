"""A simulated day of live nowcasts: 288 five-minute radar files into `nowcast --watch`.

The 125 MeteoSwiss AQC GIFs of 2015-05-15 (../shared/data/pysteps-data/radar/mch) are
cycled with new, consecutive 5-minute times in their names (a day from 2024-06-01 00:00
UTC) and written atomically into a watched folder (copied under a ``.part`` name, then
renamed), with ``radarcast nowcast --watch`` (ROVER, 12 leads, CF-netCDF out) running as a
subprocess. The pace is closed-loop by default: each file once the previous one's nowcast
is out (``--interval S`` instead writes one every S seconds, which must stay above the
latency). Every ``--bad-every`` files a corrupt GIF is also dropped in, at a time between
two frames: it must be logged and skipped without costing a good file its nowcast.

The watcher's RSS (/proc/PID/status VmRSS) is sampled every second and at each nowcast;
reported: RSS after file 10, 100, 200 and 288, the slope of RSS over files 20..288 (least
squares, MiB per 100 files), outputs against good inputs, time per file, and at the end a
SIGTERM that must end the process (exit 0, "stopped after") within ``--stop-limit`` s.

    python bench/watch_soak.py [--files 288] [--downsample 1] [--out bench/results/watch_soak.json]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _common import rss_mib, write_json

_ROOTS = (Path(__file__).resolve().parents[1].parent, Path("/work"))  # checkout's parent; /work
DATA = next((r / "shared" / "data" for r in _ROOTS if (r / "shared" / "data").is_dir()), _ROOTS[0])
SOURCE = DATA / "pysteps-data" / "radar" / "mch" / "20150515"
PATTERN = "AQC%y%j%H%M?_"
T0 = datetime(2024, 6, 1, tzinfo=timezone.utc)


def name_at(t: datetime) -> str:
    return f"AQC{t:%y%j%H%M}F_00005.801.gif"


def put(src: Path | bytes, dest: Path) -> None:
    """Atomically: write under a .part name, then rename (a sender's usual way)."""
    part = dest.with_name(dest.name + ".part")
    if isinstance(src, bytes):
        part.write_bytes(src)
    else:
        shutil.copyfile(src, part)
    os.replace(part, dest)


def slope_per_100(xs: list[int], ys: list[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return 100 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=288)
    ap.add_argument("--interval", type=float, default=0.0, help="0: closed loop")
    ap.add_argument("--downsample", type=int, default=1, help="smaller grid if too slow")
    ap.add_argument("--bad-every", type=int, default=72)
    ap.add_argument("--per-file-limit", type=float, default=180.0)
    ap.add_argument("--stop-limit", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=0.3)
    ap.add_argument("--out", default="bench/results/watch_soak.json")
    args = ap.parse_args()
    sources = sorted(SOURCE.glob("AQC*.gif"))
    if not sources:
        raise SystemExit(f"real radar data not present at {SOURCE}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        inbox, out = Path(tmp) / "inbox", Path(tmp) / "out"
        inbox.mkdir()
        out.mkdir()
        step = timedelta(minutes=5)
        for k in range(3):  # the frames before the day: the first nowcast needs 3
            put(sources[k], inbox / name_at(T0 + (k - 3) * step))
        log_path = Path(tmp) / "watch.log"
        cmd = [sys.executable, "-m", "radarcast", "nowcast", "--watch", str(inbox),
               "--pattern", "AQC*.gif", "--out-dir", str(out), "--out-format", "nc",
               "--format", "pysteps:mch_gif", "--time-pattern", PATTERN, "--method", "rover",
               "--leads", "12", "--downsample", str(args.downsample),
               "--settle", str(args.settle), "--poll", "0.05"]  # fmt: skip
        log = log_path.open("w")
        t_start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        samples: list[tuple[float, float]] = []
        halt = threading.Event()

        def sampler() -> None:
            while not halt.is_set():
                r = rss_mib(proc.pid)
                if r is not None:
                    samples.append((time.perf_counter() - t_start, r))
                halt.wait(1.0)

        threading.Thread(target=sampler, daemon=True).start()

        def wait_outputs(n: int, limit: float) -> float:
            t0 = time.perf_counter()
            while len(list(out.glob("nowcast_*.nc"))) < n:
                if proc.poll() is not None:
                    raise SystemExit(f"watch ended early: {log_path.read_text()[-2000:]}")
                if time.perf_counter() - t0 > limit:
                    raise SystemExit(f"no nowcast {n} within {limit} s: "
                                     f"{log_path.read_text()[-2000:]}")  # fmt: skip
                time.sleep(0.01)
            return time.perf_counter() - t0

        first = wait_outputs(1, args.per_file_limit)  # start-up + the newest pre-day frame
        per_file, rss_at, bad = [], {}, 0
        t_day = time.perf_counter()
        for i in range(args.files):
            if args.bad_every and i and i % args.bad_every == 0:
                put(b"GIF89a not really", inbox / name_at(T0 + i * step - timedelta(minutes=2)))
                bad += 1
            t_put = time.perf_counter()
            put(sources[(3 + i) % len(sources)], inbox / name_at(T0 + i * step))
            if args.interval:
                time.sleep(max(0.0, t_put + args.interval - time.perf_counter()))
                continue
            per_file.append(wait_outputs(2 + i, args.per_file_limit))
            rss_at[i + 1] = rss_mib(proc.pid)
        if args.interval:  # open loop: wait for the backlog, then count
            wait_outputs(1 + args.files, args.per_file_limit * 3)
        day_s = time.perf_counter() - t_day
        rss_end = rss_mib(proc.pid)
        t_term = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(args.stop_limit)
            stop_s = time.perf_counter() - t_term
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc, stop_s = None, None
        halt.set()
        log.close()
        text = log_path.read_text()
        outputs = sorted(p.name for p in out.iterdir())
    expected = 1 + args.files
    nowcasts = [n for n in outputs if n.startswith("nowcast_") and n.endswith(".nc")]
    result = {
        "cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "note": "shared machine: other jobs ran at the same time; see loadavg",
        "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
        "grid": f"MeteoSwiss 640x710 / {args.downsample}", "files": args.files,
        "pace": "closed loop" if not args.interval else f"every {args.interval} s",
        "bad_files": bad, "first_nowcast_s": first, "day_s": day_s,
        "outputs": len(nowcasts), "expected_outputs": expected,
        "other_files_in_out": [n for n in outputs if n not in nowcasts],
        "skipped_logged": text.count(" skip "),
        "stop": {"rc": rc, "seconds": stop_s, "clean": rc == 0 and "stopped after" in text},
        "rss_end_mib": rss_end, "rss_samples_1s": [[round(t, 1), r] for t, r in samples],
    }  # fmt: skip
    if per_file:
        xs = [k for k in sorted(rss_at) if k >= min(20, args.files // 2) and rss_at[k] is not None]
        result.update({
            "rss_at_file_mib": {k: rss_at.get(k) for k in (10, 100, 200, args.files)},
            "rss_slope_mib_per_100_files": slope_per_100(xs, [rss_at[k] for k in xs]),
            "rss_max_mib": max(r for _, r in samples),
            "per_file_s": {"median": statistics.median(per_file),
                           "p95": sorted(per_file)[int(0.95 * (len(per_file) - 1))],
                           "max": max(per_file), "all": [round(s, 3) for s in per_file]},
        })  # fmt: skip
    step_re = re.compile(r"(read|setup|forecast|write) ([\d.]+) s")
    steps = [{k: float(v) for k, v in step_re.findall(line)}
             for line in text.splitlines() if " done " in line]  # fmt: skip
    steps = [d for d in steps if d]
    if len(steps) >= 20:  # does a nowcast get slower as the folder fills? first vs last 50
        part = min(50, len(steps) // 2)
        result["steps_median_s"] = {
            f"{name} {part}": {k: statistics.median(d[k] for d in chunk) for k in chunk[0]}
            for name, chunk in (("first", steps[:part]), ("last", steps[-part:]))
        }
    write_json(args.out, result)
    short = {k: v for k, v in result.items() if k not in ("rss_samples_1s", "per_file_s")}
    print(short, {k: v for k, v in result.get("per_file_s", {}).items() if k != "all"})
    ok = len(nowcasts) == expected and result["stop"]["clean"] and not result["other_files_in_out"]
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
