"""Disk faults while exporting or nowcasting to netCDF, GeoTIFF and Zarr: one line naming the
user's output (never the hidden temporary) and the system's reason, exit code 1, nothing
left in the folder. A real full disk and a real read-only folder come from test_faults.py's
private mount namespace (skipped where `unshare -m` is not permitted); the rest runs
everywhere, with the libraries' failures mocked."""

from __future__ import annotations

import errno
import os
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, run_cli
from test_faults import _in_namespace, _one_line_error, needs_namespaces

pytest.importorskip("netCDF4")
pytest.importorskip("rasterio")

MCH = SHARED_DATA / "radar" / "mch" / "20150515"
NOWCAST = ["--format", "pysteps:mch_gif", "--time-pattern", "AQC%y%j%H%M?_",
           "--method", "persistence"]  # fmt: skip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """A geo-referenced 40-frame noise dataset (incompressible: far more than 16 KiB in any
    format) and its persistence forecasts."""
    folder = tmp_path_factory.mktemp("export_faults")
    stack = np.random.default_rng(0).integers(0, 256, (40, 128, 128), dtype=np.uint8)
    np.save(folder / "noise.npy", stack)
    ds, fc = folder / "d.h5", folder / "f.h5"
    r = run_cli("preprocess", folder / "noise.npy", "-o", ds, "--crs", "EPSG:3035",
                "--bounds", "0,0,128000,128000")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_cli("forecast", ds, "--split", "all", "--method", "persistence", "-o", fc)
    assert r.returncode == 0, r.stderr
    return {"dataset": ds, "forecast": fc}


def _args(case: str, inputs: dict, out: Path) -> list:
    """The command line of ``case``: 'export-forecast.nc', 'nowcast.tif', ..."""
    kind, suffix = case.split(".")
    if kind == "nowcast":
        if not MCH.exists():
            pytest.skip(f"real radar data not present at {MCH}")
        return ["nowcast", *sorted(MCH.glob("*.gif"))[-4:], *NOWCAST, "-o", out / f"a.{suffix}"]
    source = inputs["forecast" if kind == "export-forecast" else "dataset"]
    extra = ["--time", "2000-01-01T00:20:00Z"] if kind == "export-forecast" else []
    return ["export", source, *extra, "-o", out / f"a.{suffix}"]


CASES = ["nowcast.nc", "nowcast.tif", "export-forecast.nc", "export-forecast.tif",
         "export-dataset.nc", "export-dataset.tif", "export-forecast.zarr"]  # fmt: skip


def _names_the_output(stderr: str, out: Path, suffix: str) -> None:
    assert f"{out.name}/a.{suffix}:" in stderr, stderr
    assert ".tmp" not in stderr, stderr


def _faulted(fault: str, case: str, inputs: dict, tmp_path: Path, message: str):
    """``case`` run into an output folder under ``fault`` ('full' or 'ro'): one line with
    ``message`` naming the output, and nothing left in the folder; the run's result."""
    out = tmp_path / "out"
    out.mkdir()
    r, left = _in_namespace(fault, out, _args(case, inputs, out), tmp_path)
    _one_line_error(r, message)
    _names_the_output(r.stderr, out, case.split(".")[1])
    assert left == []  # neither the output nor its hidden temporary
    return r


@needs_namespaces
@pytest.mark.parametrize("case", CASES)
def test_full_disk_is_one_line_and_leaves_nothing(case, inputs, tmp_path):
    r = _faulted("full", case, inputs, tmp_path, "write failed: no space left on the device")
    assert "_tiffWriteProc" not in r.stderr and "HDF error" not in r.stderr


@needs_namespaces
@pytest.mark.parametrize("case", ["nowcast.nc", "nowcast.tif", "export-forecast.zarr"])
def test_read_only_folder_names_the_output(case, inputs, tmp_path):
    _faulted("ro", case, inputs, tmp_path, "Read-only file system")


@pytest.mark.parametrize("suffix", ["nc", "tif", "zarr"])
def test_output_inside_a_file_names_the_output(suffix, inputs, tmp_path):
    plain = tmp_path / "plain.h5"
    plain.write_bytes(b"")
    r = run_cli("export", inputs["dataset"], "-o", plain / f"a.{suffix}")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"plain.h5/a.{suffix}: Not a directory" in r.stderr, r.stderr


# --------------------------------------------------------------------------- mocked faults
Usage = namedtuple("Usage", "total used free")


def _fill_disk(monkeypatch, free: int = 4096) -> None:
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(2**20, 2**20 - free, free))


def _hdf_error(*args, **kwargs):
    raise RuntimeError("NetCDF: HDF error")


@pytest.mark.parametrize("source", ["dataset", "forecast"])
def test_netcdf_hdf_error_on_a_full_disk_is_one_line(source, inputs, tmp_path, monkeypatch):
    from radarcast.export import cf

    monkeypatch.setattr(cf, "_write_netcdf4", _hdf_error)
    _fill_disk(monkeypatch)
    out = tmp_path / "a.nc"
    r = run_cli("export", inputs[source], "-o", out)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == (
        f"error: {out}: write failed: no space left on the device that holds it (4,096 bytes free)"
    )
    assert os.listdir(tmp_path) == []


def test_netcdf_hdf_error_with_space_left_says_what_netcdf_said(inputs, tmp_path, monkeypatch):
    from radarcast.export import cf

    monkeypatch.setattr(cf, "_write_netcdf4", _hdf_error)
    r = run_cli("export", inputs["dataset"], "-o", tmp_path / "a.nc")
    assert r.returncode == 1
    assert r.stderr.strip() == f"error: {tmp_path / 'a.nc'}: write failed: NetCDF: HDF error"
    assert os.listdir(tmp_path) == []


