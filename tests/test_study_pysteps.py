"""pysteps' nowcasts in a study: a pysteps:extrapolation method scored beside persistence on
the same test windows, and the study file's refusals of pysteps kinds (unknown, no pysteps
installed, ensemble keys for a deterministic kind, too few input frames)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from conftest import run_cli
from test_study import BASE, refused

# pysteps' methods read 3 input frames (radarcast.baselines.pysteps_methods)
TINY = BASE.replace("n_in = 2", "n_in = 3")


@pytest.mark.skipif(importlib.util.find_spec("pysteps") is None, reason="needs pysteps")
def test_pysteps_method_is_scored_on_the_windows_of_persistence(tmp_path):
    from radarcast.data.forecast_file import open_forecast

    study = tmp_path / "s.toml"
    study.write_text(TINY + '[methods.lk]\nkind = "pysteps:extrapolation"\n')
    out = tmp_path / "out"
    r = run_cli("study", study, "-o", out, "--threads", "1", "--stop-after", "evaluate")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Pysteps" not in r.stdout and "forecast lk on b" in r.stderr  # pysteps' banner kept off
    group = json.loads((out / "evaluate" / "results.json").read_text())["groups"]["b"]
    assert set(group["methods"]) == {"persistence", "lk"}
    assert group["windows"] == 6  # 10 frames, windows of 3 + 2, every start
    lk = group["methods"]["lk"]
    assert len(lk["csi_per_lead"]) == 2 and all(np.isfinite(v) for v in lk["csi"])
    assert lk["csi_minus_persistence"][0] is not None and lk["members"] == 1
    scores = json.loads((out / "evaluate" / "main" / "b" / "scores.json").read_text())
    ff = open_forecast(out / "forecasts" / "main" / "b" / "lk.h5")
    assert ff.starts.tolist() == scores["window_starts"] and len(ff.starts) == 6
    assert [m["name"] for m in scores["methods"]] == ["persistence", "lk"]


def test_unknown_kind_lists_the_pysteps_kinds(tmp_path):
    line = refused(tmp_path, TINY + '[methods.x]\nkind = "pysteps:dgmr"\n')
    assert "'pysteps:dgmr'" in line
    assert ("persistence, rover, pysteps:extrapolation, pysteps:sprog, pysteps:steps, "
            "pysteps:anvil, model") in line


def test_pysteps_kind_without_pysteps_names_the_extra(tmp_path, monkeypatch):
    from radarcast.study import config

    monkeypatch.setattr(config, "pysteps_missing", lambda: True)
    line = refused(tmp_path, TINY + '[methods.x]\nkind = "pysteps:sprog"\n')
    assert "methods.x.kind 'pysteps:sprog' needs pysteps" in line
    assert "pip install 'radarcast[pysteps]'" in line
    assert not (tmp_path / "out").exists()  # refused at config time, before any stage


def test_members_for_a_deterministic_pysteps_kind(tmp_path):
    line = refused(tmp_path, TINY + '[methods.x]\nkind = "pysteps:sprog"\nmembers = 4\n')
    assert "members is for the kinds that make ensembles (rover, pysteps:steps)" in line
    assert "kind 'pysteps:sprog'" in line


def test_seeds_without_members(tmp_path):
    line = refused(tmp_path, TINY + '[methods.x]\nkind = "pysteps:extrapolation"\n'
                   "seeds = [1, 2]\n")
    assert "seeds is for models and for ensembles given members" in line


def test_ensemble_keys_belong_to_the_method_not_its_options(tmp_path):
    line = refused(tmp_path, TINY + '[methods.x]\nkind = "pysteps:steps"\n'
                   "options = { members = 3 }\n")
    assert "give members and seeds as keys of the method" in line


def test_pysteps_kind_needs_three_input_frames(tmp_path):
    line = refused(tmp_path, BASE + '[methods.x]\nkind = "pysteps:anvil"\n')
    assert "methods.x (pysteps:anvil) needs n_in ≥ 3" in line and "study.n_in is 2" in line
