"""SIGKILL during ``radarcast export`` (issue 21, item 5): the final name never holds a
half-written file (a Zarr store is a folder: it is placed by one rename too), and the rerun
succeeds, removing the killed run's temporary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli


def _dataset(path: Path) -> Path:
    """400 frames of 256x256 noise: a netCDF or Zarr export takes about a second."""
    from radarcast.data.store import DatasetWriter
    from radarcast.data.units import Units

    base = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)
    with DatasetWriter(path, units=Units(), timestep_s=300, n_in=3, n_out=4, command="t") as w:
        for i in range(400):
            w.append(np.roll(base, i, axis=1), 1_600_000_000 + 300 * i)
        w.finish()
    return path


def _check(tmp_path: Path, name: str) -> None:
    ds = _dataset(tmp_path / "d.h5")
    out = tmp_path / name
    args = ["export", str(ds), "-o", str(out), "--units", "pixel"]
    p = subprocess.Popen([sys.executable, "-m", "radarcast", *args], cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p_tmp = tmp_path / f".{name}.{p.pid}.tmp"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and p.poll() is None:
            size = (sum(f.stat().st_size for f in p_tmp.rglob("*") if f.is_file())
                    if p_tmp.is_dir() else p_tmp.stat().st_size if p_tmp.exists() else 0)
            if size > 2**20:
                break
            time.sleep(0.005)
        assert p.poll() is None, "the export finished before it could be killed"
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    assert not out.exists()  # never a half file (or half store) under the final name
    assert p_tmp.exists()  # what the killed run left
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not p_tmp.exists()  # removed by the rerun: its process is dead
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".")] == []
    import xarray as xr

    opened = xr.open_zarr(out) if name.endswith(".zarr") else xr.open_dataset(out)
    with opened as x:
        assert x.sizes["time"] == 400


def test_kill_during_netcdf_export_leaves_nothing_and_the_rerun_succeeds(tmp_path):
    pytest.importorskip("netCDF4")
    _check(tmp_path, "out.nc")


@pytest.mark.nightly
def test_kill_during_zarr_export_leaves_no_half_store(tmp_path):
    pytest.importorskip("zarr")
    _check(tmp_path, "out.zarr")
