"""`radarcast animate --probability T / --members K` on a real tiny dataset and ensemble file."""

from __future__ import annotations

import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from radarcast.animation.ensemble import PROB_RGB, exceedance, expand_source
from radarcast.cli._app import app

CLI = [sys.executable, "-m", "radarcast"]


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def ens_file(tiny_dataset, tmp_path):
    out = tmp_path / "ens.h5"
    r = _cli("forecast", tiny_dataset, "--method", "rover", "--members", 3, "--seed", 1,
             "--split", "all", "--limit", 1, "-o", out)
    assert r.exit_code == 0, r.output
    return out


def _has_colour(img: np.ndarray, rgb) -> bool:
    return bool(np.all(img[..., :3] == np.asarray(rgb, np.uint8), axis=-1).any())


def test_exceedance_counts_valid_members():
    event = np.arange(256) >= 100
    px = np.array([[[[50, 150]]], [[[150, 150]]], [[[150, 10]]], [[[0, 0]]]], np.uint8)
    valid = np.ones_like(px, bool)
    valid[3] = False  # member 4 unknown everywhere: not counted
    p, v = exceedance(px, valid, event)
    assert p.tolist() == [[[67, 67]]] and v.all()
    panels = expand_source("d", px[0], valid[0], None, event, "x")  # deterministic: 0/1
    assert [t for t, *_ in panels] == ["d", "d P(x) 0/1"] and panels[1][1].tolist() == [[[0, 100]]]


def test_probability_and_members_gif_and_png(tiny_dataset, ens_file, tmp_path):
    gif, png = tmp_path / "p.gif", tmp_path / "p.png"
    base = ["animate", tiny_dataset, "--window", 0, "--split", "all", "-f", ens_file,
            "-m", "persistence", "--probability", 30, "--members", 2, "--scale", 1]
    r = subprocess.run([*CLI, *map(str, base), "-o", gif], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert ("panels: Input, Truth, persistence, persistence P(>=30 dBZ) 0/1, rover m1, rover m2, "
            "rover P(>=30 dBZ) 3m") in " ".join(r.stdout.split())
    frames = iio.imread(gif, index=None)
    assert len(frames) == 3 + 4
    assert any(_has_colour(f, PROB_RGB[-1]) for f in frames)  # P = 1 somewhere (the blob)
    r = _cli(*base, "-o", png, "--leads", "1,4")
    assert r.exit_code == 0, r.output
    sheet = iio.imread(png)
    assert all(_has_colour(sheet, c) for c in PROB_RGB)  # every legend swatch is drawn


@pytest.mark.parametrize("args, message", [
    (["--probability", "nan"], "--probability must be a finite threshold"),
    (["--probability", "0", "--units", "mmh"], "rain-rate thresholds must be > 0"),
    (["--probability", "900"], "so no event could reach it"),
    (["--members", "0"], "--members must be a whole number ≥ 1"),
    (["--members", "5"], "--members 5 is more than rover has (3 members)"),
])
def test_bad_input_one_line_exit_1_nothing_written(tiny_dataset, ens_file, tmp_path, args,
                                                    message):
    out = tmp_path / "bad.gif"
    r = _cli("animate", tiny_dataset, "--window", 0, "--split", "all", "-f", ens_file,
             *args, "-o", out)
    assert r.exit_code == 1 and message in " ".join(r.output.split()), r.output
    assert not out.exists()


def test_members_without_an_ensemble_is_refused(tiny_dataset, tmp_path):
    out = tmp_path / "bad.png"
    r = _cli("animate", tiny_dataset, "--window", 0, "-m", "persistence", "--members", 2,
             "-o", out)
    assert r.exit_code == 1 and "no method here is an ensemble" in " ".join(r.output.split())
    assert not out.exists()


def test_members_k_runs_a_k_member_steps_ensemble(tiny_dataset, tmp_path):
    """`-m pysteps:steps --members K` runs STEPS with K members (it always ran 20, so a K
    above 20 was refused only after STEPS had run, and a huge K not before allocating)."""
    pytest.importorskip("pysteps")
    out = tmp_path / "steps.png"
    r = _cli("animate", tiny_dataset, "--window", 0, "-m", "pysteps:steps", "--members", 21,
             "-o", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 0
    r = _cli("animate", tiny_dataset, "--window", 0, "-m", "pysteps:steps", "--members",
             100_000_000, "-o", tmp_path / "huge.png")  # fmt: skip
    assert r.exit_code == 1 and "needs about" in r.output and len(r.output.splitlines()) == 1
    assert not (tmp_path / "huge.png").exists()
