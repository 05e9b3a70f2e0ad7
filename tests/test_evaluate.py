"""evaluate(): scores on real files, outputs read back, forecast files, bad input via the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from radarcast.data.units import Units
from radarcast.evaluation import CSV_COLUMNS, evaluate
from tests.conftest import require_shared, run_cli, write_tiny_dataset


def _write_dataset(path: Path, units: Units, t0: int = 1_600_000_000, fractions=(0.8, 0.1, 0.1)):
    """A 32x32, 24-frame dataset with one moving blob (one segment)."""
    from radarcast.data.store import DatasetWriter

    yy, xx = np.mgrid[0:32, 0:32]
    with DatasetWriter(path, units=units, timestep_s=300, n_in=3, n_out=4, command="test") as w:
        for i in range(24):
            blob = 200 * np.exp(-((xx - 8 - 0.5 * i) ** 2 + (yy - 12) ** 2) / 30.0)
            w.append(blob.astype(np.uint8), t0 + 300 * i)
        w.finish(fractions)
    return path


def _persistence_file(dataset: Path, path: Path, starts: np.ndarray, n_in=3, n_out=4) -> Path:
    from radarcast.data.forecast_writer import ForecastWriter
    from radarcast.data.store import open_dataset
    from radarcast.forecasters import resolve

    ds = open_dataset(dataset)
    fc = resolve("persistence", ds, n_in=n_in, n_out=n_out)
    with ForecastWriter(path, ds, starts, method="persistence", config=fc.config,
                        n_in=n_in, n_out=n_out, split="all") as w:
        for s in starts:
            win = ds.window(int(s), n_in, n_out)
            w.write(fc(win.x[None]))
        w.finish()
    return path


def test_persistence_scores_and_outputs(tiny_dataset, tmp_path):
    scores = evaluate(tiny_dataset, ["persistence"], split="all", preset="hko7")
    r = scores.method("persistence").result()
    assert r["counts"].shape == (4, 5, 4)
    # the blob moves, so persistence loses skill with lead time at the lowest threshold
    assert r["csi"][0, 0] > r["csi"][-1, 0] > 0
    paths = scores.write(tmp_path / "out")
    doc = json.loads(paths["json"].read_text())
    th = doc["thresholds"]
    assert {k: th[k] for k in ("values", "units", "pixels")} == {
        "values": [0.5, 2.0, 5.0, 10.0, 30.0], "units": "mmh",
        "pixels": list(scores.thresholds.pixels)}
    # which Z-R turned the mm/h thresholds into dBZ (HKO's here: 0.5 mm/h = 13.0 dBZ)
    assert th["zr"] == doc["dataset"]["zr"] == "Z = 58.53 R^1.56"
    assert th["dbz"][0] == pytest.approx(12.978, abs=1e-3)
    assert doc["conventions"]["event"].startswith("value >= threshold")
    m = doc["methods"][0]
    assert np.array_equal(np.array(m["per_lead"]["counts"]), r["counts"])
    assert m["mean_over_leads"]["csi"] == pytest.approx(r["csi"].mean(axis=0).tolist())
    assert doc["lead_min"] == [5.0, 10.0, 15.0, 20.0]
    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    csi_row = [x for x in rows if x["metric"] == "csi" and x["lead_min"] == "5.0"][0]
    assert float(csi_row["value"]) == pytest.approx(r["csi"][0, 0])
    import imageio.v3 as iio

    image = iio.imread(paths["png"])
    assert image.ndim == 3 and image.shape[0] > 100


def test_forecast_file_gives_identical_scores(tiny_dataset, tmp_path):
    from radarcast.data.store import open_dataset

    starts = open_dataset(tiny_dataset).windows(3, 4, "all")
    ff = _persistence_file(tiny_dataset, tmp_path / "fc.h5", starts)
    scores = evaluate(tiny_dataset, ["persistence"], [ff], split="all", bootstrap=20)
    live, from_file = (m.result() for m in scores.methods)
    assert scores.methods[1].source == str(ff)
    np.testing.assert_array_equal(live["counts"], from_file["counts"])
    np.testing.assert_allclose(live["mse"], from_file["mse"], rtol=1e-12)
    diff = scores.bootstrap["methods"][scores.methods[1].name]["csi_minus_persistence"]
    np.testing.assert_array_equal(diff["low"], 0.0)


def test_persistence_always_added_as_reference(tiny_dataset, tmp_path):
    from radarcast.data.store import open_dataset

    starts = open_dataset(tiny_dataset).windows(3, 4, "all")[:5]
    ff = _persistence_file(tiny_dataset, tmp_path / "fc.h5", starts)
    scores = evaluate(tiny_dataset, [], [ff], split="all", limit=5)
    assert scores.reference_added
    assert [m.reference_only for m in scores.methods] == [True, False]


def test_no_events_give_null_in_json(tiny_dataset, tmp_path):
    # the blob peaks at pixel 200: no pixel reaches 250, so CSI is 0/0
    scores = evaluate(tiny_dataset, split="all", thresholds=[250], units="pixel", limit=3)
    doc = json.loads(scores.to_json(tmp_path / "s.json").read_text())
    assert doc["methods"][0]["per_lead"]["csi"][0] == [None]
    assert doc["methods"][0]["per_lead"]["counts"][0][0][0:3] == [0, 0, 0]
    sevir = evaluate(tiny_dataset, split="all", thresholds="sevir", limit=1)
    assert sevir.thresholds.unit == "pixel"


def test_cli_writes_three_files(tiny_dataset, tmp_path):
    out = tmp_path / "scores"
    p = run_cli("evaluate", str(tiny_dataset), "--split", "all", "--thresholds", "20,40",
                "--units", "dbz", "--out", str(out), "--limit", "6", "--bootstrap", "10")
    assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in out.iterdir()) == [
        "fss.png", "rank_histogram.png", "reliability.png", "scores.csv", "scores.json",
        "skill.png",
    ]
    assert "persistence" in p.stdout
    again = run_cli("evaluate", str(tiny_dataset), "--split", "all", "--out", str(out))
    assert again.returncode == 1 and "--overwrite" in again.stderr


def _bad_cases(tiny: Path, tmp: Path) -> dict[str, list[str]]:
    from radarcast.data.store import open_dataset

    other = _write_dataset(tmp / "other.h5", Units(), t0=1_700_000_000)
    other_starts = open_dataset(other).windows(3, 4, "all")
    other_fc = _persistence_file(other, tmp / "other_fc.h5", other_starts)
    few_fc = _persistence_file(tiny, tmp / "few_fc.h5", open_dataset(tiny).windows(3, 4, "all")[:2])
    no_zr = _write_dataset(tmp / "nozr.h5", Units(zr_a=None, zr_b=None))
    no_test = _write_dataset(tmp / "notest.h5", Units(), fractions=(1.0, 0.0, 0.0))
    bad_ckpt = tmp / "broken.pt"
    bad_ckpt.write_bytes(b"not a checkpoint")
    d = str(tiny)
    return {
        "other dataset": [d, "--split", "all", "--forecast", str(other_fc)],
        # covering none of the scored windows (covering some scores those: test_export.py)
        "other windows": [d, "--split", "test", "--forecast", str(few_fc)],
        "unknown method": [d, "--split", "all", "--method", "magic"],
        "broken checkpoint": [d, "--split", "all", "--method", str(bad_ckpt)],
        "thresholds not numbers": [d, "--split", "all", "--thresholds", "1,two"],
        "mm/h without Z-R": [str(no_zr), "--split", "all", "--thresholds", "1,2", "--units", "mmh"],
        "empty split": [str(no_test), "--split", "test"],
        "windows too long": [d, "--split", "all", "--n-in", "20", "--n-out", "20"],
    }


BAD = ["other dataset", "other windows", "unknown method", "broken checkpoint",
       "thresholds not numbers", "mm/h without Z-R", "empty split", "windows too long"]


@pytest.fixture(scope="module")
def bad_cases(tmp_path_factory):
    """The inputs, made once: each case only reads them."""
    tmp = tmp_path_factory.mktemp("bad")
    return _bad_cases(write_tiny_dataset(tmp / "tiny.h5"), tmp)


@pytest.mark.parametrize("case", BAD)
def test_bad_input_exits_1_with_one_line(case, bad_cases, tmp_path):
    out = tmp_path / "scores_out"
    p = run_cli("evaluate", *bad_cases[case], "--out", str(out))
    assert p.returncode == 1, (case, p.stdout, p.stderr)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr
    assert "Traceback" not in p.stderr
    assert not out.exists()


def test_real_meteoswiss_persistence_matches_pysteps(tmp_path):
    """Real MeteoSwiss composites: DN 255 masked; counts equal pysteps' on the valid pixels."""
    from PIL import Image

    from radarcast.data.store import DatasetWriter, parse_time
    from radarcast.data.units import get_preset

    detcat = pytest.importorskip("pysteps.verification.detcatscores")
    folder = require_shared("radar", "mch", "20160711")
    files = sorted(folder.glob("AQC*.gif"))[:10]
    units = get_preset("mch")
    path = tmp_path / "mch.h5"
    with DatasetWriter(path, units=units, timestep_s=300, n_in=2, n_out=4, command="test") as w:
        for i, f in enumerate(files):
            dn = np.asarray(Image.open(f))[200:328, 300:428]  # palette index = DN, 128x128
            w.append(dn, parse_time("2016-07-11T20:45") + 300 * i, mask=dn != 255)
        w.finish((1.0, 0.0, 0.0))
    scores = evaluate(path, ["persistence"], split="train", thresholds=[0.5, 2.0], units="mmh")
    counts = scores.method("persistence").result()["counts"]  # (4, 2, 4)
    frames = np.stack([np.asarray(Image.open(f))[200:328, 300:428] for f in files])
    pix = scores.thresholds.pixels
    for lead in range(4):
        truth = np.stack([frames[s + 2 + lead] for s in scores.starts])
        pred = np.stack([frames[s + 1] for s in scores.starts])
        ok = (truth != 255) & (pred != 255)
        for k, t in enumerate(pix):
            tab = detcat.det_cat_fct_init(t)
            detcat.det_cat_fct_accum(tab, pred[ok].astype(float), truth[ok].astype(float))
            theirs = [int(tab[c]) for c in ("hits", "misses", "false_alarms", "correct_negatives")]
            assert counts[lead, k].tolist() == theirs
    assert counts[0, 0, 0] > 0  # it rained in this crop


