"""Synthetic storms: deterministic, known motion, growth that defeats extrapolation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radarcast.data.readers import compile_time_pattern
from radarcast.data.synthetic import (
    TIME_PATTERN,
    Motion,
    SynthConfig,
    SynthSequence,
    generate,
    write_synth,
)
from radarcast.errors import RadarcastError

SMALL = SynthConfig(sequences=2, frames=12, height=64, width=64, seed=3)


def _mae(a, b, border=8):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.abs(a - b)[border:-border, border:-border].mean()


def test_same_seed_same_frames():
    a = [f for _, _, f in generate(SMALL)]
    b = [f for _, _, f in generate(SMALL)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_other_seed_other_frames():
    a = SynthSequence(SMALL, 0).frame(0)
    b = SynthSequence(SynthConfig(**{**SMALL.__dict__, "seed": 4}), 0).frame(0)
    assert not np.array_equal(a, b)


def test_frames_have_rain_and_dry_pixels():
    f = SynthSequence(SMALL, 0).frames()
    assert f.dtype == np.uint8 and f.shape == (12, 64, 64)
    assert 0.02 < (f > 0).mean() < 0.9


def test_flow_and_back_are_inverse_and_field_is_the_derivative():
    m = Motion(u=1.5, v=-0.5, omega=0.02, cx=30.0, cy=20.0)
    x, y = np.array([3.0, 40.0]), np.array([7.0, 50.0])
    np.testing.assert_allclose(m.back(*m.flow(x, y, 5.0), 5.0), (x, y), atol=1e-9)
    eps = 1e-5
    fx, fy = m.flow(x, y, eps)
    field = m.field(64, 64)
    np.testing.assert_allclose((fx - x) / eps, field[0, [7, 50], [3, 40]], rtol=1e-3)
    np.testing.assert_allclose((fy - y) / eps, field[1, [7, 50], [3, 40]], rtol=1e-3)


def test_true_field_beats_persistence_without_growth():
    cfg = SynthConfig(frames=6, height=96, width=96, growth=0.0, seed=1)
    seq = SynthSequence(cfg, 0)
    f = seq.frames()
    for t in range(5):
        warped = seq.motion.warp(f[t])
        assert _mae(warped, f[t + 1]) < 0.3 * _mae(f[t], f[t + 1])


def test_growth_makes_the_true_field_miss():
    base = dict(frames=8, height=96, width=96, seed=1)
    errors = {}
    for g in (0.0, 4.0):
        seq = SynthSequence(SynthConfig(growth=g, **base), 0)
        f = seq.frames()
        errors[g] = np.mean([_mae(seq.motion.warp(f[t]), f[t + 1]) for t in range(7)])
    assert errors[4.0] > 3 * errors[0.0]


def test_new_cells_appear_with_growth():
    cfg = SynthConfig(frames=30, height=64, width=64, growth=2.0, seed=2)
    births = SynthSequence(cfg, 0).cells["birth"]
    assert np.any((births > 0) & (births < cfg.frames))


def test_write_png_names_carry_times(tmp_path):
    out = write_synth(tmp_path / "syn", SMALL)
    names = sorted(p.name for p in out.glob("*.png"))
    assert len(names) == 24
    parse = compile_time_pattern(TIME_PATTERN)
    times = [parse(n) for n in names]
    assert times[1] - times[0] == SMALL.timestep_s
    assert times[12] - times[11] > SMALL.timestep_s  # a gap between sequences
    meta = json.loads((out / "synth.json").read_text())
    assert len(meta["motion"]) == 2


def test_write_npy_stack(tmp_path):
    out = write_synth(tmp_path / "syn", SMALL, fmt="npy")
    stack = np.load(out / "synth.npy")
    assert stack.shape == (2, 12, 64, 64)
    np.testing.assert_array_equal(stack[1, 5], SynthSequence(SMALL, 1).frame(5))


def test_non_empty_folder_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(RadarcastError, match="--overwrite"):
        write_synth(tmp_path, SMALL)


def test_overwrite_replaces_an_earlier_synth_folder(tmp_path):
    out = write_synth(tmp_path / "syn", SMALL, fmt="npy")
    write_synth(out, SMALL, overwrite=True)
    assert not (out / "synth.npy").exists() and len(list(out.glob("*.png"))) == 24
    assert [p.name for p in tmp_path.iterdir()] == ["syn"]
