"""ROVER: known motion recovered, echoes moved (not grown), robust to missing and dry input."""

from __future__ import annotations

import numpy as np
import pytest

from radarcast.baselines.rover import RoverConfig, estimate_motion, extrapolate, forecast
from radarcast.errors import RadarcastError

H = W = 96
YY, XX = np.mgrid[0:H, 0:W].astype(np.float32)


def blob(cx: float, cy: float, peak: float = 220.0, width: float = 12.0) -> np.ndarray:
    """A smooth storm cell in HKO pixels (peak 220 ≈ 50 dBZ)."""
    return peak * np.exp(-((XX - cx) ** 2 + (YY - cy) ** 2) / (2 * width**2))


def translated(u: float, v: float, n: int = 3) -> np.ndarray:
    return np.stack([blob(40 + u * i, 45 + v * i) for i in range(n)]).astype(np.float32)


def csi(pred: np.ndarray, obs: np.ndarray, thr: float) -> float:
    p, o = pred >= thr, obs >= thr
    hits, misses, false = (p & o).sum(), (~p & o).sum(), (p & ~o).sum()
    return hits / (hits + misses + false)


def centroid(field: np.ndarray) -> tuple[float, float]:
    w = np.clip(field - 120, 0, None)  # the core of the cell, where the motion is known
    return float((w * XX).sum() / w.sum()), float((w * YY).sum() / w.sum())


def test_subpixel_translation_recovered_and_moved():
    u, v = 1.3, -0.7
    frames = translated(u, v)
    motion = estimate_motion(frames)
    assert motion.shape == (2, H, W)
    rainy = frames[-1] > 120
    assert abs(motion[0][rainy].mean() - u) < 0.25
    assert abs(motion[1][rainy].mean() - v) < 0.25
    pred = forecast(frames, 6)
    cx, cy = centroid(pred[-1])  # 6 steps after the last frame: within 0.25 px per step
    assert abs(cx - (40 + u * 8)) < 1.5 and abs(cy - (45 + v * 8)) < 1.5
    px, py = centroid(frames[-1])
    assert np.hypot(cx - px, cy - py) > 0.8 * 6 * np.hypot(u, v)  # it did move


def test_rotating_field_is_followed():
    omega, c = 0.04, (H - 1) / 2  # radians per step about the centre
    frames = []
    for i in range(3):
        a = omega * i
        polar = ((25, 0.0), (25, 2.1), (18, 4.2))
        cells = [(c + r * np.cos(t + a), c + r * np.sin(t + a)) for r, t in polar]
        frames.append(sum(blob(x, y, 200, 7) for x, y in cells))
    frames = np.stack(frames).astype(np.float32)
    motion = estimate_motion(frames)
    rainy = frames[-1] > 120
    true_u, true_v = -omega * (YY - c), omega * (XX - c)
    err = np.hypot(motion[0] - true_u, motion[1] - true_v)[rainy].mean()
    speed = np.hypot(true_u, true_v)[rainy].mean()
    cos = (motion[0] * true_u + motion[1] * true_v) / (
        np.hypot(motion[0], motion[1]) * np.hypot(true_u, true_v) + 1e-6
    )
    assert err < 0.5 * speed
    assert cos[rainy].mean() > 0.9


def test_zero_rain_gives_zero_motion_and_dry_forecast():
    frames = np.zeros((3, H, W), np.float32)
    motion = estimate_motion(frames)
    pred = forecast(frames, 4)
    assert np.all(motion == 0)
    assert np.all(np.isfinite(pred)) and np.all(pred == 0)


def test_missing_pixels_do_not_spread_nan():
    frames = translated(1.0, 0.5)
    frames[:, 10:30, 60:80] = np.nan
    motion = estimate_motion(frames)
    pred = forecast(frames, 4)
    assert np.all(np.isfinite(motion))
    assert np.all(np.isfinite(pred))


def test_outside_nan_marks_inflow_unknown():
    frame = blob(40, 45).astype(np.float32)
    motion = np.zeros((2, H, W), np.float32)
    motion[0] = 2.0  # everything moves right: the left edge takes inflow from outside
    pred = extrapolate(frame, motion, 3, outside="nan")
    assert np.isnan(pred[-1][:, :5]).all()
    assert np.isfinite(pred[-1][:, 10:]).all()


def test_translation_forecast_beats_persistence():
    frames = translated(1.5, 1.0, n=3 + 6)
    x, y = frames[:3], frames[3:]
    pred = forecast(x, 6)
    persist = np.repeat(x[-1:], 6, axis=0)
    assert csi(pred, y, 120) > csi(persist, y, 120) + 0.2


def test_growing_storm_is_not_grown():
    frames = np.stack([blob(40 + i, 45, peak=120 + 40 * i) for i in range(3)]).astype(np.float32)
    pred = forecast(frames, 6)
    assert pred.max() <= frames[-1].max() + 1e-3  # ROVER moves echoes; it cannot grow them


def test_grid_too_small_is_refused():
    with pytest.raises(RadarcastError, match="too small"):
        forecast(np.zeros((3, 12, 12), np.float32), 2)


def test_too_few_frames_is_refused():
    with pytest.raises(RadarcastError, match="needs 3 input frames"):
        forecast(translated(1, 1, n=2), 2)


def test_bad_config_is_refused():
    with pytest.raises(RadarcastError, match="transform"):
        RoverConfig(transform="log")


def test_forecaster_batches_and_keeps_config(tiny_dataset):
    from radarcast.data.store import open_dataset
    from radarcast.forecasters import resolve

    with open_dataset(tiny_dataset) as ds:
        fc = resolve("rover", ds, n_out=4, options={"smoothness": 0.2, "device": "cpu"})
        x = np.stack([ds.frames(s, s + 3) for s in (0, 5)])
    y = fc(x)
    assert y.shape == (2, 4, 64, 64) and np.isfinite(y).all()
    assert fc.config["smoothness"] == 0.2 and fc.config["device"] == "cpu"
    assert fc.n_in == 3 and fc.batch_size >= 1
