"""The HDF5 training loader alone: windows/s with crops, augmentation and workers, next to
the training step rate it has to feed.

Makes synthetic datasets with the CLI (``radarcast synth`` + ``radarcast preprocess``) in a
temporary folder, then reads train windows (5 + 15 frames, random crop, flips, rotations)
through ``make_loader`` exactly as ``radarcast train`` does, batch 32 (16 for the 480
grid), with 0…N workers and pinned memory, including the copy to the GPU when there is
one. The step rates to compare with come from ``bench/results/train_speed.json`` (or
``--train-json``): radarcast's samples/s for the matching configuration.

    python bench/loader_speed.py [--workers 0,2,4,8] [--batches 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from _common import make_dataset, write_json  # noqa: E402  (bench/ is on sys.path when run as a script)

CASES = {
    # name: (synth grid, crop, batch, train_speed config whose rate it must beat)
    "128-grid crop 100": (128, 100, 32, "3x64"),
    "480-grid full": (480, None, 16, "shi2015-480"),
}


def windows_per_s(path: Path, crop, batch: int, workers: int, batches: int, dev) -> float:
    from radarcast.data.loader import Augment, WindowDataset, WindowSampler, make_loader, to_device
    from radarcast.data.store import open_dataset

    aug = Augment(crop=crop, flips=True, rotations=True)
    # as radarcast train: uint8 pixels through the queues on CUDA, floats made on the GPU
    ds = WindowDataset([open_dataset(path)], "train", 5, 15, aug, raw=dev.type == "cuda")
    sampler = WindowSampler(len(ds), seed=0, shuffle=True, global_batch=batch)
    pin = dev.type == "cuda"
    seen, epoch, t0 = 0, 0, None
    while seen < batches + 2:
        sampler.set_epoch(epoch)
        if len(sampler) < batch:
            raise SystemExit(f"{path}: {len(sampler)} train windows, fewer than a batch")
        for b in make_loader(ds, sampler, batch, workers, pin_memory=pin):
            b = to_device(b, dev)
            seen += 1
            if seen == 2:  # workers started and first batches out: start the clock
                if pin:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            if seen >= batches + 2:
                break
        epoch += 1
    if pin:
        torch.cuda.synchronize()
    return batches * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="0,2,4,8")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--frames", type=int, default=120, help="frames per synthetic sequence")
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--batch", type=int, default=None, help="batch (default per case)")
    ap.add_argument("--train-json", default=str(Path(__file__).parent / "results/train_speed.json"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "loader_speed.json"))
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rates = {}
    if Path(args.train_json).is_file():
        for r in json.loads(Path(args.train_json).read_text())["rows"]:
            if r["variant"] == "radarcast" and "samples_per_s" in r:
                rates[r["config"]] = r["samples_per_s"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            size, crop, batch, config = CASES[name]
            batch = args.batch or batch
            t0 = time.perf_counter()
            path = make_dataset(Path(tmp), size, args.frames, args.sequences)
            made = time.perf_counter() - t0
            for w in (int(v) for v in args.workers.split(",")):
                wps = windows_per_s(path, crop, batch, w, args.batches, dev)
                step = rates.get(config)
                rows.append({
                    "case": name, "grid": size, "crop": crop, "batch": batch, "workers": w,
                    "windows_per_s": wps, "dataset_seconds": made, "train_config": config,
                    "train_samples_per_s": step,
                    "loader_over_train": wps / step if step else None,
                })  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    print(f"{'case':18} {'workers':>7} {'windows/s':>10} {'train samp/s':>12} {'ratio':>6}")
    for r in rows:
        step = f"{r['train_samples_per_s']:12.1f}" if r["train_samples_per_s"] else "           -"
        ratio = f"{r['loader_over_train']:6.2f}" if r["loader_over_train"] else "     -"
        print(f"{r['case']:18} {r['workers']:7d} {r['windows_per_s']:10.1f} {step} {ratio}")
    payload = {
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "n_in": 5,
        "n_out": 15,
        "augment": "random crop, flips, rotations",
        "rows": rows,
    }
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
