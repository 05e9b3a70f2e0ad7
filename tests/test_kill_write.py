"""Kills that land while an output is being written (issue 21, item 5): an ensemble forecast
during its member-axis write (``forecast --method rover --members N``) and ``export`` during
GeoTIFF, Zarr and GRIB2 writes.

Each trial puts an older result under the output name, starts the command onto it with
``--overwrite``, waits until the command's hidden temporary has grown past a seeded share of
the full output's size (so the signal arrives mid-write, at a different point per seed), then
sends SIGKILL or SIGINT. Afterwards the output name still holds the old result, byte for
byte, or (when the signal came just after the rename) the whole new one, never a half file
or half store; after SIGINT the command printed at most one line and
left no temporary; after SIGKILL the temporary is there and the rerun removes it and writes
the same result as an uninterrupted run. CI runs 4 trials (SIGKILL and SIGINT of the
ensemble, SIGINT of GeoTIFF, SIGKILL of GRIB2; about 35 s); ``RADARCAST_NIGHTLY=1`` runs
every kind × both signals × 5 seeds (40).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from test_kill import NIGHTLY, SIGNALS

from radarcast.data.forecast_file import open_forecast

ENSEMBLE = ["forecast", "data.h5", "--method", "rover", "--members", "6", "--split", "all",
            "--limit", "12", "--device", "cpu", "--threads", "1"]  # fmt: skip
EXPORTS = {  # format: (source, output name)
    "geotiff": ("geo.h5", "out.tif"),
    "zarr": ("geo.h5", "out.zarr"),
    "grib2": ("geofc.h5", "out.grib2"),
}
KINDS = ["ensemble", *EXPORTS]
LOG = os.environ.get("RADARCAST_KILL_LOG")
CI = {("ensemble", "KILL"), ("ensemble", "INT"), ("geotiff", "INT"), ("grib2", "KILL")}
# Ctrl-C during a Zarr write: zarr 3 writes chunks from its own I/O thread and pool, which
# went on creating chunk folders while the cleanup removed the temporary tree (it stayed);
# the writer now stops zarr's I/O first (radarcast/export/cf.py `_stop_zarr_io`)


def _marks(kind: str, sig: str, seed: int) -> list:
    return [] if (kind, sig) in CI and seed == 0 else list(NIGHTLY)


TRIALS = [pytest.param(k, s, seed, marks=_marks(k, s, seed), id=f"{k}-{s}-{seed}")
          for k in KINDS for s in SIGNALS for seed in range(5)]  # fmt: skip


def _args(kind: str, out: str) -> list[str]:
    if kind == "ensemble":
        return [*ENSEMBLE, "-o", out]
    return ["export", EXPORTS[kind][0], "-o", out, "--units", "mm/h"]


def _size(path: Path, enough: float = float("inf")) -> int:
    """Bytes in a file or a folder tree (counting stops once past ``enough``)."""
    if not path.is_dir():
        return path.stat().st_size if path.exists() else 0
    total, todo = 0, [path]
    while todo and total < enough:
        try:
            with os.scandir(todo.pop()) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        todo.append(e.path)
                    else:
                        total += e.stat(follow_symlinks=False).st_size
        except FileNotFoundError:  # renamed or removed meanwhile
            pass
    return total


def _tree(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
                if p.is_file()}  # fmt: skip
    return {"": path.read_bytes()}


def _temporaries(folder: Path, name: str) -> list[Path]:
    stem = name.rsplit(".", 1)[0]
    return [p for p in folder.iterdir()
            if ".tmp" in p.name and p.name.startswith((f".{name}.", f".{stem}."))]  # fmt: skip


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Inputs, and per kind the uninterrupted result (its size sets the kill points) and a
    smaller "old" result that a killed run must leave in place."""
    folder = tmp_path_factory.mktemp("kill_write")
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:64, 0:64]
    rain = [np.clip(180 * np.exp(-((xx - 20 - k) ** 2 + (yy - 30) ** 2) / 80.0)
                    + rng.integers(0, 40, (64, 64)), 0, 255) for k in range(40)]  # fmt: skip
    np.save(folder / "raw.npy", np.stack(rain).astype(np.uint8))
    base = rng.integers(0, 255, (128, 128), dtype=np.uint8)
    np.save(folder / "geo.npy", np.stack([np.roll(base, i, axis=1) for i in range(200)]))
    for args in (
        ["preprocess", "raw.npy", "-o", "data.h5", "--n-in", "3", "--n-out", "6"],
        ["preprocess", "geo.npy", "-o", "geo.h5", "--n-in", "3", "--n-out", "4",
         "--crs", "EPSG:3035", "--bounds", "4000000,3000000,4128000,3128000"],
        ["forecast", "geo.h5", "-o", "geofc.h5", "--split", "all", "--limit", "30"],
    ):  # fmt: skip
        r = run_cli(*args, cwd=folder)
        assert r.returncode == 0, r.stderr
    return {"folder": folder, "ref": {}}


