"""Ensemble forecast files: a member axis readable with plain h5py; deterministic unchanged."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from radarcast.data import open_dataset
from radarcast.data.forecast_file import open_forecast
from radarcast.data.forecast_writer import ForecastWriter
from radarcast.errors import RadarcastError


def _write(path, ds, starts, pred, members=None, streamed=False):
    kw = dict(method="test", config={}, n_in=3, n_out=pred.shape[-3], split="test")
    with ForecastWriter(path, ds, starts, members=members, **kw) as w:
        if streamed:
            for row in pred:  # (M, n_out, H, W)
                w.write_streamed(
                    (m0, lead, row[m0 : m0 + 2, lead])
                    for lead in range(row.shape[1])
                    for m0 in (0, 2)
                )
        else:
            w.write(pred)
        return w.finish()


@pytest.mark.parametrize("streamed", [False, True])
def test_ensemble_file_round_trip(tiny_dataset, tmp_path, streamed):
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 255, (2, 4, 3, 64, 64)).astype(np.float32)  # (N, M, n_out, H, W)
    pred[1, 2, 0, :3, :3] = np.nan
    with open_dataset(tiny_dataset) as ds:
        path = _write(tmp_path / "ens.h5", ds, [0, 5], pred, members=4, streamed=streamed)
        with open_forecast(path) as f:
            f.check_matches(ds, n_in=3)
            assert f.members == 4 and f.grid == (64, 64)
            got = f.pred([1])
    assert got.shape == (1, 4, 3, 64, 64)
    np.testing.assert_array_equal(np.isnan(got[0]), np.isnan(pred[1]))
    ok = np.isfinite(pred[1])
    np.testing.assert_array_equal(got[0][ok], np.clip(np.rint(pred[1][ok]), 0, 255))
    with h5py.File(path, "r") as h:  # plain h5py sees the documented layout
        assert h["pred"].shape == (2, 4, 3, 64, 64) and h["pred"].dtype == np.uint8
        assert h.attrs["members"] == 4


def test_deterministic_file_has_no_member_axis(tiny_dataset, tmp_path):
    pred = np.full((1, 3, 64, 64), 7.0, np.float32)
    with open_dataset(tiny_dataset) as ds:
        path = _write(tmp_path / "det.h5", ds, [0], pred)
    with h5py.File(path, "r") as h:
        assert "members" not in h.attrs and h["pred"].shape == (1, 3, 64, 64)
    with open_forecast(path) as f:
        assert f.members is None and f.pred([0]).shape == (1, 3, 64, 64)


def test_member_count_that_disagrees_with_pred_is_refused(tiny_dataset, tmp_path):
    pred = np.zeros((1, 2, 3, 64, 64), np.float32)
    with open_dataset(tiny_dataset) as ds:
        path = _write(tmp_path / "ens.h5", ds, [0], pred, members=2)
    with h5py.File(path, "r+") as h:
        h.attrs["members"] = 3
    with pytest.raises(RadarcastError, match=r"expected \(1, 3, 3, H, W\)"):
        open_forecast(path)


def test_zero_members_is_refused_before_writing(tiny_dataset, tmp_path):
    with open_dataset(tiny_dataset) as ds, pytest.raises(RadarcastError, match="members"):
        ForecastWriter(
            tmp_path / "x.h5",
            ds,
            [0],
            method="t",
            config={},
            n_in=3,
            n_out=3,
            split=None,
            members=0,
        )
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.h5"]


def test_ensemble_file_from_another_dataset_is_refused(tiny_dataset, tmp_path):
    from radarcast.data.store import DatasetWriter
    from radarcast.data.units import Units

    other = tmp_path / "other.h5"
    with DatasetWriter(other, units=Units(), timestep_s=300, n_in=3, n_out=4, command="t") as w:
        for i in range(20):
            w.append(np.full((64, 64), i, np.uint8), 1_700_000_000 + 300 * i)
        w.finish()
    pred = np.zeros((1, 2, 3, 64, 64), np.float32)
    with open_dataset(tiny_dataset) as ds:
        path = _write(tmp_path / "ens.h5", ds, [0], pred, members=2)
    with open_dataset(other) as ds, open_forecast(path) as f:
        with pytest.raises(RadarcastError, match="was made from another dataset"):
            f.check_matches(ds)
