"""--stride through the one window selection; live and file scores agree by construction;
the bootstrap scheme is written next to every interval."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli as _cli

from radarcast.data.selection import select_windows
from radarcast.data.store import open_dataset
from radarcast.errors import RadarcastError
from radarcast.evaluation import evaluate


def test_stride_keeps_every_kth_start_of_each_segment(tiny_dataset):
    with open_dataset(tiny_dataset) as ds:
        every = select_windows(ds, "all", 3, 4)
        third = select_windows(ds, "all", 3, 4, stride=3)
        first2 = select_windows(ds, "all", 3, 4, limit=2, stride=3)
        seg = ds.segments
    for s in np.unique(seg[every]):  # per segment: the 1st, 4th, 7th ... start
        mine = every[seg[every] == s]
        np.testing.assert_array_equal(third[seg[third] == s], mine[::3])
    np.testing.assert_array_equal(first2, third[:2])
    with pytest.raises(RadarcastError, match="--stride must be ≥ 1"):
        select_windows(open_dataset(tiny_dataset), "all", 3, 4, stride=0)


def test_forecast_evaluate_and_animate_share_the_stride(tiny_dataset, tmp_path):
    r = _cli("forecast", tiny_dataset, "-o", tmp_path / "p.h5", "--split", "all",
             "--stride", "4")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = _cli("evaluate", tiny_dataset, "-f", tmp_path / "p.h5", "--split", "all",
             "--stride", "4", "--out", tmp_path / "s")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "s" / "scores.json").read_text())
    with open_dataset(tiny_dataset) as ds:
        want = select_windows(ds, "all", 3, 4, stride=4)
    assert doc["window_starts"] == want.tolist()
    r = _cli("animate", tiny_dataset, "--split", "all", "--stride", "4", "--window", "1",
             "-o", tmp_path / "a.png")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "a.png" in r.stdout
    from radarcast.animation import choose_window

    with open_dataset(tiny_dataset) as ds:  # --window K counts the strided windows
        assert choose_window(ds, 3, 4, "all", 1, stride=4) == want[1]


def test_live_rover_and_its_file_score_identically(tiny_dataset, tmp_path):
    """ROVER's float32 output is rounded as the file stores it before scoring, so evaluating
    it live and from its forecast file gives the same counts, bit for bit."""
    r = _cli("rover", tiny_dataset, "-o", tmp_path / "r.h5", "--split", "all", "--limit", "6",
             "--threads", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    scores = evaluate(tiny_dataset, ["persistence", "rover"], [tmp_path / "r.h5"],
                      split="all", limit=6, preset="hko7", options={"rover": {"device": "cpu"}})
    live, from_file = scores.method("rover").result(), scores.methods[2].result()
    assert scores.methods[2].source.endswith("r.h5")
    np.testing.assert_array_equal(live["counts"], from_file["counts"])
    np.testing.assert_allclose(live["mse"], from_file["mse"], rtol=1e-9)


def test_stored_pixels_is_the_file_rounding():
    from radarcast.data.forecast_file import stored_pixels

    v = np.array([-3.0, 0.5, 1.5, 2.49, 254.6, 300.0, np.nan, np.inf], np.float32)
    out = stored_pixels(v)
    np.testing.assert_array_equal(out[:6], [0, 0, 2, 2, 255, 255])  # half to even, clipped
    assert np.isnan(out[6:]).all()


def test_scores_json_names_the_bootstrap_scheme(tiny_dataset):
    """tiny_dataset has 2 segments: auto resamples moving blocks, and says so."""
    s = evaluate(tiny_dataset, ["persistence"], split="all", bootstrap=50, preset="hko7")
    scheme = s.bootstrap["scheme"]
    assert scheme["unit"] == "block" and scheme["requested"] == "auto"
    assert scheme["block_frames"] >= 3 + 4 and "moving blocks" in scheme["description"]
    w = evaluate(tiny_dataset, ["persistence"], split="all", bootstrap=50, preset="hko7",
                 bootstrap_unit="window").bootstrap
    assert w["scheme"]["unit"] == "window"
    low, high = (s.bootstrap["methods"]["persistence"]["csi"][k] for k in ("low", "high"))
    assert np.all(low[:2] <= high[:2])  # wider or narrower: tests/test_bootstrap.py says why
    assert s.bootstrap["methods"]["persistence"]["csi_per_lead"]["low"].shape == (4, 5)


def test_evaluate_refuses_an_unknown_bootstrap_unit(tiny_dataset):
    r = _cli("evaluate", tiny_dataset, "--bootstrap", "5", "--bootstrap-unit", "day")
    assert r.returncode == 1  # Click's choice check, as one line (cli/_app.py)
    assert "--bootstrap-unit: 'day' is not one of" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
