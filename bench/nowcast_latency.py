"""End-to-end latency of `radarcast nowcast` beside pysteps' own pipeline, in one run.

From the 3 newest MeteoSwiss GIFs (and FMI PGMs) of ../shared/data, 12 leads of ROVER on the
native grid, written as CF-netCDF: each job is a fresh process, timed from its start to the
moment it exits with the file written. ``radarcast`` is the default live path (ROVER's numpy
kernels, no torch import; MeteoSwiss GIFs read natively), ``radarcast_torch`` the same
command with ``--device cpu --flow-downsample 2`` (torch kernels, the flow on the grid of the
evaluations: the path before session 5).
pysteps does the same job its own way: its importer, Lucas-Kanade motion
(dense_lucaskanade), semi-Lagrangian extrapolation and its netCDF exporter. The jobs
alternate (radarcast, torch path, pysteps, ...) so that the machine's load hits all alike;
medians are reported with the load average before and after, and each job's CPU seconds
(all its threads: less sensitive to the other jobs on the machine than wall time).

netCDF settings: CPU seconds and size of the live nowcast's variables written with the
writer's settings before session 7 (zlib 4 + shuffle; lon/lat deflated too) and now
(zlib 1, no shuffle; lon/lat plain).

Skill: on windows of each event (3 frames in, the 12 observed frames after them as truth)
the live path (numpy kernels, flow on a 4x coarser grid), the numpy kernels on the 2x grid
and the previous torch path forecast side by side: CSI at 1 mm/h and MSE (pixels) each,
and the largest difference between the numpy and torch kernels on the same grid.

Watch mode: ``nowcast --watch`` runs warm while new files arrive one by one (copied under a
``.part`` name, then renamed); the latency is from the rename to the nowcast written,
including the ``--settle`` wait (0.3 s here) that tells a complete file from one still
being written.

Needs: numpy, h5py, typer, rich, pillow, pyproj, netCDF4, torch (for ``radarcast_torch``
and the skill check), pysteps (+ scipy and opencv-python for its Lucas-Kanade).

    python bench/nowcast_latency.py [--repeats 3] [--out bench/results/nowcast_latency.json]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_json

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pysteps-data" / "radar"
SOURCES = {
    "mch": {"folder": DATA / "mch" / "20150515", "glob": "*.gif", "importer": "mch_gif",
            "pattern": "AQC%y%j%H%M?_", "kwargs": "product='AQC', unit='mm', accutime=5.0"},
    "fmi": {"folder": DATA / "fmi" / "pgm" / "20170509", "glob": "*.pgm.gz",
            "importer": "fmi_pgm", "pattern": "%Y%m%d%H%M", "kwargs": "gzipped=True"},
}  # fmt: skip

PYSTEPS_JOB = """
import sys, time, contextlib, io
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    import numpy as np
    from pysteps import io as pio, motion, nowcasts
    from pysteps.utils import conversion, transformation
t1 = time.perf_counter()
importer = pio.get_method("{importer}", "importer")
files = sys.argv[1:4]
fields = []
for f in files:
    r, _, meta = importer(f, {kwargs})
    fields.append(r)
R = np.stack(fields)
R, meta = conversion.to_rainrate(R, meta)
Rdb, meta_db = transformation.dB_transform(R, meta, threshold=0.1, zerovalue=-15.0)
Rdb[~np.isfinite(Rdb)] = meta_db["zerovalue"]
t2 = time.perf_counter()
V = motion.get_method("LK")(Rdb)
t3 = time.perf_counter()
F = nowcasts.get_method("extrapolation")(R[-1], V, 12)
t4 = time.perf_counter()
from datetime import datetime
exp = pio.initialize_forecast_exporter_netcdf(sys.argv[4], "pysteps_nowcast", datetime(2020, 1, 1),
                                               5, 12, R.shape[1:], meta, n_ens_members=1)
pio.export_forecast_dataset(F, exp)
pio.close_forecast_files(exp)
t5 = time.perf_counter()
print("STEPS import %.3f read %.3f motion %.3f extrapolate %.3f write %.3f" % (
    t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4))