def test_paired_bootstrap_resamples_windows_together():
    """Every method gets the same resampled windows: a resample's CSI equals the CSI of the
    counts summed with those multiplicities, and a method minus itself is exactly 0."""
    from radarcast.evaluation import bootstrap_intervals, interval, paired_bootstrap
    from radarcast.metrics import csi, nanmean

    rng = np.random.default_rng(3)
    a = rng.integers(0, 50, size=(9, 4, 2, 4)).astype(float)  # (W, L, K, 4)
    b = a + rng.integers(0, 5, size=a.shape)
    boot = paired_bootstrap({"a": a, "b": b}, n=200, seed=7)
    assert boot["a"]["csi"].shape == (200, 2)
    mult = np.random.default_rng(7).multinomial(9, np.full(9, 1 / 9), size=200)
    want = nanmean(csi(np.einsum("w,wlkc->lkc", mult[5], b)), axis=0)
    np.testing.assert_allclose(boot["b"]["csi"][5], want)
    same = interval(boot["a"]["csi"] - boot["a"]["csi"])
    np.testing.assert_array_equal(same["low"], 0.0)
    np.testing.assert_array_equal(same["high"], 0.0)

    from radarcast.evaluation import MethodScores
    from radarcast.metrics import ScoreAccumulator

    def method(name, counts):
        acc = ScoreAccumulator.init(np.array([100.0, 150.0]), 4, "pixel")
        acc.window_ids = list(range(9))
        acc._counts = [counts]
        acc._sums = [np.zeros((9, 4, 6))]
        return MethodScores(name, "test", {}, acc)

    out = bootstrap_intervals([method("persistence", a), method("rover", b),
                               method("model", b)], 100, seed=1, against=("rover", "absent"))
    entry = out["methods"]["model"]
    assert set(entry) == {"csi", "hss", "csi_minus_persistence", "hss_minus_persistence",
                          "csi_minus_rover", "hss_minus_rover", "csi_per_lead"}
    np.testing.assert_array_equal(entry["csi_minus_rover"]["low"], 0.0)  # b − b
    assert "csi_minus_rover" not in out["methods"]["rover"]


