"""FSS scales in km where the dataset has georef: `evaluate --fss-scales 1km,4km`, CSV/JSON km."""

from __future__ import annotations

import csv
import json

import h5py
import pytest
from typer.testing import CliRunner

from radarcast.cli._app import app
from radarcast.data.georef import Georef


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _with_georef(path, bounds):
    g = Georef.from_bounds("EPSG:21781", bounds, (64, 64))
    with h5py.File(path, "r+") as f:
        f.attrs.update(g.attrs())
    return path


def test_km_scales_converted_and_stated(tiny_dataset, tmp_path):
    ds = _with_georef(tiny_dataset, (0, 0, 128000, 128000))  # 2 km pixels
    out = tmp_path / "s"
    r = _cli("evaluate", ds, "--limit", 2, "--fss-scales", "2km,8km,5", "--out", out)
    assert r.exit_code == 0, r.output
    prob = json.loads((out / "scores.json").read_text())["methods"][0]["probabilistic"]
    assert prob["fss_scales_px"] == [1, 4, 5]
    assert prob["fss_scales_km"] == {"x": [2.0, 8.0, 10.0], "y": [2.0, 8.0, 10.0]}
    assert prob["fss_scale_conversion"] == ["2km = 1 px (1 px = 2 km)", "8km = 4 px (1 px = 2 km)"]
    rows = list(csv.DictReader((out / "scores.csv").open()))
    km = {r["metric"]: float(r["value"]) for r in rows if r["units"] == "km"}
    assert km["fss_scale_5px_x"] == 10.0 and km["fss_scale_4px_y"] == 8.0
    assert (out / "fss.png").stat().st_size > 0


def test_non_square_pixels_state_both_and_refuse_km(tiny_dataset, tmp_path):
    ds = _with_georef(tiny_dataset, (0, 0, 128000, 64000))  # 2 km x 1 km
    r = _cli("evaluate", ds, "--limit", 1, "--fss-scales", "4km", "--out", tmp_path / "a")
    assert r.exit_code == 1 and "not square (2 x 1 km)" in " ".join(r.output.split())
    assert not (tmp_path / "a").exists()
    r = _cli("evaluate", ds, "--limit", 1, "--fss-scales", "1,2", "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output
    prob = json.loads((tmp_path / "b" / "scores.json").read_text())["methods"][0]["probabilistic"]
    assert prob["fss_scales_km"] == {"x": [2.0, 4.0], "y": [1.0, 2.0]}


@pytest.mark.parametrize("scales, message", [
    ("4km", "the dataset has no georef"),
    ("abc", "FSS scales are pixels or km"),
])
def test_km_without_georef_or_garbage_refused(tiny_dataset, tmp_path, scales, message):
    r = _cli("evaluate", tiny_dataset, "--fss-scales", scales, "--out", tmp_path / "s")
    assert r.exit_code == 1 and message in " ".join(r.output.split()), r.output
    assert not (tmp_path / "s").exists()


def test_km_scale_larger_than_the_grid_refused(tiny_dataset, tmp_path):
    ds = _with_georef(tiny_dataset, (0, 0, 128000, 128000))  # 2 km pixels, 128 km grid
    r = _cli("evaluate", ds, "--fss-scales", "2km,200km", "--out", tmp_path / "s")
    line = " ".join(r.output.split())
    assert r.exit_code == 1 and "FSS scale 200km (100 px) is larger than the 64x64 grid" in line
    assert not (tmp_path / "s").exists()
