"""ROVER vs pysteps Lucas–Kanade vs persistence on real radar data: skill and speed.

Data: /work/shared/data/pysteps-data (pySTEPS/pysteps-data), MeteoSwiss AQC composites
(8-bit palette GIF, dBZ = 0.5·DN − 35.75, Z = 316 R^1.5) and FMI lowest-CAPPI composites
(PGM.gz, dBZ = 0.5·DN − 32, Z = 223 R^1.53); DN 255 is missing. Native grids, 5-min steps,
3 input frames, 12 leads, a start every 30 min. All three methods run in the same process.

Scoring: CSI at 0.5/2/5/10 mm/h, contingency counts pooled over all nowcasts per lead, then
the mean over the 12 leads. A pixel is scored where the observation is valid and every
method's forecast is finite (pysteps marks inflow from outside the domain as NaN), so all
methods are scored on the same pixels.

Timing: wall seconds per nowcast (motion + 12 leads), one window at a time, for ROVER
(torch, CPU) and pysteps (LK motion + semi-Lagrangian extrapolation).

    python bench/rover_skill_speed.py [--rover key=value ...] [--sources mch,fmi]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _common import write_json  # noqa: E402  (bench/ is on sys.path when run as a script)
from PIL import Image

from radarcast import metrics
from radarcast.baselines.rover import RoverConfig, forecast_torch
from radarcast.config import from_dict, to_dict
from radarcast.data.units import Units

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pysteps-data" / "radar"
THRESHOLDS = (0.5, 2.0, 5.0, 10.0)
N_IN, N_OUT, EVERY = 3, 12, 6
# (units, files, factor to mm/h): MeteoSwiss AQC is a 5-min accumulation; the README's
# decoding reproduces pysteps' mch_gif values in mm, so ×12 gives mm/h (pysteps' to_rainrate).
SOURCES = {
    "mch": (Units(dbz_gain=0.5, dbz_offset=-35.75, zr_a=316.0, zr_b=1.5), "mch/*/*.gif", 12.0),
    "fmi": (
        Units(dbz_gain=0.5, dbz_offset=-32.0, zr_a=223.0, zr_b=1.53),
        "fmi/pgm/*/*.pgm.gz",
        1.0,
    ),
}


def read_dn(path: Path) -> np.ndarray:
    """One file → (H, W) float32 DN with NaN where DN is 255 (missing)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        dn = np.array(Image.open(fh))  # palette index for the GIFs, grey level for PGM
    out = dn.astype(np.float32)
    out[dn == 255] = np.nan
    return out


def events(pattern: str) -> dict[str, list[Path]]:
    files = sorted(DATA.glob(pattern))
    out: dict[str, list[Path]] = {}
    for f in files:
        out.setdefault(f.parent.name, []).append(f)
    return out