def test_other_netcdf_runtime_errors_stay_bugs(inputs, tmp_path, monkeypatch):
    from radarcast.export import cf

    def bug(*args, **kwargs):
        raise RuntimeError("NetCDF: Not a valid data type or _FillValue type mismatch")

    monkeypatch.setattr(cf, "_write_netcdf4", bug)
    with pytest.raises(RuntimeError, match="valid data type"):
        run_cli("export", inputs["dataset"], "-o", tmp_path / "a.nc")
    assert os.listdir(tmp_path) == []


def test_library_raises_oserror_enospc(inputs, tmp_path, monkeypatch):
    from radarcast.export import cf, export

    monkeypatch.setattr(cf, "_write_netcdf4", _hdf_error)
    _fill_disk(monkeypatch, 0)
    with pytest.raises(OSError) as caught:
        export(inputs["dataset"], tmp_path / "a.nc")
    assert caught.value.errno == errno.ENOSPC and ".a.nc." in caught.value.filename


def test_gdal_lines_on_stderr_are_held_back(capfd):
    from radarcast.export.geotiff import _stderr_held

    with _stderr_held() as printed:
        os.write(2, b"_tiffWriteProc: No space left on device.\n")
    assert printed == ["_tiffWriteProc: No space left on device.\n"]
    assert capfd.readouterr().err == ""


def test_write_error_takes_the_system_reason_from_gdal_lines(tmp_path):
    from radarcast.export.failure import write_error

    e = write_error(tmp_path / ".a.tif.1.tmp", "TIFFAppendToStrip:Write error at scanline 0",
                    "_tiffWriteProc: File too large.\n")  # fmt: skip
    assert (e.errno, e.strerror) == (errno.EFBIG, "write failed: File too large")


@pytest.mark.parametrize(
    "name, shown",
    [
        ("out/.a.nc.11705.tmp", "out/a.nc"),
        (".a.nc.11705.tmp", "a.nc"),
        ("out/.sheet.42.tmp.png", "out/sheet.png"),
        ("out/.a.zarr.7.tmp/precip_intensity/c/0/0/0", "out/a.zarr"),
        ("out/.hidden.nc", "out/.hidden.nc"),
        ("out/a.nc", "out/a.nc"),
    ],
)
def test_os_errors_name_the_output_not_its_temporary(name, shown):
    from radarcast.cli._app import describe_os_error

    e = OSError(errno.EROFS, os.strerror(errno.EROFS), name)
    assert describe_os_error(e) == (f"{shown}: Read-only file system", False)


def test_a_failed_rename_names_the_output_once():
    from radarcast.cli._app import describe_os_error

    e = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out/.a.nc.5.tmp", None, "out/a.nc")
    assert describe_os_error(e) == ("out/a.nc: No space left on device", False)


# --------------------------------------------------------------------------- refusals, Zarr
def test_geotiff_of_several_forecasts_suggests_an_option_that_exists(inputs, tmp_path):
    r = run_cli("export", inputs["forecast"], "-o", tmp_path / "a.tif")
    assert r.returncode == 1 and "--window" not in r.stderr, r.stderr
    assert "--time 2000-01-01T00:20:00Z" in r.stderr, r.stderr
    r = run_cli("export", inputs["forecast"], "--time", "2000-01-01T00:20:00Z",
                "-o", tmp_path / "a.tif")  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_zarr_export_is_consolidated(inputs, tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("zarr")
    r = run_cli("export", inputs["forecast"], "-o", tmp_path / "a.zarr")
    assert r.returncode == 0, r.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # xarray warns when it falls back to unconsolidated
        with xr.open_zarr(tmp_path / "a.zarr") as z:
            assert z["precip_intensity"].shape == (13, 15, 128, 128)
    assert [p.name for p in tmp_path.iterdir()] == ["a.zarr"]


def test_a_file_size_limit_never_crashes_an_h5_nowcast(tmp_path):
    """Under a file size limit (`ulimit -f`) that the nowcast's last HDF5 flush crosses,
    h5py raised a RuntimeError from close() and libhdf5 then crashed the process at exit
    (rc 139). Every limit near the file's size must end in a whole file or in one line,
    exit 1 and an empty folder."""
    import resource
    import subprocess
    import sys

    if not MCH.exists():
        pytest.skip(f"real radar data not present at {MCH}")
    gifs = sorted(MCH.glob("*.gif"))[-3:]
    cmd = [sys.executable, "-m", "radarcast", "nowcast", *map(str, gifs), *NOWCAST[:-2],
           "--method", "rover"]  # fmt: skip
    full = tmp_path / "full"
    full.mkdir()
    assert subprocess.run([*cmd, "-o", str(full / "n.h5")], capture_output=True).returncode == 0
    size = (full / "n.h5").stat().st_size
    for share in (0.91, 0.93, 0.95, 0.97):
        out = tmp_path / f"limit{share}"
        out.mkdir()
        limit = int(size * share)
        r = subprocess.run(
            [*cmd, "-o", str(out / "n.h5")], capture_output=True, text=True,
            preexec_fn=lambda n=limit: resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)),
        )  # fmt: skip
        assert r.returncode in (0, 1), (share, r.returncode, r.stderr[-2000:])
        if r.returncode == 1:
            assert r.stderr.strip().count("\n") == 0 and "File too large" in r.stderr, r.stderr
            assert list(out.iterdir()) == []
        else:
            assert (out / "n.h5").stat().st_size == size
