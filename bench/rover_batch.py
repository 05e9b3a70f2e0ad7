"""ROVER's batched mode: windows per second over a whole split of a synthetic dataset.

Builds a synthetic dataset (moving, rotating Gaussian storm cells on a 256x256 grid, HKO
units, 5-min steps) in a temporary folder, then runs ``write_forecast`` with ROVER over every
test window on the CPU (torch threads as given) and, when ``torch.cuda.is_available()``, on
CUDA; persistence over the same windows as a reference for the I/O cost. Prints a table and
writes JSON under bench/results/.

    python bench/rover_batch.py [--frames 1000] [--size 256] [--n-out 12] [--batch-size B]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_json  # noqa: E402  (bench/ is on sys.path when run as a script)


def synthetic(path: Path, n_frames: int, size: int) -> None:
    """A dataset of drifting, rotating storm cells (no dependency on radarcast.data.synthetic)."""
    from radarcast.data.store import DatasetWriter
    from radarcast.data.units import Units

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cells = rng.uniform([0, 0, 6, 120], [size, size, 20, 230], size=(12, 4))  # x, y, σ, peak
    u, v, omega, c = 1.2, 0.6, 0.004, size / 2
    with DatasetWriter(path, units=Units(), timestep_s=300, n_in=3, n_out=12, command="bench") as w:
        for i in range(n_frames):
            frame = np.zeros((size, size), np.float32)
            for x0, y0, s, peak in cells:
                ang = omega * i
                x = c + (x0 - c) * np.cos(ang) - (y0 - c) * np.sin(ang) + u * i
                y = c + (x0 - c) * np.sin(ang) + (y0 - c) * np.cos(ang) + v * i
                frame += peak * np.exp(
                    -(((xx - x % size) ** 2 + (yy - y % size) ** 2) / (2 * s * s))
                )
            w.append(np.clip(frame, 0, 255).astype(np.uint8), 1_600_000_000 + 300 * i)
        w.finish()


def run(ds, spec: str, options: dict, out: Path, n_out: int, batch_size: int | None) -> dict:
    from radarcast.forecasters import resolve, write_forecast

    fc = resolve(spec, ds, n_in=3, n_out=n_out, options=options)
    t0 = time.perf_counter()
    write_forecast(ds, fc, out, split="test", n_in=3, batch_size=batch_size, overwrite=True)
    seconds = time.perf_counter() - t0
    n = len(ds.windows(3, n_out, "test"))
    return {
        "method": spec,
        "device": options.get("device", "cpu"),
        "batch_size": batch_size or fc.batch_size,
        "windows": n,
        "seconds": seconds,
        "windows_per_s": n / seconds,
    }


def main() -> None:
    import torch

    from radarcast.data.store import open_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--n-out", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=None)
    # half the cores: on a small shared machine 2 threads on 2 busy cores thrash
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "rover_batch.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "synthetic.h5"
        synthetic(data, args.frames, args.size)
        with open_dataset(data) as ds:
            out = Path(tmp) / "f.h5"
            rows.append(run(ds, "persistence", {}, out, args.n_out, args.batch_size))
            rows.append(run(ds, "rover", {"device": "cpu"}, out, args.n_out, args.batch_size))
            if torch.cuda.is_available():
                run(ds, "rover", {"device": "cuda"}, out, args.n_out, 2)  # warm-up
                rows.append(run(ds, "rover", {"device": "cuda"}, out, args.n_out, args.batch_size))
    print(
        f"{'method':12} {'device':6} {'batch':>5} {'windows':>7} {'seconds':>8} {'windows/s':>10}"
    )
    for r in rows:
        print(
            f"{r['method']:12} {r['device']:6} {r['batch_size']:5d} {r['windows']:7d} "
            f"{r['seconds']:8.2f} {r['windows_per_s']:10.1f}"
        )
    payload = {
        "grid": [args.size, args.size],
        "n_in": 3,
        "n_out": args.n_out,
        "frames": args.frames,
        "torch_threads": args.threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "rows": rows,
    }
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
