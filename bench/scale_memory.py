"""Peak memory against frame count: preprocess, forecast (persistence, ROVER) and evaluate.

    python bench/scale_memory.py [--sizes 1000,5000,10000] [--size 256] [--rover-windows 100]

For each frame count N a synthetic 256×256 data set of N frames (sequences of 100 frames,
``radarcast synth --format npy``) is written, then each stage runs as its own ``radarcast``
subprocess under a small parent that reports the child's peak RSS
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``):

- preprocess   the (N/100, 100, 256, 256) .npy stack → dataset (n_in 5, n_out 15)
- persistence  ``forecast`` every window of the test split (10% of the frames)
- rover        ``forecast --method rover`` on the first ``--rover-windows`` test windows
               (all of them would take hours on CPU: a fixed count, so memory is comparable)
- evaluate     persistence live and the persistence forecast file, every test window

Flat memory means the peak does not grow with N. Prints a table; writes
bench/results/scale_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "scale_memory.json"
SEQ = 100  # frames per synthetic sequence
PEAK = """
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
if r.returncode:
    sys.stderr.write(r.stderr[-3000:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)
"""


def measure(args: list[str], cwd: Path) -> dict:
    """Run ``radarcast ARGS`` in a fresh process; its peak RSS (MiB) and wall time."""
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", PEAK, sys.executable, "-m", "radarcast", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    kib, code = r.stdout.split()
    if code != "0":
        raise SystemExit(f"radarcast {' '.join(args)} failed:\n{r.stderr}")
    return {"peak_rss_mib": round(int(kib) / 1024, 1), "seconds": round(seconds, 2)}


def stages(n: int, size: int, rover_windows: int) -> list[tuple[str, list[str]]]:
    return [
        (
            "synth",
            [
                "synth",
                "raw",
                "--format",
                "npy",
                "-n",
                str(n // SEQ),
                "--frames",
                str(SEQ),
                "--size",
                f"{size}x{size}",
                "--seed",
                "1",
            ],
        ),
        ("preprocess", ["preprocess", "raw/synth.npy", "-o", "d.h5"]),
        ("persistence", ["forecast", "d.h5", "-o", "persistence.h5"]),
        (
            "rover",
            [
                "forecast",
                "d.h5",
                "--method",
                "rover",
                "--device",
                "cpu",
                "--limit",
                str(rover_windows),
                "-o",
                "rover.h5",
            ],
        ),
        ("evaluate", ["evaluate", "d.h5", "-f", "persistence.h5", "--out", "scores"]),
    ]


def windows(folder: Path) -> int:
    from radarcast.data.store import open_dataset

    with open_dataset(folder / "d.h5") as ds:
        return int(len(ds.windows(split="test")))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,5000,10000")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--rover-windows", type=int, default=100)
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
            folder = Path(d)
            row = {"frames": n}
            for name, args in stages(n, a.size, a.rover_windows):
                row[name] = measure(args, folder)
                print(
                    f"  {n:>6} frames  {name:<12} {row[name]['peak_rss_mib']:>8.1f} MiB "
                    f"{row[name]['seconds']:>8.1f} s",
                    flush=True,
                )
            row["test_windows"] = windows(folder)
            row["dataset_mib"] = round((folder / "d.h5").stat().st_size / 2**20, 1)
            rows.append(row)
    names = [name for name, _ in stages(1, a.size, 1)]
    print(
        f"\npeak RSS (MiB) of each stage, {a.size}x{a.size} frames; "
        f"rover: first {a.rover_windows} test windows"
    )
    print(f"{'frames':>8} {'windows':>8} " + " ".join(f"{n:>12}" for n in names))
    for r in rows:
        print(
            f"{r['frames']:>8} {r['test_windows']:>8} "
            + " ".join(f"{r[n]['peak_rss_mib']:>12.1f}" for n in names)
        )
    OUT.parent.mkdir(exist_ok=True)
    doc = {
        "what": "peak RSS per stage vs frame count (each stage its own process)",
        "grid": [a.size, a.size],
        "rover_windows": a.rover_windows,
        "load_average_1_5_15_min": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "rows": rows,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
