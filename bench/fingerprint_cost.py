"""What a dataset's content fingerprint costs: time to fingerprint a synthetic dataset
(streamed, as for a dataset written before fingerprints) side by side with one plain read of
its frames, and the same dataset's preprocess time. Reports MB/s of frame data and ratios.

    python bench/fingerprint_cost.py [--size 512] [--frames 200] [--sequences 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from bench._common import make_dataset, write_json


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    from radarcast.data.dataset import content_fingerprint

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="bench/results/fingerprint_cost.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        path = make_dataset(Path(tmp), a.size, a.frames, a.sequences)
        make_s = time.perf_counter() - t
        with h5py.File(path) as f:
            n_bytes = f["frames"].size + f["mask"].size
            stored = f.attrs.get("content_fingerprint")

            def read_only():
                d = f["frames"]
                step = max(1, 2**26 // (d.shape[1] * d.shape[2]))
                for i in range(0, d.shape[0], step):
                    np.ascontiguousarray(d[i : i + step])

            read_s = _best(read_only, a.repeats)
            fp_s = _best(lambda: content_fingerprint(f), a.repeats)
            assert content_fingerprint(f) == stored
        mb = n_bytes / 1e6
        result = {
            "dataset": {"frames": a.frames * a.sequences, "size": a.size, "MB_uncompressed": mb,
                        "MB_file": path.stat().st_size / 1e6},
            "synth_plus_preprocess_s": make_s,
            "read_frames_s": read_s, "fingerprint_s": fp_s,
            "fingerprint_MB_per_s": mb / fp_s, "read_MB_per_s": mb / read_s,
            "fingerprint_over_read": fp_s / read_s,
            "load": os.getloadavg(),
        }
    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()})
    write_json(a.out, result)


if __name__ == "__main__":
    main()
