"""Ensemble and spatial scores against pysteps' own implementations on shared random cases."""

from __future__ import annotations

import numpy as np
import pytest

from radarcast.verification.ensemble import EnsembleAccumulator
from radarcast.verification.spatial import FSSAccumulator, check_scales

pv = pytest.importorskip("pysteps.verification")
THR = (0.5, 2.0, 5.0)


def _case(seed: int, m: int = 9, h: int = 37, w: int = 45):
    rng = np.random.default_rng(seed)
    ens = rng.gamma(0.6, 3.0, (m, h, w)).astype(np.float32)
    obs = rng.gamma(0.6, 3.0, (h, w)).astype(np.float32)
    obs[5, 7] = np.nan  # one unknown observation: excluded everywhere
    return ens, obs


def _probability(ens, obs, t):
    p = np.mean(ens >= t, axis=0).astype(np.float64)
    p[~np.isfinite(obs)] = np.nan
    return p


@pytest.mark.parametrize("seed", [0, 1])
def test_crps_matches_pysteps(seed):
    ens, obs = _case(seed)
    acc = EnsembleAccumulator(1, len(ens), THR)
    acc.add(0, ens, obs)
    assert acc.crps()[0] == pytest.approx(pv.probscores.CRPS(ens, obs), abs=1e-6)


def test_perfect_ensemble_has_zero_crps_and_identical_members_give_mae():
    _, obs = _case(2)
    perfect = np.repeat(obs[None], 5, axis=0)
    acc = EnsembleAccumulator(1, 5, THR)
    acc.add(0, perfect, obs)
    assert acc.crps()[0] == 0.0
    rng = np.random.default_rng(3)
    one = rng.gamma(0.6, 3.0, obs.shape).astype(np.float32)
    same = EnsembleAccumulator(1, 4, THR)
    same.add(0, np.repeat(one[None], 4, axis=0), obs)
    det = EnsembleAccumulator(1, 1, THR)
    det.add(0, one[None], obs)
    mae = np.nanmean(np.abs(one - obs))
    assert same.crps()[0] == pytest.approx(mae, rel=1e-6)
    assert det.crps()[0] == pytest.approx(mae, rel=1e-6)


def test_reliability_and_roc_match_pysteps():
    ens, obs = _case(4)
    acc = EnsembleAccumulator(1, len(ens), THR)
    acc.add(0, ens, obs)
    rel_p, rel_o, _ = acc.reliability(n_bins=10, min_count=10)
    pofd, pod, area = acc.roc(np.linspace(0.0, 1.0, 10))
    for j, t in enumerate(THR):
        p = _probability(ens, obs, t)
        r, f = pv.probscores.reldiag(p, obs, t, n_bins=10, min_count=10)
        np.testing.assert_allclose(rel_p[0, j], r, atol=1e-6)
        np.testing.assert_allclose(rel_o[0, j], f, atol=1e-6)
        x, y, a = pv.probscores.ROC_curve(p, obs, t, n_prob_thrs=10, compute_area=True)
        np.testing.assert_allclose(pofd[0, j], x, atol=1e-6)
        np.testing.assert_allclose(pod[0, j], y, atol=1e-6)
        assert area[0, j] == pytest.approx(a, abs=1e-6)


def test_brier_is_the_mean_squared_probability_error():
    ens, obs = _case(5)
    acc = EnsembleAccumulator(1, len(ens), THR)
    acc.add(0, ens, obs)
    for j, t in enumerate(THR):
        p = _probability(ens, obs, t)
        o = (obs >= t).astype(float)
        ok = np.isfinite(p)
        assert acc.brier()[0, j] == pytest.approx(np.mean((p[ok] - o[ok]) ** 2), abs=1e-12)


def test_rank_histogram_matches_pysteps_without_ties():
    ens, obs = _case(6)
    acc = EnsembleAccumulator(1, len(ens), THR)
    acc.add(0, ens, obs)
    expect = pv.ensscores.rankhist(ens, obs, normalize=False)
    np.testing.assert_array_equal(acc.rank_histogram(normalize=False)[0], expect)


def test_rank_histogram_with_x_min_agrees_with_pysteps_in_distribution():
    """Below X_min values tie and pysteps splits ties at random: compare the dry-free bins
    exactly is impossible, so compare totals exactly and shares to sampling noise."""
    rng = np.random.default_rng(7)
    ens = np.where(rng.random((9, 80, 80)) < 0.5, 0.0, rng.gamma(0.6, 3.0, (9, 80, 80)))
    obs = np.where(rng.random((80, 80)) < 0.5, 0.0, rng.gamma(0.6, 3.0, (80, 80)))
    acc = EnsembleAccumulator(1, 9, THR, rank_min=0.1)
    acc.add(0, ens, obs, rng=np.random.default_rng(0))
    ours = acc.rank_histogram(normalize=False)[0]
    theirs = pv.ensscores.rankhist(ens, obs, X_min=0.1, normalize=False)
    assert ours.sum() == theirs.sum()
    np.testing.assert_allclose(ours / ours.sum(), theirs / theirs.sum(), atol=0.03)