"""


def newest(src: dict, n: int = 3) -> list[Path]:
    return sorted(src["folder"].glob(src["glob"]))[-n:]


def _child_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], out: Path) -> tuple[float, float, str]:
    """Seconds from process start to exit, the CPU seconds it used (all its threads), and
    its output; the output file must exist afterwards."""
    out.unlink(missing_ok=True)
    cpu0, t0 = _child_cpu(), time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - t0, _child_cpu() - cpu0
    if r.returncode != 0 or not out.exists():
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return seconds, cpu, r.stdout + r.stderr


PREVIOUS = ("--device", "cpu", "--flow-downsample", "2")  # the path before session 5


def radarcast_job(src: dict, files: list[Path], out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "radarcast", "nowcast", *map(str, files), "--format",
            f"pysteps:{src['importer']}", "--time-pattern", src["pattern"], "--method", "rover",
            "--leads", "12", "-o", str(out), "--overwrite", *extra]  # fmt: skip


VARIANTS = {
    "live": {"device": "numpy", "downsample": 4},  # radarcast nowcast's default
    "numpy_flow2": {"device": "numpy"},  # numpy kernels on the evaluation grid
    "previous": {"device": "cpu"},  # torch kernels, flow on the 2x grid (before session 5)
}


def skill(src: dict, starts=(0, 7, 14, 21)) -> dict:
    """CSI (1 mm/h) and MSE of ROVER's live path and the previous one on windows of the
    event (3 frames in, the next 12 observed frames as truth)."""
    import numpy as np

    from radarcast.data.preprocess import PreprocessConfig
    from radarcast.forecasters import resolve
    from radarcast.nowcast import read_latest

    files = sorted(src["folder"].glob(src["glob"]))
    cfg = PreprocessConfig(format=f"pysteps:{src['importer']}", time_pattern=src["pattern"])
    inp = read_latest([str(f) for f in files], len(files), cfg)
    x = inp.frames.astype(np.float32)
    x[~inp.valid] = np.nan
    thr = float(inp.units.to_pixel(np.float64(1.0), "mmh"))
    truth = np.stack([x[s + 3 : s + 15] for s in starts])
    out: dict = {"threshold_pixel": thr, "windows": len(starts)}
    preds = {}
    for name, options in VARIANTS.items():
        fc = resolve("rover", inp, n_out=12, options=options)
        fc(x[None, :3])  # warm: torch's first call loads kernels
        t0 = time.perf_counter()
        p = preds[name] = np.stack([fc(x[None, s : s + 3])[0] for s in starts])
        ok = np.isfinite(truth) & np.isfinite(p)
        hit = ((p >= thr) & (truth >= thr) & ok).sum()
        miss = ((p < thr) & (truth >= thr) & ok).sum()
        false = ((p >= thr) & (truth < thr) & ok).sum()
        out[name] = {"options": options, "csi_1mmh": float(hit / (hit + miss + false)),
                     "mse_pixel": float(np.mean((p[ok] - truth[ok]) ** 2)),
                     "forecast_s": (time.perf_counter() - t0) / len(starts)}  # fmt: skip
    a, b = preds["numpy_flow2"], preds["previous"]
    both = np.isfinite(a) & np.isfinite(b)
    out["numpy_vs_torch_max_abs_diff_pixel"] = float(np.abs(a - b)[both].max())
    return out


def netcdf_settings(src: dict, tmp: Path, tries: int = 3) -> dict:
    """CPU seconds (best of ``tries``) and bytes of the live nowcast's netCDF variables
    under the writer's settings before session 7 and now: the 12 maps (mm/h) at zlib 4 +
    shuffle against zlib 1 without shuffle; lon/lat deflated (4 + shuffle) against plain."""
    import netCDF4
    import numpy as np

    from radarcast.data.preprocess import PreprocessConfig
    from radarcast.forecasters import resolve
    from radarcast.nowcast import nowcast_cube, read_latest, run_nowcast

    cfg = PreprocessConfig(format=f"pysteps:{src['importer']}", time_pattern=src["pattern"])
    inp = read_latest([str(f) for f in newest(src)], 3, cfg)
    fc = resolve("rover", inp, n_out=12, options=VARIANTS["live"])
    values = nowcast_cube(run_nowcast(inp, fc), "mm/h").read(0)[None]  # (1, 12, H, W)
    values = np.where(np.isnan(values), np.float32(-9999), values)
    lon, lat = inp.georef.lonlat(values.shape[-2:])
    path = tmp / "settings.nc"

    def write(which: str, **packing) -> dict:
        best = float("inf")
        for _ in range(tries):
            t0 = time.process_time()
            with netCDF4.Dataset(path, "w") as nc:
                for d, n in zip(("time", "lead_time", "y", "x"), values.shape, strict=True):
                    nc.createDimension(d, n)
                if which == "maps":
                    chunks = (1, 1, *values.shape[-2:])
                    v = nc.createVariable("p", "f4", ("time", "lead_time", "y", "x"),
                                          chunksizes=chunks, **packing)  # fmt: skip
                    v[...] = values
                else:
                    for name, a in (("lon", lon), ("lat", lat)):
                        nc.createVariable(name, "f8", ("y", "x"), **packing)[...] = a
            best = min(best, time.process_time() - t0)
        return {"cpu_s": best, "mb": path.stat().st_size / 1e6, **packing}

    return {
        "maps_before": write("maps", zlib=True, complevel=4, shuffle=True),
        "maps_now": write("maps", zlib=True, complevel=1, shuffle=False),
        "lonlat_before": write("lonlat", zlib=True, complevel=4, shuffle=True),
        "lonlat_now": write("lonlat", zlib=False),
    }


def watch_latency(src: dict, tmp: Path, new: int = 4, settle: float = 0.3) -> dict:
    """``nowcast --watch`` (process warm): seconds from a new file's completion (its rename
    into the folder) to its nowcast written, for ``new`` files arriving one by one."""
    import shutil
    import signal

    files = sorted(src["folder"].glob(src["glob"]))
    inbox, out = tmp / f"{src['importer']}_in", tmp / f"{src['importer']}_out"
    inbox.mkdir()
    out.mkdir()
    for f in files[:3]:
        shutil.copy(f, inbox / f.name)
    cmd = [sys.executable, "-m", "radarcast", "nowcast", "--watch", str(inbox), "--out-dir",
           str(out), "--out-format", "nc", "--format", f"pysteps:{src['importer']}",
           "--time-pattern", src["pattern"], "--settle", str(settle), "--poll", "0.02"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait_for(n: int, since: float) -> float:
        while len(list(out.glob("nowcast_*.nc"))) < n:
            if proc.poll() is not None:
                raise SystemExit(f"watch mode ended: {proc.stderr.read()[-2000:]}")
            time.sleep(0.005)
        return time.perf_counter() - since

    try:
        first = wait_for(1, time.perf_counter())  # start-up and the nowcast of the newest file
        latencies = []
        for i, f in enumerate(files[3 : 3 + new]):
            part = inbox / f"{f.name}.part"
            shutil.copy(f, part)
            os.replace(part, inbox / f.name)
            latencies.append(wait_for(2 + i, time.perf_counter()))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    med = statistics.median(latencies)
    return {"settle_s": settle, "first_nowcast_s": first, "latency_s": latencies,
            "median_latency_s": med, "median_minus_settle_s": med - settle}  # fmt: skip


def steps_of(text: str, prefix: str) -> dict:
    if prefix == "radarcast":
        found = re.findall(r"(read|setup|forecast|write) ([\d.]+) s", text)
    else:
        found = re.findall(r"(import|read|motion|extrapolate|write) ([\d.]+)", text)
    return {k: float(v) for k, v in found}


def run_source(name: str, repeats: int, tmp: Path) -> dict:
    src = SOURCES[name]
    files = newest(src)
    rc_out, ps_out = tmp / f"{name}.nc", tmp / "pysteps_nowcast.nc"
    job = PYSTEPS_JOB.format(importer=src["importer"], kwargs=src["kwargs"])
    ps_cmd = [sys.executable, "-c", job, *map(str, files), str(tmp)]
    rows = {"radarcast": [], "radarcast_torch": [], "pysteps": []}
    for _ in range(repeats):
        s, cpu, text = timed(radarcast_job(src, files, rc_out), rc_out)
        rows["radarcast"].append({"total_s": s, "cpu_s": cpu, **steps_of(text, "radarcast")})
        s, cpu, text = timed(radarcast_job(src, files, rc_out, *PREVIOUS), rc_out)
        rows["radarcast_torch"].append({"total_s": s, "cpu_s": cpu, **steps_of(text, "radarcast")})
        s, cpu, text = timed(ps_cmd, ps_out)
        rows["pysteps"].append({"total_s": s, "cpu_s": cpu, **steps_of(text, "pysteps")})
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in rows.items()}
    ratio = med["pysteps"]["total_s"] / med["radarcast"]["total_s"]
    return {"files": [f.name for f in files], "runs": rows, "median": med,
            "pysteps_over_radarcast": ratio,
            "torch_path_over_radarcast": med["radarcast_torch"]["total_s"]
            / med["radarcast"]["total_s"], "skill": skill(src),
            "netcdf_settings": netcdf_settings(src, tmp),
            "watch": watch_latency(src, tmp)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sources", default="mch,fmi")
    ap.add_argument("--out", default="bench/results/nowcast_latency.json")
    args = ap.parse_args()
    if not DATA.exists():
        raise SystemExit(f"real radar data not present at {DATA}")
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sources.split(","):
            results[name] = run_source(name, args.repeats, Path(tmp))
            m = results[name]["median"]

            def parts(d: dict) -> str:
                return ", ".join(f"{k} {v:.2f}" for k, v in d.items() if k != "total_s")

            print(f"{name}: radarcast {m['radarcast']['total_s']:.2f} s ({parts(m['radarcast'])}), "
                  f"torch path {m['radarcast_torch']['total_s']:.2f} s "
                  f"({parts(m['radarcast_torch'])}), "
                  f"pysteps {m['pysteps']['total_s']:.2f} s ({parts(m['pysteps'])}); "
                  f"pysteps / radarcast = {results[name]['pysteps_over_radarcast']:.2f}; "
                  f"skill {results[name]['skill']}; watch {results[name]['watch']}")
    write_json(args.out, {"cpus": os.cpu_count(), "loadavg_before": load_before,
                          "loadavg_after": os.getloadavg(), "repeats": args.repeats,
                          "note": "shared machine: other jobs ran at the same time; see loadavg",
                          "results": results})  # fmt: skip


if __name__ == "__main__":
    main()
