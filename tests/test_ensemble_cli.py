"""Ensembles through the real CLI: forecast/rover --members, refusals, evaluate, animate."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from radarcast.data.forecast_file import open_forecast

CLI = [sys.executable, "-m", "radarcast"]


def _run(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)


def test_forecast_rover_members_writes_an_ensemble_file(tiny_dataset, tmp_path):
    out = tmp_path / "ens.h5"
    r = _run("forecast", tiny_dataset, "--method", "rover", "--members", 3, "--seed", 4,
             "--limit", 2, "--split", "all", "--device", "cpu", "-o", out)  # fmt: skip
    assert r.returncode == 0, r.stderr
    with open_forecast(out) as f:
        assert f.members == 3 and f.shape[:3] == (2, 3, 4)
        assert f.config["ensemble"]["seed"] == 4
        first = f.pred([0])
    again = tmp_path / "again.h5"
    assert _run("rover", tiny_dataset, "--members", 3, "--seed", 4, "--limit", 2, "--split", "all",
                "--device", "cpu", "-o", again).returncode == 0  # fmt: skip
    with open_forecast(again) as f:
        np.testing.assert_array_equal(f.pred([0]), first)  # same seed, same members


@pytest.mark.parametrize("members", ["0", "-2"])
def test_zero_or_negative_members_refused_and_nothing_written(tiny_dataset, tmp_path, members):
    out = tmp_path / "bad.h5"
    r = _run("forecast", tiny_dataset, "--method", "rover", "--members", members, "-o", out)
    assert r.returncode == 1
    assert "--members must be a whole number ≥ 1" in r.stderr + r.stdout
    assert not any(p.name != "tiny.h5" for p in tmp_path.iterdir())


def test_members_for_a_deterministic_method_is_refused(tiny_dataset, tmp_path):
    r = _run("forecast", tiny_dataset, "--method", "persistence", "--members", 3,
             "-o", tmp_path / "x.h5")  # fmt: skip
    line = (r.stderr + r.stdout).strip()
    assert r.returncode == 1 and "--members: persistence makes no ensemble" in line, line
    assert "rover (--members/--centre), pysteps:steps (--members)" in line, line


@pytest.mark.parametrize(
    ("method", "members", "centre", "words"),
    [
        ("pysteps:sprog", 3, None, "--members: pysteps:sprog makes no ensemble"),
        ("pysteps:steps", None, "RUN/best.pt", "--centre: pysteps:steps takes no --centre"),
        ("RUN/best.pt", 2, None, "--members: RUN/best.pt makes no ensemble"),
    ],
)
def test_the_registry_says_which_methods_take_ensemble_options(method, members, centre, words):
    from radarcast.errors import RadarcastError
    from radarcast.forecasters import ensemble_options

    with pytest.raises(RadarcastError, match=re.escape(words)):
        ensemble_options(method, members, 0, centre)
    assert ensemble_options("rover", 4, 7, "c.pt") == {"members": 4, "seed": 7, "centre": "c.pt"}
    assert ensemble_options("pysteps:steps", 5) == {"members": 5}
    assert ensemble_options("rover", None, None, "c.pt") == {"centre": "c.pt"}  # 20 members
    assert ensemble_options("pysteps:steps", None, 7) == {"seed": 7}  # STEPS: an ensemble
    assert ensemble_options("persistence", None) == {}


@pytest.mark.parametrize("method", ["rover", "persistence", "RUN/best.pt"])
def test_a_seed_for_a_deterministic_forecast_is_refused(method):
    from radarcast.errors import RadarcastError
    from radarcast.forecasters import ensemble_options

    with pytest.raises(RadarcastError, match=f"--seed: {re.escape(method)} makes a determ"):
        ensemble_options(method, None, 3)


def test_evaluate_scores_an_ensemble_file_and_fss(tiny_dataset, tmp_path):
    ens = tmp_path / "ens.h5"
    assert _run("forecast", tiny_dataset, "--method", "rover", "--members", 3, "--split", "all",
                "--limit", 2, "--device", "cpu", "-o", ens).returncode == 0  # fmt: skip
    out = tmp_path / "scores"
    r = _run(
        "evaluate",
        tiny_dataset,
        "--forecast",
        ens,
        "--split",
        "all",
        "--limit",
        2,
        "--units",
        "pixel",
        "--thresholds",
        "40,120",
        "--fss-scales",
        "1,4",
        "--out",
        out,
    )
    assert r.returncode == 0, r.stderr
    doc = __import__("json").loads((out / "scores.json").read_text())
    by = {m["name"]: m for m in doc["methods"]}
    assert by["rover"]["probabilistic"]["members"] == 3
    det = by["persistence"]["probabilistic"]
    crps = det["per_lead"]["crps_pixel"]
    mae = [v * 255 for v in by["persistence"]["per_lead"]["mae"]]  # one member: CRPS = MAE
    np.testing.assert_allclose(crps, mae, rtol=1e-5)
    for name in ("reliability.png", "rank_histogram.png", "fss.png", "skill.png"):
        assert (out / name).stat().st_size > 0
    rows = (out / "scores.csv").read_text()
    assert "fss_probability_4px" in rows and "fss_deterministic_1px" in rows


def test_fss_scale_larger_than_the_grid_is_refused(tiny_dataset, tmp_path):
    r = _run("evaluate", tiny_dataset, "--fss-scales", "1,65", "--out", tmp_path / "s")
    assert r.returncode == 1 and "larger than the 64x64 grid" in r.stderr + r.stdout
    assert not (tmp_path / "s").exists()


def test_evaluate_runs_a_live_rover_ensemble_with_members_and_seed(tiny_dataset, tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "scores"
    r = run_cli("evaluate", tiny_dataset, "-m", "rover", "--members", 3, "--seed", 4,
                "--split", "all", "--limit", 2, "--units", "pixel", "--thresholds", "40,120",
                "--fss-scales", "1,4", "--out", out)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = __import__("json").loads((out / "scores.json").read_text())
    by = {m["name"]: m for m in doc["methods"]}
    prob = by["rover"]["probabilistic"]
    assert prob["members"] == 3 and by["rover"]["config"]["ensemble"]["seed"] == 4
    assert prob["deterministic_scores_of"].startswith("the ensemble mean")
    assert "window mean of k/M" in prob["conventions"]["fss"]
    text = " ".join(r.stdout.split())  # Rich wraps lines, long paths mid-name
    wrote = "".join(r.stdout[r.stdout.index("wrote "):].split())
    for name in ("scores.json", "scores.csv", "skill.png", "reliability.png",
                 "rank_histogram.png", "fss.png"):  # fmt: skip
        assert name in wrote and (out / name).exists(), name
    assert "CRPS (mm/h)" in text and "rover (M = 3): its CSI, HSS" in text
    assert "of its ensemble mean" in text


@pytest.mark.parametrize(
    ("methods", "words"),
    [
        (["-m", "persistence"], "--members: no live method makes an ensemble (-m persistence)"),
        (["-m", "persistence", "-m", "pysteps:sprog"], "(-m persistence, pysteps:sprog)"),
        (["-m", "rover", "--members", "0"], "--members must be a whole number ≥ 1, got 0"),
    ],
)
def test_evaluate_members_without_an_ensemble_method_is_refused(tiny_dataset, tmp_path,
                                                                methods, words):  # fmt: skip
    from tests.conftest import run_cli

    out = tmp_path / "scores"
    args = [*methods] if "--members" in methods else [*methods, "--members", "3"]
    r = run_cli("evaluate", tiny_dataset, *args, "--split", "all", "--out", out)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 1 and len(lines) == 1 and words in lines[0], r.stderr
    assert not out.exists()
