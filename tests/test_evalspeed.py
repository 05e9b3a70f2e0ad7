"""The fast scoring paths give exactly the numbers of the straightforward ones."""

from __future__ import annotations

import numpy as np
import pytest

from radarcast.data.units import get_preset
from radarcast.evaluation.scoring import _PixelLookup
from radarcast.verification.report import ProbabilisticScores
from radarcast.verification.spatial import FSSAccumulator, ObsCache, _dot


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


def _reference_sums(members, obs, valid, thresholds, scales):
    """(K, S, 3) FSS sums from scipy's uniform_filter (pysteps' filter), window counts
    rounded back to integers, products in int64: exact and independent of spatial.py."""
    from scipy.ndimage import uniform_filter

    m = len(members)
    out = np.zeros((len(thresholds), len(scales), 3))
    for k, t in enumerate(np.float32(thresholds)):
        f = ((members >= t) & valid).sum(axis=0).astype(np.float64)
        o = ((obs >= t) & valid).astype(np.float64)
        for j, n in enumerate(scales):
            fw = np.rint(uniform_filter(f, n, mode="constant") * n * n).astype(np.int64)
            ow = np.rint(uniform_filter(o, n, mode="constant") * n * n).astype(np.int64)
            out[k, j] = (fw * ow).sum() / m, (fw * fw).sum() / (m * m), (ow * ow).sum()
    return out


def _sparse_case(seed, m, h, w, density):
    rng = np.random.default_rng(seed)
    members = np.where(rng.random((m, h, w)) < density, rng.uniform(0, 12, (m, h, w)), 0.0)
    obs = np.where(rng.random((h, w)) < density, rng.uniform(0, 12, (h, w)), 0.0)
    valid = rng.random((h, w)) > 0.05
    return members.astype(np.float32), obs.astype(np.float32), valid


@pytest.mark.parametrize("density", [0.0005, 0.02, 0.3, 1.0])
@pytest.mark.parametrize(("m", "scales"), [(1, (1, 2, 4, 8, 16, 32)), (1, (3, 5, 6, 23)),
                                           (4, (1, 2, 4, 8, 16, 32)), (3, (2, 7, 32, 33))])
def test_window_sums_on_event_boxes_equal_full_grid_filters(density, m, scales):
    # sums computed only around each threshold's events equal the whole grid's, sparse
    # (a few isolated events, far apart) to dense (every pixel), members or one forecast
    thresholds = (0.5, 5.0, 11.0)
    members, obs, valid = _sparse_case(int(density * 1e4) + m, m, 45, 67, density)
    acc = FSSAccumulator(1, thresholds, scales, (45, 67))
    got = acc.add(0, members if m > 1 else members[0], obs, valid)
    assert np.array_equal(got, _reference_sums(members, obs, valid, thresholds, scales))


@pytest.mark.parametrize("where", ["corners", "top row", "left column", "one pixel"])
def test_window_sums_of_events_touching_the_grid_edge(where):
    h, w, scales = 37, 29, (1, 2, 4, 8, 16, 29)
    members, obs = np.zeros((2, h, w), np.float32), np.zeros((h, w), np.float32)
    if where == "corners":
        members[0, 0, 0] = members[1, -1, -1] = obs[0, -1] = obs[-1, 0] = 3.0
    elif where == "top row":
        members[:, 0, ::3] = 3.0
        obs[0, 1::2] = 3.0
    elif where == "left column":
        members[1, ::2, 0] = 3.0
        obs[:, 0] = 3.0
    else:
        obs[h - 1, w // 2] = members[0, h - 1, w // 2] = 3.0
    valid = np.ones((h, w), bool)
    acc = FSSAccumulator(1, (1.0,), scales, (h, w))
    got = acc.add(0, members, obs, valid)
    assert np.array_equal(got, _reference_sums(members, obs, valid, (1.0,), scales))


def test_fss_without_events_on_one_side_or_both():
    obs = np.zeros((20, 30), np.float32)
    obs[4, 5] = 9.0
    acc = FSSAccumulator(2, (1.0, 10.0), (1, 4), obs.shape)
    acc.add(0, np.zeros_like(obs), obs)  # no forecast events: FSS 0 at 1 mm/h
    acc.add(1, obs, np.zeros_like(obs))  # no observed events: FSS 0 too
    fss = acc.fss()
    assert np.array_equal(fss[:, 0], np.zeros((2, 2)))
    assert np.isnan(fss[:, 1]).all()  # neither has an event ≥ 10


@pytest.mark.parametrize("top", [1024, 2**20, 2**40])
def test_products_are_summed_exactly(top):
    # uint32 products, uint64 products, and the float64 fallback past uint64's range
    rng = np.random.default_rng(top % 97)
    a = rng.integers(0, top + 1, (30, 40), dtype=np.uint64)
    b = rng.integers(0, top + 1, (30, 40), dtype=np.uint64)
    exact = sum(int(x) * int(y) for x, y in zip(a.ravel(), b.ravel(), strict=True))
    assert _dot(a, b, top) == pytest.approx(exact, rel=1e-15 if top == 2**40 else 0)


@pytest.mark.parametrize("seed", range(6))
def test_split_boxes_are_disjoint_and_cover_every_active_tile(seed):
    from radarcast.verification.spatial import _split

    rng = np.random.default_rng(seed)
    active = rng.random((30, 41)) < 0.01  # scattered tiles …
    active[5:12, 20:33] |= rng.random((7, 13)) < 0.7  # … and a cluster
    boxes = _split(active, lambda h, w: (h + 2) * (w + 2) + 20)
    painted = np.zeros(active.shape, int)
    for a, b, c, d in boxes:
        painted[a:b, c:d] += 1
    assert len(boxes) > 1
    assert painted.max() == 1 and painted[active].min() == 1


@pytest.mark.parametrize("m", [1, 3])
def test_window_sums_of_scattered_events_split_into_several_boxes(m, monkeypatch):
    from radarcast.verification import spatial
    from radarcast.verification.spatial import _field_sums

    monkeypatch.setattr(spatial, "BOX_COST", 4096)  # boxes cheap enough to split this grid
    h, w, scales, thresholds = 300, 420, (1, 2, 4, 8, 16, 32), (0.5, 5.0)
    members, obs, valid = _sparse_case(m, m, h, w, 0.0)
    members[:, 100:140, 200:260] = obs[110:150, 190:250] = 7.0  # a rain area
    for y, x in ((0, 0), (299, 419), (0, 300), (150, 0), (20, 399), (250, 100)):
        members[-1, y, x] = obs[h - 1 - y, x] = 3.0  # isolated events, some on the edge
    boxes = _field_sums(members, valid, np.float32(thresholds), scales)
    assert len(boxes[0]) > 1  # the isolated events ≥ 0.5 get boxes of their own
    acc = FSSAccumulator(1, thresholds, scales, (h, w))
    got = acc.add(0, members if m > 1 else members[0], obs, valid)
    assert np.array_equal(got, _reference_sums(members, obs, valid, thresholds, scales))
