"""The smoke study's FSS/CRPS/Brier intervals in report.json, the page and scores.json, and
`radarcast report REPORT.json --keys / --update DOC.md` (docs written from a report)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_cli


def _rows(smoke):
    doc = json.loads((smoke / "report.json").read_text())
    return doc, doc["results"]["groups"]["day4"]["methods"]


@pytest.fixture(scope="module")
def window_page(smoke, tmp_path_factory):
    """The smoke study's test day evaluated again with ``--bootstrap-unit window`` (its 11
    windows make 1.1 blocks, too few for the default scheme's interval; single windows are
    the user's choice and keep one), made into a page by ``radarcast report``: its rows."""
    tmp = tmp_path_factory.mktemp("window_page")
    files = sorted((smoke / "forecasts" / "main" / "day4").glob("*.h5"))
    r = run_cli("evaluate", smoke / "data" / "day4__test.h5", "-m", "persistence",
                *(x for f in files for x in ("-f", f)), "--thresholds", "0.5,2,5",
                "--bootstrap", "50", "--bootstrap-unit", "window", "--out", tmp / "s")
    assert r.returncode == 0, r.stdout + r.stderr
    page = tmp / "page.html"
    assert run_cli("report", tmp / "s" / "scores.json", "-o", page).returncode == 0
    doc = json.loads(page.with_suffix(".json").read_text())
    return doc["results"]["groups"]["day4__test"], page


def test_fss_crps_brier_have_intervals_around_their_estimates(window_page):
    group, page = window_page
    assert "independent windows" in group["bootstrap"]["scheme"]["assumes"]
    rows = group["methods"]
    for name, r in rows.items():
        lo, hi = r["crps_ci"]
        assert lo <= r["crps"] <= hi, name
        for k, per in enumerate(r["fss_ci"]):
            for j, (lo, hi) in enumerate(per):
                if r["fss"][k][j] is not None:
                    assert lo <= r["fss"][k][j] <= hi, (name, k, j)
        for k, (lo, hi) in enumerate(r["brier_ci"]):
            assert lo <= r["brier"][k] <= hi, (name, k)
    ens = rows["rover-ens"]  # paired differences to the reference, its estimate inside
    lo, hi = ens["crps_minus_persistence_ci"]
    assert lo <= ens["crps_minus_persistence"] <= hi
    lo, hi = ens["fss_minus_persistence_ci"][0][2]
    assert lo <= ens["fss_minus_persistence"][0][2] <= hi
    assert "crps_minus_persistence_ci" not in rows["persistence"]
    cells = re.sub(r"<[^>]+>", " ", page.read_text())
    lo, hi = ens["crps_ci"]
    assert f"{ens['crps']:.4f}  [{lo:.4f}, {hi:.4f}]" in cells


def test_evaluate_scores_json_carries_them_for_radarcast_report(smoke, tmp_path):
    """The study's scores.json keeps every interval field, null: its 11 windows make 1.1
    blocks, too few for an interval (radarcast.bootstrap.MIN_INDEPENDENT); the page made
    from it shows "[–]" and says why."""
    scores = smoke / "evaluate" / "main" / "day4" / "scores.json"
    doc = json.loads(scores.read_text())
    boot = doc["bootstrap"]["methods"]["rover-ens"]
    assert {"fss", "crps", "brier", "crps_minus_persistence"} <= set(boot)
    assert boot["crps"] == {"low": None, "high": None}
    assert "1.1 blocks of 10 windows" in doc["bootstrap"]["scheme"]["no_interval"]
    page = tmp_path / "page.html"
    assert run_cli("report", scores, "-o", page).returncode == 0
    row = json.loads(page.with_suffix(".json").read_text())["results"]["groups"][
        "day4__test"]["methods"]["rover-ens"]
    assert row["crps_ci"] == [None, None] and len(row["fss_ci"][0]) == len(row["fss_scales_px"])
    cells = re.sub(r"<[^>]+>", " ", page.read_text())
    assert f"{row['crps']:.4f}  [–]" in cells and "no 95% interval, 11 windows make" in cells


def test_keys_and_update_rewrite_a_document_from_the_report(smoke, tmp_path):
    doc, rows = _rows(smoke)
    r = run_cli("report", smoke / "report.json", "--keys")
    assert r.returncode == 0, r.stderr
    keys = dict(line.split(" = ", 1) for line in r.stdout.splitlines() if " = " in line)
    assert keys["day4/rover/csi@0.5"] == f"{rows['rover']['csi'][0]:.3f}"
    assert rows["rover-ens"]["crps_minus_rover_ci"] == [None, None]  # too few blocks
    assert keys["day4/rover-ens/crps_minus_rover_ci"] == "–"
    assert keys["day4/windows"] == "11" and keys["train/main/convlstm-tiny/steps"] == "30"
    assert float(keys["seconds/total"]) > 0  # timing.json of the run
    md = tmp_path / "results.md"
    md.write_text("Intro: ROVER <!--n:day4/rover/csi@0.5-->0.999<!--/n--> at 0.5.\n"
                  "<!-- generated from the run; do not edit -->\nold table\n"
                  "<!-- end of generated tables -->\nafter\n")
    assert run_cli("report", smoke / "report.json", "--update", md).returncode == 0
    text = md.read_text()
    assert f"ROVER <!--n:day4/rover/csi@0.5-->{rows['rover']['csi'][0]:.3f}<!--/n-->" in text
    assert "old table" not in text and "### day4 (11 windows)" in text
    assert " [–]" in text and "[–]: no 95% interval, 11 windows make 1.1 blocks" in text
    assert text.endswith("<!-- end of generated tables -->\nafter\n")
    before = text + "<!--n:day4/nope/csi@0.5-->1<!--/n-->"
    md.write_text(before)
    bad = run_cli("report", smoke / "report.json", "--update", md)
    assert bad.returncode == 1 and "day4/nope/csi@0.5" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and md.read_text() == before
