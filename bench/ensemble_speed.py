"""radarcast's ROVER ensemble vs pysteps STEPS on real radar data: speed, skill, memory.

Data: /work/shared/data/pysteps-data (pySTEPS/pysteps-data): MeteoSwiss AQC composites and
FMI lowest-CAPPI composites (decoded as in bench/rover_skill_speed.py), one window in the
middle of each event; OPERA (2200×1900, ODIM HDF5 rain rate) for peak memory only.

Both ensembles: 20 members, 3 input frames, 12 leads of 5 min, in the same process, one
window at a time, on ``--threads`` CPU threads. radarcast: ROVER motion + spectral AR(2)
noise + CDF matching + bps motion perturbations (radarcast.baselines.rover_ensemble).
pysteps: Lucas–Kanade motion on dB rain, then ``nowcasts.get_method("steps")`` with its
defaults (6 cascade levels, nonparametric noise, bps, incremental mask, CDF matching) and
``precip_thr`` −10 dB (0.1 mm/h); rain as pysteps' examples prepare it
(dB_transform threshold 0.1 mm/h, zerovalue −15 dB).

Scores (radarcast.verification, pooled over windows per lead, pixels where the observation
and every member of both ensembles are finite): CRPS in mm/h, Brier score and reliability at
0.5/2/5/10 mm/h, ROC area, rank-histogram flatness (0 flat … 1 all in one bin; values below
0.1 mm/h tie), spread–skill. FSS scoring speed: radarcast's FSSAccumulator against pysteps'
``spatialscores.fss`` on the same fields (ensemble-mean forecasts of every lead, 4
thresholds × scales 1, 2, 4, 8, 16, 32). Peak RSS: a child process streams 20 members × 12
leads on the OPERA grid into an HDF5 ensemble file with radarcast's ForecastWriter layout.

    python bench/ensemble_speed.py [--sources mch,fmi] [--threads 1] [--skip-opera]
                                   [--windows middle|start,end]

``--windows start,end`` scores the windows at the start and end of each event instead of
the middle one on which the ensemble's defaults were chosen (out of sample).

``--sources ''`` runs the OPERA memory child alone and merges its entry (and an
``opera_memory_measured_at`` note) into the existing ``--out`` file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rover_skill_speed as rss  # noqa: E402
from _common import write_json  # noqa: E402  (bench/ is on sys.path when run as a script)

from radarcast.baselines.ensemble_config import EnsembleConfig
from radarcast.baselines.rover_ensemble import forecast_window
from radarcast.data.units import PRESETS
from radarcast.verification.ensemble import EnsembleAccumulator
from radarcast.verification.spatial import DEFAULT_SCALES, FSSAccumulator

_REPO = Path(__file__).resolve().parents[1]
DATA = next(
    (p / "shared" / "data" / "pysteps-data" / "radar" for p in (_REPO.parent, _REPO.parent.parent)
     if (p / "shared" / "data").exists()),
    _REPO.parent / "shared" / "data" / "pysteps-data" / "radar",
)  # fmt: skip
rss.DATA = DATA
THRESHOLDS = (0.5, 2.0, 5.0, 10.0)
N_IN, N_OUT, MEMBERS = 3, 12, 20


def run_radarcast(x_dn, units, factor, threads):
    t0 = time.perf_counter()
    cfg = EnsembleConfig(members=MEMBERS, seed=1, pixel_km=1.0, timestep_min=5.0)
    out = forecast_window(x_dn, N_OUT, cfg, units=units)  # (M, L, H, W) pixels
    dt = time.perf_counter() - t0
    return factor * units.pixel_to_rain(out).astype(np.float32), dt


def run_steps(x_rain):
    from pysteps import motion, nowcasts
    from pysteps.utils import transformation

    t0 = time.perf_counter()
    db, meta = transformation.dB_transform(x_rain, threshold=0.1, zerovalue=-15.0)
    db[~np.isfinite(db)] = -15.0
    velocity = motion.get_method("LK")(db)
    fc = nowcasts.get_method("steps")(
        db, velocity, N_OUT, n_ens_members=MEMBERS, precip_thr=-10.0, kmperpixel=1.0,
        timestep=5, seed=1,
    )  # fmt: skip
    rain, _ = transformation.dB_transform(fc, meta, threshold=-10.0, inverse=True)
    return rain.astype(np.float32), time.perf_counter() - t0


def reliability_error(acc: EnsembleAccumulator) -> list[float]:
    """Per threshold, Σ_b n_b (p̄_b − ō_b)² / N over all leads: the Brier score's
    reliability term (0 = perfectly reliable), from the 10-bin diagram."""
    p, o, n = acc.reliability(10, 1)
    term = np.nansum(n * (p - o) ** 2, axis=(0, 2))
    return (term / n.sum(axis=(0, 2))).tolist()


def summary(acc: EnsembleAccumulator) -> dict:
    return {
        "crps_mmh_mean_over_leads": float(np.mean(acc.crps())),
        "crps_mmh_per_lead": acc.crps().tolist(),
        "brier_mean_over_leads": acc.brier().mean(axis=0).tolist(),
        "reliability_error": reliability_error(acc),
        "roc_area_mean_over_leads": acc.roc()[2].mean(axis=0).tolist(),
        "rank_flatness": acc.rank_flatness(),
        "rank_histogram_pooled": acc.ranks.sum(axis=0).tolist(),
        "spread_skill_mean_over_leads": float(np.nanmean(acc.spread_skill())),
    }


def fss_speed(fields: np.ndarray, obs: np.ndarray) -> dict:
    """Seconds to score (L, H, W) forecasts with both FSS implementations."""
    from pysteps.verification.spatialscores import fss_accum, fss_compute, fss_init

    obs = np.where(np.isfinite(obs), obs, np.nan).astype(np.float32)
    t0 = time.perf_counter()
    acc = FSSAccumulator(len(fields), THRESHOLDS, DEFAULT_SCALES, obs.shape[1:])
    for lead in range(len(fields)):
        acc.add(lead, fields[lead], obs[lead])
    ours = acc.fss()
    t1 = time.perf_counter()
    theirs = np.zeros_like(ours)
    for lead in range(len(fields)):
        for j, t in enumerate(THRESHOLDS):
            for k, s in enumerate(DEFAULT_SCALES):
                o = fss_init(t, s)
                fss_accum(o, fields[lead], obs[lead])
                theirs[lead, j, k] = fss_compute(o)
    t2 = time.perf_counter()
    agree = np.nanmax(np.abs(ours - theirs))
    return {"radarcast_s": t1 - t0, "pysteps_s": t2 - t1, "speedup": (t2 - t1) / (t1 - t0),
            "max_abs_difference": float(agree)}  # fmt: skip


WINDOWS = {"start": 0.0, "middle": 0.5, "end": 1.0}
"""Where in each event a window starts, as a fraction of the latest possible start. The
defaults were chosen on the middle windows; the start and end windows' observed frames do
not overlap the middle ones' (40-frame events, 15-frame windows): an out-of-sample check."""


