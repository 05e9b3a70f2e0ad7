"""CF-netCDF forecasts as other tools save them with xarray (#17 Deliver 4): valid times with
a ``forecast_reference_time``, a ``lead_time`` dimension with one reference time, a
``sample`` member dimension, mm/hr units. Each forecast here is the truth itself, written
in dBZ or mm/hr, so reading it back must give the dataset's own pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radarcast.data.cf_forecast import CFForecast
from radarcast.errors import RadarcastError
from tests.conftest import run_cli

xr = pytest.importorskip("xarray")

T0 = 1_600_000_000  # the tiny dataset's first frame; 300 s steps, 3 inputs, no gap before 30
ANALYSIS = 5  # the forecast's analysis frame: it answers the window starting at frame 3
LEADS = 4


def truth(dataset_path, unit: str) -> np.ndarray:
    """(LEADS, H, W) the frames after ANALYSIS in ``unit`` ('dbz' or 'mmh')."""
    from radarcast.data.store import open_dataset

    with open_dataset(dataset_path) as ds:
        px = np.asarray(ds.frames(ANALYSIS + 1, ANALYSIS + 1 + LEADS), np.float64)
        return ds.units.pixel_to_dbz(px) if unit == "dbz" else ds.units.pixel_to_rain(px)


def stamp(frame: int) -> np.datetime64:
    return np.datetime64(T0 + 300 * frame, "s")


def valid_times_with_reference(path, values: np.ndarray, members: int) -> None:
    """DGMR-style: (sample, time, y, x) over valid times, the analysis time as a scalar
    ``forecast_reference_time`` (xarray then encodes time as 'minutes since' the first
    valid time, which is not the analysis time)."""
    data = np.broadcast_to(values, (members, *values.shape)).astype(np.float32)
    valid = np.array([stamp(ANALYSIS + k) for k in range(1, LEADS + 1)])
    xr.Dataset(
        {"reflectivity": (("sample", "time", "y", "x"), data, {"units": "dBZ"})},
        coords={"time": valid, "forecast_reference_time": stamp(ANALYSIS)},
    ).to_netcdf(path)


def leads_with_reference(path, values: np.ndarray, reference: bool = True) -> None:
    """NowcastNet-style: (lead_time, y, x) in mm/hr and one forecast_reference_time."""
    leads = np.arange(1, LEADS + 1) * np.timedelta64(300, "s")
    coords = {"lead_time": leads}
    if reference:
        coords["forecast_reference_time"] = stamp(ANALYSIS)
    xr.Dataset(
        {"rain": (("lead_time", "y", "x"), values.astype(np.float32), {"units": "mm/hr"})},
        coords=coords,
    ).to_netcdf(path)


def own_pixels(dataset_path) -> np.ndarray:
    from radarcast.data.store import open_dataset

    with open_dataset(dataset_path) as ds:
        return np.asarray(ds.frames(ANALYSIS + 1, ANALYSIS + 1 + LEADS), np.float32)


def read(path, dataset_path):
    from radarcast.data.store import open_dataset

    with open_dataset(dataset_path) as ds, CFForecast(path) as fc:
        fc.check_matches(ds)
        return fc, fc.pred(fc.row_of(ANALYSIS - 2))


def test_valid_times_with_a_reference_time_and_samples(tiny_dataset, tmp_path):
    path = tmp_path / "dgmr.nc"
    valid_times_with_reference(path, truth(tiny_dataset, "dbz"), members=3)
    fc, pred = read(path, tiny_dataset)
    assert fc.members == 3 and list(fc.leads) == [300, 600, 900, 1200]
    assert list(fc.analysis) == [T0 + 300 * ANALYSIS]
    want = own_pixels(tiny_dataset)
    assert pred.shape == (1, 3, LEADS, 64, 64)
    np.testing.assert_array_equal(pred[0, 1], want)


def test_a_lead_time_dimension_with_one_reference_time(tiny_dataset, tmp_path):
    path = tmp_path / "ncn.nc"
    leads_with_reference(path, truth(tiny_dataset, "mmh"))
    fc, pred = read(path, tiny_dataset)
    assert fc.members is None and fc.shape == (1, LEADS, 64, 64)
    want = own_pixels(tiny_dataset)
    wet = want > 0  # below the Z-R relation's smallest rate dry pixels all read 0 mm/h
    np.testing.assert_array_equal(pred[0][wet], want[wet])


def test_evaluate_scores_the_window_such_a_file_covers(tiny_dataset, tmp_path):
    path = tmp_path / "ncn.nc"
    leads_with_reference(path, truth(tiny_dataset, "mmh"))
    out = tmp_path / "scores"
    r = run_cli("evaluate", tiny_dataset, "--forecast", path, "--split", "all",
                "--thresholds", "0.5,2", "--out", out)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 of" in " ".join(r.stdout.split())  # says how many windows it covers
    methods = json.loads((out / "scores.json").read_text())["methods"]
    (method,) = [m for m in methods if str(m.get("source", "")).endswith("ncn.nc")]
    csi = np.array(method["per_lead"]["csi"])  # (lead, threshold)
    assert csi.shape == (LEADS, 2) and np.all(csi == 1.0)  # the truth itself


def test_lead_times_without_any_analysis_time_are_refused_in_one_line(tiny_dataset, tmp_path):
    path = tmp_path / "bare.nc"
    leads_with_reference(path, truth(tiny_dataset, "mmh"), reference=False)
    with pytest.raises(RadarcastError, match="needs one forecast_reference_time"):
        CFForecast(path)
    r = run_cli("evaluate", tiny_dataset, "--forecast", path, "--split", "all",
                "--out", tmp_path / "s")  # fmt: skip
    assert r.returncode == 1 and len((r.stdout + r.stderr).strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()