def test_accumulators_merge_by_addition_bit_identically():
    ens, obs = _case(8)
    ens2, obs2 = _case(9)
    whole = EnsembleAccumulator(2, len(ens), THR, rank_min=0.5)
    part_a = EnsembleAccumulator(2, len(ens), THR, rank_min=0.5)
    part_b = EnsembleAccumulator(2, len(ens), THR, rank_min=0.5)
    for acc, lead, e, o in (
        (whole, 0, ens, obs),
        (whole, 1, ens2, obs2),
        (part_a, 0, ens, obs),
        (part_b, 1, ens2, obs2),
    ):
        acc.add(lead, e, o, rng=np.random.default_rng(lead))
    merged = part_a.merge(part_b)
    np.testing.assert_array_equal(merged.sums, whole.sums)
    np.testing.assert_array_equal(merged.table, whole.table)
    np.testing.assert_array_equal(merged.ranks, whole.ranks)


def test_spread_skill_of_a_reliable_ensemble_is_near_sqrt_m_over_m_plus_one():
    rng = np.random.default_rng(10)
    truth_and_members = rng.normal(size=(11, 200, 200)).astype(np.float32)
    acc = EnsembleAccumulator(1, 10, THR)
    acc.add(0, truth_and_members[1:], truth_and_members[0])
    assert acc.spread_skill()[0] == pytest.approx(np.sqrt(10 / 11), abs=0.01)


@pytest.mark.parametrize("scales", [(1, 2, 3, 4, 8, 16), (5, 32)])
def test_fss_matches_pysteps(scales):
    ens, obs = _case(11, h=48, w=40)
    fct = ens[0].copy()
    fct[5, 7] = np.nan  # unknown where the observation is: both conventions agree
    acc = FSSAccumulator(1, THR, scales, obs.shape)
    acc.add(0, fct, obs)
    expect = [[pv.spatialscores.fss(fct, obs, t, s) for s in scales] for t in THR]
    np.testing.assert_allclose(acc.fss()[0], expect, atol=1e-6)


def test_fss_of_a_perfect_forecast_is_one_and_probabilities_reduce_to_binary():
    ens, obs = _case(12)
    acc = FSSAccumulator(1, THR, (1, 4), obs.shape)
    acc.add(0, obs, obs)
    np.testing.assert_allclose(acc.fss()[0], 1.0)
    single = FSSAccumulator(1, THR, (1, 4), obs.shape)
    single.add(0, np.repeat(ens[:1], 3, axis=0), obs)  # 3 identical members
    det = FSSAccumulator(1, THR, (1, 4), obs.shape)
    det.add(0, ens[0], obs)
    np.testing.assert_allclose(single.fss(), det.fss(), rtol=1e-12)


