"""The smoke study's FSS/CRPS/Brier intervals in report.json, the page and scores.json, and
`radarcast report REPORT.json --keys / --update DOC.md` (docs written from a report)."""

from __future__ import annotations

import json
import re

from conftest import run_cli


def _rows(smoke):
    doc = json.loads((smoke / "report.json").read_text())
    return doc, doc["results"]["groups"]["day4"]["methods"]


def test_fss_crps_brier_have_intervals_around_their_estimates(smoke):
    _, rows = _rows(smoke)
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
    lo, hi = ens["crps_minus_rover_ci"]
    assert lo <= ens["crps_minus_rover"] <= hi
    lo, hi = ens["fss_minus_rover_ci"][0][2]
    assert lo <= ens["fss_minus_rover"][0][2] <= hi
    assert "crps_minus_rover_ci" not in rows["rover"]
    cells = re.sub(r"<[^>]+>", " ", (smoke / "report.html").read_text())
    lo, hi = ens["crps_ci"]
    assert f"{ens['crps']:.4f}  [{lo:.4f}, {hi:.4f}]" in cells


def test_evaluate_scores_json_carries_them_for_radarcast_report(smoke, tmp_path):
    scores = smoke / "evaluate" / "main" / "day4" / "scores.json"
    boot = json.loads(scores.read_text())["bootstrap"]["methods"]["rover-ens"]
    assert {"fss", "crps", "brier", "crps_minus_persistence"} <= set(boot)
    page = tmp_path / "page.html"
    assert run_cli("report", scores, "-o", page).returncode == 0
    row = json.loads(page.with_suffix(".json").read_text())["results"]["groups"][
        "day4__test"]["methods"]["rover-ens"]
    lo, hi = row["crps_ci"]
    assert lo <= row["crps"] <= hi and len(row["fss_ci"][0]) == len(row["fss_scales_px"])


def test_keys_and_update_rewrite_a_document_from_the_report(smoke, tmp_path):
    doc, rows = _rows(smoke)
    r = run_cli("report", smoke / "report.json", "--keys")
    assert r.returncode == 0, r.stderr
    keys = dict(line.split(" = ", 1) for line in r.stdout.splitlines() if " = " in line)
    assert keys["day4/rover/csi@0.5"] == f"{rows['rover']['csi'][0]:.3f}"
    lo, hi = rows["rover-ens"]["crps_minus_rover_ci"]
    assert keys["day4/rover-ens/crps_minus_rover_ci"] == f"[{lo:+.4f}, {hi:+.4f}]"
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
    assert text.endswith("<!-- end of generated tables -->\nafter\n")
    before = text + "<!--n:day4/nope/csi@0.5-->1<!--/n-->"
    md.write_text(before)
    bad = run_cli("report", smoke / "report.json", "--update", md)
    assert bad.returncode == 1 and "day4/nope/csi@0.5" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and md.read_text() == before
