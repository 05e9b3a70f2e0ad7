"""The ROVER ensemble: shapes, seeds, spread that grows, motion kept, refusals."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
from radarcast.baselines.ensemble_config import EnsembleConfig  # noqa: E402
from radarcast.baselines.ensemble_forecaster import check_fits, make_forecaster  # noqa: E402
from radarcast.baselines.rover import forecast as rover_forecast  # noqa: E402
from radarcast.baselines.rover_ensemble import forecast_window  # noqa: E402
from radarcast.errors import RadarcastError  # noqa: E402


def _frames(n=3, size=64):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    tex = rng.uniform(0.7, 1.0, (size, size))
    out = []
    for i in range(n):
        blob = 200 * np.exp(-((xx - 20 - 2 * i) ** 2 + (yy - 30 - i) ** 2) / 80.0)
        out.append(np.roll(tex, (i, 2 * i), axis=(0, 1)) * blob)
    return np.stack(out).astype(np.float32)


def _centroid(f):
    yy, xx = np.mgrid[0 : f.shape[-2], 0 : f.shape[-1]]
    w = np.clip(f, 0, None)
    return np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])


def test_members_shape_seed_and_growing_spread():
    x = _frames()
    cfg = EnsembleConfig(members=6, seed=1)
    a = forecast_window(x, 6, cfg)
    assert a.shape == (6, 6, 64, 64) and a.dtype == np.float32
    assert np.all((a >= 0) & (a <= 255))
    np.testing.assert_array_equal(a, forecast_window(x, 6, cfg))  # same seed, same bytes
    b = forecast_window(x, 6, EnsembleConfig(members=6, seed=2))
    assert not np.array_equal(a, b)
    spread = a.std(axis=0).mean(axis=(1, 2))
    assert spread[-1] > spread[0] > 0


def test_ensemble_follows_rover_motion_and_bps_spreads_it():
    x = _frames()
    det = rover_forecast(x, 4)
    ens = forecast_window(x, 4, EnsembleConfig(members=8, seed=0, motion="none"))
    for lead in (0, 3):  # without motion perturbations the members sit where ROVER puts it
        assert np.abs(_centroid(ens[:, lead].mean(0)) - _centroid(det[lead])).max() < 1.0
    bps = forecast_window(x, 4, EnsembleConfig(members=8, seed=0))
    where = np.array([[_centroid(m[lead]) for lead in range(4)] for m in bps])  # (M, L, 2)
    assert where[:, 3].std(axis=0).max() > 2 * where[:, 0].std(axis=0).max()


def test_zero_or_negative_members_and_bad_options_are_refused():
    for m in (0, -3):
        with pytest.raises(RadarcastError, match="--members must be a whole number ≥ 1"):
            EnsembleConfig(members=m)
    with pytest.raises(RadarcastError, match="choose one of: observed, radial"):
        EnsembleConfig(spectrum="flat")


def test_a_member_count_that_cannot_fit_is_refused_with_the_size():
    with pytest.raises(RadarcastError, match=r"needs about [0-9.]+ GiB, only [0-9.]+ GiB"):
        check_fits(EnsembleConfig(members=10**7), 12, 64, 64, whole=True)


def test_forecaster_returns_members_axis():
    fc = make_forecaster(None, 3, {"members": 4, "device": "cpu"})
    assert fc.members == 4 and fc.n_in == 3
    y = fc.predict(_frames()[None], 3)
    assert y.shape == (1, 4, 3, 64, 64)
    parts = list(fc.stream(_frames(), 3))
    assert len(parts) == 3 and parts[0][2].shape == (4, 64, 64)
    np.testing.assert_array_equal(np.stack([p[2] for p in parts], axis=1), y[0])


def test_centred_ensemble_perturbs_around_the_given_forecast():
    from radarcast.baselines.persistence import persistence
    from radarcast.forecasters import Forecaster

    centre = Forecaster("still", 1, 3, persistence, {"method": "persistence"})
    fc = make_forecaster(None, 3, {"members": 5, "device": "cpu"}, centre=centre)
    x = _frames()
    y = fc.predict(x[None], 3)[0]  # (M, L, H, W)
    assert fc.name == "rover@still" and y.shape == (5, 3, 64, 64)
    for lead in range(3):  # around persistence, not ROVER: the blob stays put on average
        assert np.abs(_centroid(y[:, lead].mean(0)) - _centroid(x[-1])).max() < 1.5
    assert y[:, -1].std(axis=0).mean() > 0