@pytest.mark.parametrize("top", [3, 255, 1024, 20480, 2**16 - 1, 2**20])
def test_fss_integer_dot_is_exact_at_every_width_of_type(top):
    # _dot sums rows in uint16/uint32 when a row's sum fits: arrays at their largest value,
    # and wide enough that a row's sum crosses each type's limit, against Python integers
    from radarcast.verification.spatial import _dot

    rng = np.random.default_rng(top)
    dtype = np.uint16 if top < 2**16 else np.uint32
    for width in (1, 7, 2**16 // (top * top) + 1, 2**32 // (top * top) + 1, 700):
        width = int(min(width, 5000))
        a = np.full((3, width), top, dtype)
        b = rng.integers(0, top + 1, (3, width)).astype(dtype)
        b[0] = top
        exact = sum(int(x) * int(y) for x, y in zip(a.ravel(), b.ravel(), strict=True))
        assert _dot(a, b, top) == exact, (top, width)
        assert _dot(a[:, ::2], a[:, ::2], top) == top * top * a[:, ::2].size  # a strided view


def test_fss_scale_larger_than_the_grid_is_refused():
    with pytest.raises(ValueError, match="larger than the 20x30 grid"):
        check_scales((1, 21), (20, 30))


def test_report_rows_json_and_plots(tmp_path):
    from radarcast.verification.report import (
        ProbabilisticScores,
        plot_fss,
        plot_rank_histograms,
        plot_reliability,
    )

    ens, obs = _case(13, m=4)
    scores = {
        "ens": ProbabilisticScores.init(4, 2, THR, (1, 4), obs.shape),
        "det": ProbabilisticScores.init(None, 2, THR, (1, 4), obs.shape),
    }
    for lead in range(2):
        scores["ens"].add(lead, ens, obs, None, None, np.random.default_rng(lead))
        scores["det"].add(lead, ens[:1], obs, None, None, np.random.default_rng(lead))
    doc = scores["ens"].doc()
    assert doc["members"] == 4 and set(doc["per_lead"]["fss"]) == {"mean", "probability"}
    assert set(scores["det"].doc()["per_lead"]["fss"]) == {"deterministic"}
    rows = list(scores["ens"].rows("ens", [5.0, 10.0], THR, "mmh", "mm/h", (1, 4)))
    metrics = {r[4] for r in rows}
    assert {"crps", "brier", "roc_area", "fss_probability_4px", "rank_flatness"} <= metrics
    labels = [f"{t} mm/h" for t in THR]
    for name, fn in (("r.png", lambda p: plot_reliability(scores, labels, p)),
                     ("h.png", lambda p: plot_rank_histograms(scores, p)),
                     ("f.png", lambda p: plot_fss(scores, labels, (1, 4), p))):  # fmt: skip
        fn(tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ensemble_fss_of_identical_members_is_pysteps_fss_of_that_member():
    # radarcast's ensemble FSS takes F = window mean of k/M; with M identical members k/M is
    # 0 or 1, so it must be pysteps' deterministic FSS of the one member
    ens, obs = _case(14, m=5, h=48, w=40)
    member = ens[0].copy()
    member[5, 7] = np.nan  # unknown where the observation is (both conventions agree there)
    scales = (1, 3, 8)
    acc = FSSAccumulator(1, THR, scales, obs.shape)
    acc.add(0, np.repeat(member[None], 4, axis=0), obs)
    expect = [[pv.spatialscores.fss(member, obs, t, s) for s in scales] for t in THR]
    np.testing.assert_allclose(acc.fss()[0], expect, atol=1e-6)


def test_probability_fss_is_not_pysteps_ensemble_skill_fss():
    # pysteps' ensscores.ensemble_skill(metric="FSS") is the mean of per-member FSS; ours is
    # the FSS of the probability field (docs/metrics.md): different numbers on a real spread
    ens, obs = _case(11, h=48, w=40)
    obs = np.nan_to_num(obs)
    scales = (1, 4, 8)
    acc = FSSAccumulator(1, THR, scales, obs.shape)
    acc.add(0, ens, obs)
    theirs = [[pv.ensscores.ensemble_skill(ens, obs, "FSS", thr=t, scale=s) for s in scales]
              for t in THR]  # fmt: skip
    assert np.all(np.abs(acc.fss()[0] - np.array(theirs)) > 1e-3)


def test_report_rows_hold_reliability_rank_histogram_and_means():
    from radarcast.verification.report import ProbabilisticScores

    ens, obs = _case(15, m=4)
    s = ProbabilisticScores.init(4, 2, THR, (1, 4), obs.shape, value_unit="mmh")
    for lead in range(2):
        s.add(lead, ens, obs, None, None, np.random.default_rng(lead))
    rows = list(s.rows("ens", [5.0, 10.0], THR, "mm/h", "mm/h", (1, 4)))
    get = {(r[1], r[2], r[3], r[4]): r[5] for r in rows}
    doc = s.doc()
    rel = doc["per_lead"]["reliability"]
    for name in ("mean_probability", "observed_frequency", "count"):  # lead 2, threshold 2
        got = [get[(10.0, THR[1], "mm/h", f"reliability_bin{b}_{name}")] for b in range(10)]
        want = [np.nan if v is None else v for v in rel[name][1][1]]
        np.testing.assert_allclose(np.array(got, dtype=float), want)
    assert sum(get[(10.0, THR[1], "mm/h", f"reliability_bin{b}_count")] for b in range(10)) > 0
    counts = doc["per_lead"]["rank_histogram"][0]
    assert [get[(5.0, "", "count", f"rank_{r}_count")] for r in range(5)] == counts
    freq = [get[(5.0, "", "fraction", f"rank_{r}_frequency")] for r in range(5)]
    np.testing.assert_allclose(freq, np.array(counts) / sum(counts))
    mean = doc["mean_over_leads"]
    assert get[("mean", THR[2], "mm/h", "brier")] == pytest.approx(mean["brier"][2])
    assert get[("mean", THR[0], "mm/h", "roc_area")] == pytest.approx(mean["roc_area"][0])
    assert get[("mean", THR[1], "mm/h", "fss_probability_4px")] == pytest.approx(
        mean["fss"]["probability"][1][1])
    assert get[("mean", "", "ratio", "spread_skill")] == pytest.approx(mean["spread_skill"])
    assert "in mm/h" in doc["conventions"]["crps"]
    assert "window mean of k/M" in doc["conventions"]["fss"]