def counts(pred_rain: np.ndarray, obs_rain: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(n_lead, n_thr, 3) hits, misses, false alarms over valid pixels (radarcast.metrics)."""
    c = metrics.contingency_counts(pred_rain[None], obs_rain[None], THRESHOLDS, valid[None])
    return c[..., :3]


def mean_csi(c: np.ndarray) -> list[float]:
    """CSI per threshold, averaged over leads, from (n_lead, n_thr, 3) counts."""
    cells = np.concatenate([c, np.zeros_like(c[..., :1])], axis=-1)  # correct negatives unused
    return [float(v) for v in metrics.nanmean(metrics.csi(cells), axis=0)]


def run_lk(x_rain: np.ndarray):
    """pysteps LK on dB-transformed rain (as in pysteps' examples) + SL extrapolation."""
    from pysteps import extrapolation, motion
    from pysteps.utils import transformation

    t0 = time.perf_counter()
    db, _ = transformation.dB_transform(x_rain, threshold=0.1, zerovalue=-15.0)
    db[~np.isfinite(db)] = -15.0
    velocity = motion.get_method("LK")(db)
    out = extrapolation.get_method("semilagrangian")(
        x_rain[-1], velocity, N_OUT, allow_nonfinite_values=True
    )
    return out, time.perf_counter() - t0


def run_rover(torch, x_dn: np.ndarray, cfg: RoverConfig, units: Units):
    t0 = time.perf_counter()
    t = torch.from_numpy(x_dn[None])
    out = forecast_torch(t, N_OUT, cfg, units)[0].numpy()
    return out, time.perf_counter() - t0


def cached_lk(cache: Path | None, key: str, rain_x: np.ndarray):
    """LK forecast, read from ``cache`` when present (tuning runs only; timing then NaN)."""
    if cache is None:
        return run_lk(rain_x)
    path = cache / f"{key}.npy"
    if path.exists():
        return np.load(path), float("nan")
    out, dt = run_lk(rain_x)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out.astype(np.float32))
    return out, dt


def bench_source(name: str, cfg: RoverConfig, torch, cache: Path | None = None) -> dict:
    units, pattern, factor = SOURCES[name]
    acc = {m: 0 for m in ("rover", "lk", "persistence")}
    times: dict[str, list[float]] = {"rover": [], "lk": []}
    n = 0
    for event, files in events(pattern).items():
        frames = np.stack([read_dn(f) for f in files])  # (T, H, W) DN, NaN missing
        for s in range(0, len(frames) - N_IN - N_OUT + 1, EVERY):
            x, y = frames[s : s + N_IN], frames[s + N_IN : s + N_IN + N_OUT]
            rain_x = factor * units.pixel_to_rain(x)
            obs = factor * units.pixel_to_rain(y)
            rover, dt = run_rover(torch, x, cfg, units)
            times["rover"].append(dt)
            lk, dt = cached_lk(cache, f"{name}_{event}_{s}", rain_x)
            times["lk"].append(dt)
            preds = {
                "rover": factor * units.pixel_to_rain(rover),
                "lk": lk,
                "persistence": np.repeat(rain_x[-1:], N_OUT, axis=0),
            }
            valid = np.isfinite(obs)
            for p in preds.values():
                valid &= np.isfinite(p)
            for m, p in preds.items():
                acc[m] = acc[m] + counts(np.nan_to_num(p), np.nan_to_num(obs), valid)
            n += 1
    res = {
        "nowcasts": n,
        "grid": list(frames.shape[1:]),
        "csi": {m: mean_csi(c) for m, c in acc.items()},
    }
    res["seconds_per_nowcast"] = {m: float(np.nanmedian(v)) for m, v in times.items()}
    res["speedup"] = res["seconds_per_nowcast"]["lk"] / res["seconds_per_nowcast"]["rover"]
    res["counts"] = {m: c.tolist() for m, c in acc.items()}
    return res


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rover", nargs="*", default=[], help="RoverConfig overrides key=value")
    ap.add_argument("--sources", default="mch,fmi")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for ROVER")
    ap.add_argument("--lk-cache", type=Path, default=None, help="reuse LK forecasts (tuning only)")
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "rover_skill_speed.json")
    )
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"real radar data not present at {DATA}")
    import torch

    torch.set_num_threads(args.threads)  # 1 by default: 2 threads on 2 shared cores thrash

    cfg = from_dict(RoverConfig, parse_overrides(args.rover), "rover")
    results = {}
    header = (
        f"{'source':6} {'method':12} "
        + " ".join(f"CSI≥{t:<5g}" for t in THRESHOLDS)
        + "  s/nowcast"
    )
    print(header)
    for name in args.sources.split(","):
        r = bench_source(name, cfg, torch, args.lk_cache)
        results[name] = r
        for m, csi in r["csi"].items():
            sec = r["seconds_per_nowcast"].get(m)
            print(
                f"{name:6} {m:12} "
                + " ".join(f"{v:9.3f}" for v in csi)
                + (f"  {sec:9.3f}" if sec else "")
            )
        print(f"{name:6} speed-up ROVER vs LK: {r['speedup']:.1f}x over {r['nowcasts']} nowcasts")
    payload = {
        "rover_config": to_dict(cfg),
        "thresholds_mmh": THRESHOLDS,
        "n_in": N_IN,
        "n_out": N_OUT,
        "start_every_frames": EVERY,
        "scoring": "CSI per lead from pooled counts, mean over 12 leads; "
        "pixels valid in obs and all forecasts",
        "timing": "median wall seconds per nowcast (motion + 12 leads), one window at a time",
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "results": results,
    }
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
