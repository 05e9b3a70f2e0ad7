"""Data-parallel training under torchrun: samples/s, weak-scaling efficiency and loss curves.

For each N in ``--nproc`` that this machine has GPUs for, runs
``torchrun --standalone --nproc-per-node=N -m radarcast train`` with a fixed per-GPU batch
(global batch N·b), reads samples/s from its metrics.jsonl (median over the steps after
``--skip`` warm-up steps) and compares its loss curve with a single-process run
(``python -m radarcast train``) of the same global batch and seed: the sampler hands out
the same global batches in both, so the curves should agree to bf16 rounding. N without
enough GPUs is recorded as not run. NVLink multicast stays off (NCCL_NVLS_ENABLE=0).

    python bench/ddp_scaling.py [--nproc 1,2,4,8] [--cases 3x64,shi2015-480] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from _common import make_dataset, write_json  # noqa: E402  (bench/ is on sys.path when run as a script)

CASES = {
    # name: (synth grid, crop, per-GPU batch, model config TOML)
    "3x64": (128, 100, 32, 'model = "convlstm"\n\n[model_config]\nhidden = [64, 64, 64]\n'),
    "shi2015-480": (480, 480, 16, 'preset = "shi2015"\n'),
}


def train(data: Path, case: str, nproc: int | None, global_batch: int, args, folder: Path):
    """One training run; nproc None is the plain single process. → (records, log tail)."""
    size, crop, _, toml = CASES[case]
    cfg = folder / f"{case}.toml"
    cfg.write_text(
        toml.replace("\n\n[", "\nval_windows = 32\npatience = 0\nwarmup_steps = 10\n\n[", 1)
        if "[" in toml
        else toml + "val_windows = 32\npatience = 0\nwarmup_steps = 10\n"
    )
    out = folder / f"{case}-{nproc or 'single'}-{global_batch}"
    head = [sys.executable, "-m", "radarcast"]
    if nproc is not None:
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={nproc}", "-m", "radarcast"]  # fmt: skip
    cmd = [
        *head, "train", str(data), "--config", str(cfg), "--out", str(out),
        "--crop", str(crop), "--batch-size", str(global_batch), "--steps", str(args.steps),
        "--val-every", str(args.steps), "--workers", str(args.workers), "--n-in", "5",
        "--n-out", "15", "--seed", "0", "--device", args.device, "--no-augment",
    ]  # fmt: skip
    env = {**os.environ, "NCCL_NVLS_ENABLE": "0", "OMP_NUM_THREADS": "2"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    if r.returncode != 0:
        return None, (r.stdout + r.stderr)[-1500:]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(v) for v in lines], ""


def summarise(recs: list[dict], skip: int) -> tuple[float, list[float]]:
    steps = [r for r in recs if r.get("event") == "step"]
    rate = statistics.median(r["samples_per_s"] for r in steps[skip:])
    return rate, [r["loss"] for r in steps]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nproc", default="1,2,4,8")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--skip", type=int, default=10, help="warm-up steps left out of the rate")
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=None, help="per-GPU batch (default per case)")
    ap.add_argument("--size", type=int, default=None, help="synthetic grid (default per case)")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ddp_scaling.json"))
    args = ap.parse_args()
    gpus = torch.cuda.device_count() if args.device == "cuda" else 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for case in args.cases.split(","):
            size, crop, batch, toml = CASES[case]
            size, batch = args.size or size, args.batch or batch
            CASES[case] = (size, min(crop, size), batch, toml)
            data = make_dataset(folder, size, args.frames, args.sequences)
            base = None
            for n in (int(v) for v in args.nproc.split(",")):
                row = {"case": case, "nproc": n, "per_gpu_batch": batch, "global_batch": n * batch}
                rows.append(row)
                if n > gpus:
                    row["status"] = f"not run (no machine with {n} GPUs lent)"
                    continue
                recs, err = train(data, case, n, n * batch, args, folder)
                one, err1 = train(data, case, None, n * batch, args, folder)
                if recs is None or one is None:
                    row["status"] = "failed: " + (err or err1)
                    continue
                rate, curve = summarise(recs, args.skip)
                _, curve1 = summarise(one, args.skip)
                base = base or (rate if n == 1 else None)
                diff = max(
                    abs(a - b) / max(abs(b), 1e-12) for a, b in zip(curve, curve1, strict=True)
                )
                row.update(status="ok", samples_per_s=rate, loss_curve=curve,
                           single_process_loss_curve=curve1, max_rel_loss_diff=diff,
                           weak_scaling_efficiency=rate / (n * base) if base else None)  # fmt: skip
                print(json.dumps({k: v for k, v in row.items() if "curve" not in k}), flush=True)
    print(f"{'case':12} {'N':>2} {'global':>6} {'samp/s':>8} {'eff':>5} {'Δloss':>8}  status")
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['case']:12} {r['nproc']:2d} {r['global_batch']:6d} {'':8} {'':5} {'':8}  "
                  f"{r['status'][:70]}")  # fmt: skip
            continue
        eff = r["weak_scaling_efficiency"]
        eff = f"{eff:5.2f}" if eff else "    -"
        print(f"{r['case']:12} {r['nproc']:2d} {r['global_batch']:6d} {r['samples_per_s']:8.1f} "
              f"{eff} {r['max_rel_loss_diff']:8.2e}  ok")  # fmt: skip
    payload = {
        "device": torch.cuda.get_device_name(0) if gpus and args.device == "cuda" else "cpu",
        "gpus": gpus,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "steps": args.steps,
        "rate_skips_steps": args.skip,
        "nccl_nvls_enable": "0",
        "rows": rows,
    }
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