def window_starts(n_frames: int, positions: list[str]) -> list[int]:
    last = n_frames - N_IN - N_OUT
    return [round(WINDOWS[p] * last) if p != "middle" else last // 2 for p in positions]


def bench_source(name: str, threads: int, positions: tuple[str, ...] = ("middle",)) -> dict:
    # radarcast's own scale for the product (radarcast.data.units.PRESETS), whose rain rates
    # are mm/h: rover_skill_speed's MeteoSwiss scale gives mm per 5 min (× 12 afterwards),
    # which put the ensemble's rain threshold at 1.2 mm/h instead of 0.1 (session 6, #18).
    _, pattern, _ = rss.SOURCES[name]
    units, factor = PRESETS[name], 1.0
    accs = {
        m: EnsembleAccumulator(N_OUT, MEMBERS, THRESHOLDS, rank_min=0.1) for m in ("rc", "steps")
    }
    times: dict[str, list[float]] = {"rc": [], "steps": []}
    fss = None
    runs = [(event, files, s) for event, files in rss.events(pattern).items()
            for s in window_starts(len(files), positions)]  # fmt: skip
    for event, files, s in runs:
        frames = np.stack([rss.read_dn(f) for f in files])
        x, y = frames[s : s + N_IN], frames[s + N_IN : s + N_IN + N_OUT]
        obs = factor * units.pixel_to_rain(y)
        rc, dt = run_radarcast(x, units, factor, threads)
        times["rc"].append(dt)
        st, dt = run_steps(factor * units.pixel_to_rain(x))
        times["steps"].append(dt)
        valid = np.isfinite(obs) & np.isfinite(rc).all(0) & np.isfinite(st).all(0)
        for lead in range(N_OUT):
            for m, ens in (("rc", rc), ("steps", st)):
                accs[m].add(lead, ens[:, lead], obs[lead], mask=valid[lead],
                            rng=np.random.default_rng([s, lead]))  # fmt: skip
        if fss is None:
            fss = fss_speed(np.where(valid, rc.mean(0), np.nan), np.where(valid, obs, np.nan))
        rc_s, st_s = times["rc"][-1], times["steps"][-1]
        print(f"  {name} {event} frame {s}: radarcast {rc_s:.1f} s, STEPS {st_s:.1f} s",
              flush=True)  # fmt: skip
    sec = {m: float(np.median(v)) for m, v in times.items()}
    return {
        "nowcasts": len(times["rc"]),
        "windows": [f"{event} frame {s}" for event, _, s in runs],
        "grid": list(frames.shape[1:]),
        "seconds_per_nowcast": {"radarcast": sec["rc"], "pysteps_steps": sec["steps"]},
        "speedup": sec["steps"] / sec["rc"],
        "radarcast": summary(accs["rc"]),
        "pysteps_steps": summary(accs["steps"]),
        "fss_scoring": fss,
    }


PEAK_KIB = r"""
def peak_kib():
    # this process's own high-water mark (VmHWM). Not ru_maxrss: Linux carries the RSS the
    # parent had at fork across exec into the child's ru_maxrss, so the child of a 13 GiB
    # bench process (after the STEPS runs) reported the parent's 13.07 GiB (session 6, #18)
    try:
        with open("/proc/self/status") as s:
            return int(next(x for x in s if x.startswith("VmHWM:")).split()[1])
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
"""Source of ``peak_kib()``: a child process's own peak RSS in KiB (run inside the child)."""

OPERA_CHILD = PEAK_KIB + r"""
import sys, time, h5py, numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
from radarcast.kernels.flow import RoverConfig, motion_coarse, pixel_scale as _scale
from radarcast.baselines.ensemble_config import EnsembleConfig, rain_levels
from radarcast.baselines.rover_ensemble import stream_members
from radarcast.data.units import Units
files = sorted(__import__("glob").glob(sys.argv[1] + "/*.hdf"))[:3]
units = Units()
frames = []
for f in files:
    with h5py.File(f, "r") as h:
        d = h["dataset1/data1/data"][...].astype(np.float32)
    d[d == -8888000.0] = 0.0
    d[d <= -9999000.0] = np.nan
    frames.append(np.where(np.isfinite(d), units.rain_to_pixel(np.maximum(d, 1e-3)), np.nan))
x = torch.from_numpy(np.stack(frames).astype(np.float32))
del frames
t0 = time.perf_counter()
cfg = EnsembleConfig(members=20, pixel_km=2.0, timestep_min=15.0)
out = sys.argv[3]
with torch.no_grad(), h5py.File(out, "w") as h:
    pred = h.create_dataset("pred", shape=(1, 20, 12, *x.shape[-2:]), dtype=np.uint8,
                            chunks=(1, 1, 1, 440, 475), compression="gzip", compression_opts=1)
    flow = motion_coarse(x[None], RoverConfig(), *_scale(units))
    floor, zero = rain_levels(units, cfg)
    for m0, lead, f in stream_members(x, flow, 2, 12, cfg, floor, 0, zero):
        v = torch.clamp(torch.round(f), 0, 255).to(torch.uint8).numpy()
        pred[0, m0:m0 + len(v), lead] = v
print(peak_kib(), time.perf_counter() - t0)
"""


def opera_memory(threads: int) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "opera_ens.h5"
        r = subprocess.run(
            [sys.executable, "-c", OPERA_CHILD, str(DATA / "OPERA" / "20180824"), str(threads),
             str(out)], capture_output=True, text=True,
        )  # fmt: skip
    if r.returncode:
        return {"error": r.stderr.strip().splitlines()[-1]}
    kib, seconds = r.stdout.split()[-2:]
    return {"peak_rss_gib": int(kib) / 2**20, "peak_rss_of": "the child process alone (VmHWM)",
            "seconds": float(seconds), "members": 20, "leads": 12, "grid": [2200, 1900],
            "chunk_bytes": EnsembleConfig().chunk_bytes}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", default="mch,fmi")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (STEPS uses one)")
    ap.add_argument("--skip-opera", action="store_true")
    ap.add_argument("--windows", default="middle",
                    help="where in each event: middle (default), start, end; comma-separated")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ensemble_speed.json"))
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"real radar data not present at {DATA}")
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    sources = [name for name in args.sources.split(",") if name]
    positions = tuple(p for p in args.windows.split(",") if p)
    if not positions or set(positions) - set(WINDOWS):
        sys.exit(f"--windows takes {', '.join(WINDOWS)}, got {args.windows!r}")
    results = {name: bench_source(name, args.threads, positions) for name in sources}
    if not args.skip_opera:
        results["opera_memory"] = opera_memory(args.threads)
    for name in sources:
        r = results[name]
        print(f"{name}: {r['speedup']:.1f}x faster than STEPS "
              f"({r['seconds_per_nowcast']['radarcast']:.1f} s vs "
              f"{r['seconds_per_nowcast']['pysteps_steps']:.1f} s); CRPS "
              f"{r['radarcast']['crps_mmh_mean_over_leads']:.4f} vs "
              f"{r['pysteps_steps']['crps_mmh_mean_over_leads']:.4f} mm/h; rank flatness "
              f"{r['radarcast']['rank_flatness']:.3f} vs "
              f"{r['pysteps_steps']['rank_flatness']:.3f}; "
              f"FSS scoring {r['fss_scoring']['speedup']:.1f}x")  # fmt: skip
    if "opera_memory" in results:
        print("OPERA 20 members:", results["opera_memory"])
    payload = {
        "members": MEMBERS, "n_in": N_IN, "n_out": N_OUT, "thresholds_mmh": THRESHOLDS,
        "fss_scales_px": DEFAULT_SCALES, "windows": list(positions), "commit": _commit(),
        "timing": "median wall seconds per nowcast (motion + 20 members × 12 leads)",
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                    "peak_rss_gib_this_process":
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20},
        "results": results,
    }  # fmt: skip
    if not sources and "opera_memory" in results and Path(args.out).exists():
        # --sources '': only the OPERA entry is new; keep the rest of the earlier run's file
        old = json.loads(Path(args.out).read_text())
        old["results"]["opera_memory"] = results["opera_memory"]
        old["opera_memory_measured_at"] = {
            "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": _commit(),
            "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "torch_threads": torch.get_num_threads(),
        }  # fmt: skip
        payload = old
    write_json(args.out, payload)


def _commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=_REPO, capture_output=True,
                       text=True)  # fmt: skip
    return r.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