def _reference(work: dict, kind: str) -> Path:
    """The uninterrupted result and the old one, made on first use."""
    folder = work["folder"]
    if kind not in work["ref"]:
        suffix = EXPORTS[kind][1].split(".")[-1] if kind in EXPORTS else "h5"
        ref, old = folder / f"ref_{kind}.{suffix}", folder / f"old_{kind}.{suffix}"
        for args in (_args(kind, ref.name), _old_args(kind, old.name)):
            r = run_cli(*args, cwd=folder)
            assert r.returncode == 0, r.stderr
        work["ref"][kind] = (ref, old)
    return work["ref"][kind]


def _old_args(kind: str, out: str) -> list[str]:
    if kind == "ensemble":
        return [*ENSEMBLE[:5], "2", "--split", "all", "--limit", "1", "-o", out]
    if kind == "grib2":  # one analysis time only
        return ["export", "geofc.h5", "-o", out, "--time", "2000-01-01T00:10:00Z"]
    return ["export", "data.h5", "-o", out] if kind == "zarr" else [
        "export", "geofc.h5", "-o", out, "--time", "2000-01-01T00:10:00Z"]  # fmt: skip


def _kill_mid_write(args: list, cwd: Path, out: str, threshold: int, sig: str) -> tuple:
    """Start the command; once its temporary of ``out`` holds ``threshold`` bytes, signal it.
    Returns (exit code, stderr)."""
    p = subprocess.Popen([sys.executable, "-m", "radarcast", *args], cwd=cwd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and p.poll() is None:
            tmps = _temporaries(cwd, out)
            if tmps and _size(tmps[0], threshold) >= threshold:
                break
            time.sleep(0.002)
        assert p.poll() is None, "the command ended before its write could be interrupted"
        os.kill(p.pid, SIGNALS[sig])
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    return p.returncode, err


@pytest.mark.parametrize("kind,sig,seed", TRIALS)
def test_killed_mid_write_keeps_the_old_result(work, tmp_path, kind, sig, seed):
    need = {"geotiff": "rasterio", "zarr": "zarr", "grib2": "eccodes"}.get(kind)
    if need:
        pytest.importorskip(need)
    ref, old = _reference(work, kind)
    out = EXPORTS[kind][1] if kind in EXPORTS else "ens.h5"
    for name in ("data.h5", "geo.h5", "geofc.h5"):
        os.link(work["folder"] / name, tmp_path / name)  # read-only inputs: no copy needed
    copy = shutil.copytree if old.is_dir() else shutil.copyfile
    copy(old, tmp_path / out)
    before = _tree(tmp_path / out)
    # a point within the first 60% of the written bytes, drawn per seed (at least one byte)
    threshold = max(1, int(np.random.default_rng(seed).uniform(0.0, 0.6) * _size(ref)))
    args = [*_args(kind, out), "--overwrite"]
    code, err = _kill_mid_write(args, tmp_path, out, threshold, sig)
    replaced = _tree(tmp_path / out) != before
    if replaced:  # the signal came after the rename: then all of the new result
        _same_result(kind, tmp_path / out, ref)
    if LOG:  # one line per trial, for the counts in docs/reliability.md
        with open(LOG, "a") as fh:
            fh.write(f"{kind} {sig} {seed} {'new' if replaced else 'old'}\n")
    if sig == "INT":
        assert code in (130, -signal.SIGINT), (code, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
        assert _temporaries(tmp_path, out) == []
    else:
        assert code == -signal.SIGKILL
        assert replaced or _temporaries(tmp_path, out)  # what the killed run left
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _temporaries(tmp_path, out) == []  # the rerun removed the dead run's temporary
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".")] == []
    _same_result(kind, tmp_path / out, ref)


def _same_result(kind: str, got: Path, ref: Path) -> None:
    """The rerun's output equals the uninterrupted run's (contents; files hold no times of
    their own except where noted)."""
    if kind == "ensemble":
        with open_forecast(got) as a, open_forecast(ref) as b:
            assert a.members == b.members == 6
            rows = np.arange(len(b.starts))
            assert np.array_equal(a.starts, b.starts)
            assert np.array_equal(a.pred(rows), b.pred(rows), equal_nan=True)
        return
    if kind == "geotiff":
        import rasterio

        with rasterio.open(got) as a, rasterio.open(ref) as b:
            assert a.count == b.count and np.array_equal(a.read(), b.read())
        return
    if kind == "zarr":
        import xarray as xr

        with xr.open_zarr(got, consolidated=False) as a, \
                xr.open_zarr(ref, consolidated=False) as b:
            assert np.array_equal(a["precip_intensity"].values, b["precip_intensity"].values,
                                  equal_nan=True)  # fmt: skip
        return
    assert got.read_bytes() == ref.read_bytes()  # GRIB2: messages hold no write time
