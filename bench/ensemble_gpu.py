"""The ROVER ensemble on CUDA against the same on CPU: same statistics, and how fast.

A synthetic rain field (a red-spectrum random field, 40% wet, moved 2 px east and 1 px
south per step) gives 3 inputs and 12 truth frames. Both devices make 20 members with the
same config; their random numbers differ (torch's CPU and CUDA generators), so they are
compared in distribution: wet fraction, mean, ensemble spread per lead, CRPS and rank
flatness against the truth. Then CUDA alone is timed on the OPERA-sized grid (2200×1900).

    python bench/ensemble_gpu.py [--out bench/results/ensemble_gpu.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from radarcast.baselines.ensemble_config import EnsembleConfig
from radarcast.baselines.rover_ensemble import forecast_window
from radarcast.verification.ensemble import EnsembleAccumulator

N_OUT, MEMBERS, THR = 12, 20, (60.0, 120.0, 160.0)


def synthetic(h: int, w: int, frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = np.fft.rfft2(rng.normal(size=(h, w)))
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    field = np.fft.irfft2(k / (1e-3 + np.hypot(fy, fx)) ** 1.6, s=(h, w))
    field = (field - field.mean()) / field.std()
    px = np.where(field > 0.25, np.clip(100 + 50 * field, 0, 255), 0.0)
    return np.stack([np.roll(px, (i, 2 * i), axis=(0, 1)) for i in range(frames)]).astype(
        np.float32
    )


def stats(ens: np.ndarray, truth: np.ndarray, seconds: float) -> dict:
    acc = EnsembleAccumulator(N_OUT, MEMBERS, THR, rank_min=THR[0])
    for lead in range(N_OUT):
        acc.add(lead, ens[:, lead], truth[lead], rng=np.random.default_rng(lead))
    return {
        "seconds": seconds,
        "wet_fraction_per_lead": (ens >= THR[0]).mean(axis=(0, 2, 3)).tolist(),
        "mean_per_lead": ens.mean(axis=(0, 2, 3)).tolist(),
        "spread_per_lead": ens.std(axis=0).mean(axis=(1, 2)).tolist(),
        "crps_pixel_per_lead": acc.crps(value_unit=False).tolist(),
        "rank_flatness": acc.rank_flatness(),
    }


def run(x, device: str, cfg: EnsembleConfig) -> tuple[np.ndarray, float]:
    forecast_window(x, 2, EnsembleConfig(members=2), device=device)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = forecast_window(x, N_OUT, cfg, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ensemble_gpu.json"))
    ap.add_argument("--size", default="512x512")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    frames = synthetic(h, w, 3 + N_OUT)
    x, truth = frames[:3], frames[3:]
    cfg = EnsembleConfig(members=MEMBERS, seed=3)
    res = {"grid": [h, w], "members": MEMBERS, "leads": N_OUT, "thresholds_pixel": THR}
    for dev in ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",):
        out, dt = run(x, dev, cfg)
        res[dev] = stats(out, truth, dt)
    if "cuda" in res:
        c, g = res["cpu"], res["cuda"]
        res["max_abs_difference"] = {
            k: float(np.max(np.abs(np.subtract(c[k], g[k]))))
            for k in ("wet_fraction_per_lead", "mean_per_lead", "spread_per_lead",
                      "crps_pixel_per_lead")
        }  # fmt: skip
        res["cuda_speedup_vs_cpu"] = c["seconds"] / g["seconds"]
        big = synthetic(2200, 1900, 3)
        _, dt = run(big, "cuda", cfg)
        res["cuda_opera_grid_seconds"] = dt
        res["cuda_peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        res["device"] = torch.cuda.get_device_name()
    res["cpu_threads"] = torch.get_num_threads()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