def test_csv_spells_units_one_way_and_json_states_probabilistic_conventions(tiny_dataset,
                                                                           tmp_path):  # fmt: skip
    scores = evaluate(tiny_dataset, ["persistence"], split="all", thresholds=[0.5, 5],
                      units="mmh", limit=3, fss_scales=[1, 4])  # fmt: skip
    paths = scores.write(tmp_path / "out")
    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    with_threshold = {r["units"] for r in rows if r["threshold"] and r["method"] != "(threshold)"}
    assert with_threshold == {"mm/h"}  # as the CRPS and MAE rows spell it, not "mmh"
    assert {r["units"] for r in rows if r["metric"] in ("crps", "mae_mmh")} == {"mm/h", "pixel"}
    assert "mmh" not in {r["units"] for r in rows}
    mean = {(r["threshold"], r["units"], r["metric"]) for r in rows if r["lead_min"] == "mean"}
    for metric in ("brier", "roc_area", "fss_deterministic_4px"):
        assert ("5.0", "mm/h", metric) in mean, metric
    assert ("", "ratio", "spread_skill") in mean
    per_lead = {r["metric"] for r in rows if r["lead_min"] == "5.0"}
    assert {"reliability_bin0_count", "reliability_bin9_observed_frequency",
            "rank_0_count", "rank_1_frequency"} <= per_lead  # fmt: skip
    doc = json.loads(paths["json"].read_text())
    for key in ("crps", "brier", "reliability", "roc", "rank_histogram", "spread_skill", "fss"):
        assert key in doc["conventions"], key
        assert doc["methods"][0]["probabilistic"]["conventions"][key] == doc["conventions"][key]
    assert doc["conventions"]["crps"].startswith("in mm/h")
    assert "ties split uniformly at random" in doc["conventions"]["rank_histogram"]
    assert doc["conventions"]["event"].startswith("value >= threshold")  # categorical kept
