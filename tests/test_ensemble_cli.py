"""Ensembles through the real CLI: forecast/rover --members, refusals, evaluate, animate."""

from __future__ import annotations

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
    assert r.returncode == 1 and "--members/--centre are for --method rover" in r.stderr + r.stdout
