"""The fast scoring paths give exactly the numbers of the straightforward ones."""

from __future__ import annotations

import numpy as np
import pytest

from radarcast.data.units import get_preset
from radarcast.evaluation.scoring import _PixelLookup
from radarcast.verification.report import ProbabilisticScores
from radarcast.verification.spatial import (
    FSSAccumulator,
    ObsCache,
    _table,
    box_sums,
    box_sums_reference,
)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 16, 23])
def test_box_sums_equal_the_gathered_reference(size):
    rng = np.random.default_rng(size)
    events = rng.integers(0, 5, (3, 23, 31)).astype(np.int32)
    table = _table(events)
    assert np.array_equal(box_sums(table, size), box_sums_reference(table, size))


def _fields(seed, m=1, h=40, w=52):
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 120, (h, w)).astype(np.float32)
    ens = rng.integers(0, 120, (m, h, w)).astype(np.float32)
    ens[0, 3, 4] = np.nan
    mask = rng.random((h, w)) > 0.1
    return ens, obs, mask


@pytest.mark.parametrize("m", [1, 5])
def test_shared_obs_cache_changes_no_sum(m):
    thr, scales = (20.0, 60.0, 100.0), (1, 4, 16)
    alone = FSSAccumulator(2, thr, scales, (40, 52))
    shared = FSSAccumulator(2, thr, scales, (40, 52))
    for lead in range(2):
        cache = ObsCache()
        for seed in range(3):  # three methods on one truth frame
            ens, obs, mask = _fields(seed, m)
            if seed == 2:
                ens[0, 10, 10] = np.nan  # other valid pixels: the cache must not be reused
            a = alone.add(lead, ens if m > 1 else ens[0], obs, mask)
            b = shared.add(lead, ens if m > 1 else ens[0], obs, mask, cache)
            assert np.array_equal(a, b)
    assert np.array_equal(alone.sums, shared.sums)


def test_pixel_lookup_equals_the_power_law():
    units = get_preset("hko")
    fn, fast = units.pixel_to_rain, _PixelLookup(units.pixel_to_rain)
    whole = np.arange(256, dtype=np.float32).reshape(4, 64)
    assert np.array_equal(fast(whole), fn(whole))
    odd = np.array([0.5, 3.0, 300.0, np.nan], dtype=np.float32)  # not whole pixels: fn
    assert np.array_equal(fast(odd), fn(odd), equal_nan=True)


def test_probabilistic_add_with_and_without_cache_is_identical():
    units = get_preset("hko")
    fast = _PixelLookup(units.pixel_to_rain)
    a = ProbabilisticScores.init(None, 2, (20.0, 60.0), (1, 4), (40, 52), "mmh")
    b = ProbabilisticScores.init(None, 2, (20.0, 60.0), (1, 4), (40, 52), "mmh")
    for lead in range(2):
        ens, obs, mask = _fields(lead)
        a.add(lead, ens, obs, mask, units.pixel_to_rain, np.random.default_rng(lead), window=0)
        b.add(lead, ens, obs, mask, fast, np.random.default_rng(lead), window=0, cache=ObsCache())
    for key, v in a.window_sums().items():
        assert np.array_equal(v, b.window_sums()[key]), key
    assert np.array_equal(a.ens.sums, b.ens.sums)


@pytest.mark.parametrize("scales", [(1,), (2,), (1, 4, 16), (3, 5, 8, 23)])
def test_frame_boxes_of_all_scales_equal_the_reference(scales):
    from radarcast.verification.spatial import _frame_boxes

    rng = np.random.default_rng(len(scales))
    events = rng.integers(0, 7, (2, 23, 31)).astype(np.int32)
    table = _table(events)
    for n, box in zip(scales, _frame_boxes(events, scales, 7), strict=True):
        assert np.array_equal(box, box_sums_reference(table, n) / 7)
