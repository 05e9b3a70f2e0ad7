"""Bootstrap intervals of FSS, CRPS and Brier from per-window sums: the same resamples as
CSI/HSS, a known case worked by hand, estimates inside their intervals, and a method
differenced with itself giving exactly 0."""

from __future__ import annotations

import copy

import numpy as np

from radarcast.evaluation.bootstrap import bootstrap_intervals, probabilistic_bootstrap
from radarcast.evaluation.outputs import MethodScores
from radarcast.metrics import ScoreAccumulator
from radarcast.verification.report import ProbabilisticScores

THR = [1.0]


def _scored(name, preds, truths, members=None, scales=(1,), starts=None):
    """MethodScores of windows (W, [M,] L, H, W) against truths (W, L, H, W), as evaluate
    scores them (counts per window; probabilistic sums per window by window start)."""
    w, n_leads = truths.shape[:2]
    starts = np.arange(w) if starts is None else np.asarray(starts)
    acc = ScoreAccumulator.init(THR, n_leads)
    prob = ProbabilisticScores.init(members, n_leads, THR, scales, truths.shape[-2:])
    for b, s in enumerate(starts):
        ens = preds[b] if members else preds[b][None]
        mean = ens.mean(axis=0)
        acc.add(mean[None], truths[b][None], window_ids=[int(s)])
        for lead in range(n_leads):
            prob.add(lead, ens[:, lead], truths[b, lead], None, None,
                     np.random.default_rng([int(s), lead]), window=int(s))
    return MethodScores(name, "test", {}, acc, prob=prob)


def test_known_case_worked_by_hand():
    """4×4 grid, scale 1, one lead. Window A: the forecast hits the one observed event
    pixel (FSS 1, CRPS 0, Brier 0). Window B: it forecasts an event at (0, 0), observed at
    (1, 1) (Σ F·O 0, Σ F² 1, Σ O² 1: FSS 0; two pixels wrong by 1: CRPS = Brier = 2/16).
    Resamples AA, BB and AB then give FSS 1, 0, 1 − 2/4; CRPS and Brier 0, 2/16, 2/32."""
    truth = np.zeros((2, 1, 4, 4), np.float32)
    pred = np.zeros_like(truth)
    truth[0, 0, 2, 2] = pred[0, 0, 2, 2] = 1.0
    pred[1, 0, 0, 0] = truth[1, 0, 1, 1] = 1.0
    m = _scored("m", pred, truth)
    sums = m.prob.window_sums()
    assert sums["fss"].shape == (2, 1, 1, 1, 3)
    np.testing.assert_array_equal(sums["fss"][:, 0, 0, 0], [[1, 1, 1], [0, 1, 1]])
    samples = probabilistic_bootstrap(sums, np.array([[2, 0], [0, 2], [1, 1]]))
    np.testing.assert_allclose(samples["fss"][:, 0, 0], [1.0, 0.0, 0.5])
    np.testing.assert_allclose(samples["crps"], [0.0, 2 / 16, 2 / 32])
    np.testing.assert_allclose(samples["brier"][:, 0], [0.0, 2 / 16, 2 / 32])
    # all windows once: the pooled scores that evaluate reports
    one = probabilistic_bootstrap(sums, np.ones((1, 2)))
    np.testing.assert_allclose(one["fss"][0], m.prob.fss["deterministic"].fss()[0])
    np.testing.assert_allclose(one["crps"][0], m.prob.ens.crps()[0])
    np.testing.assert_allclose(one["brier"][0], m.prob.ens.brier()[0])


def _random_methods(rng, n_win=30, n_leads=3, size=16, members=5):
    truth = (rng.gamma(0.6, 2.0, (n_win, n_leads, size, size))).astype(np.float32)
    det = np.clip(truth + rng.normal(0, 1.0, truth.shape), 0, None).astype(np.float32)
    ens = np.clip(truth[:, None] + rng.normal(0, 1.5, (n_win, members, *truth.shape[1:])),
                  0, None).astype(np.float32)
    starts = np.arange(n_win) * 2  # ids are window starts, not positions
    scales = (1, 4)
    return [_scored("persistence", det, truth, scales=scales, starts=starts),
            _scored("ens", ens, truth, members=members, scales=scales, starts=starts)], starts


def test_intervals_contain_the_estimates_and_pair_with_the_reference():
    methods, starts = _random_methods(np.random.default_rng(0))
    boot = bootstrap_intervals(methods, 400, seed=1, starts=starts,
                               segments=np.zeros(len(starts)), length=4, unit="block")
    for m in methods:
        entry = boot["methods"][m.name]
        kind = m.prob.fss_kind
        est = {"fss": np.nanmean(m.prob.fss[kind].fss(), axis=0),
               "crps": np.nanmean(m.prob.ens.crps()), "brier": np.nanmean(m.prob.ens.brier(), 0)}
        for score, value in est.items():
            lo, hi = np.asarray(entry[score]["low"]), np.asarray(entry[score]["high"])
            assert lo.shape == np.shape(value)
            assert np.all(lo <= value + 1e-12) and np.all(value <= hi + 1e-12), score
            assert np.all(hi > lo), score  # resamples of 30 windows: a real width
    d = boot["methods"]["ens"]
    for score in ("fss", "crps", "brier"):
        assert f"{score}_minus_persistence" in d
    # the ensemble beats the noisier single forecast on CRPS, and the interval says so
    assert d["crps_minus_persistence"]["high"] < 0


def test_a_method_differenced_with_itself_is_exactly_zero():
    methods, starts = _random_methods(np.random.default_rng(2))
    twin = copy.deepcopy(methods[1])
    twin.name = "twin"
    boot = bootstrap_intervals([*methods, twin], 200, seed=3, against=("ens",), starts=starts,
                               segments=np.zeros(len(starts)), length=4, unit="block")
    d = boot["methods"]["twin"]
    for score in ("fss", "crps", "brier", "csi", "hss"):
        for side in ("low", "high"):
            a = np.asarray(d[f"{score}_minus_ens"][side], dtype=float)
            assert np.all(a[np.isfinite(a)] == 0.0), score


def test_sums_without_window_ids_give_no_probabilistic_interval():
    """Frames added without a window id (older callers) keep pooled sums only: CSI/HSS
    intervals as before, none of FSS/CRPS/Brier (rather than a wrong pairing)."""
    methods, starts = _random_methods(np.random.default_rng(4), n_win=6)
    for m in methods:
        m.prob.window_ids, m.prob._per_window = [], []
    boot = bootstrap_intervals(methods, 50, starts=starts, segments=np.zeros(len(starts)),
                               length=4, unit="block")
    assert "csi" in boot["methods"]["ens"] and "fss" not in boot["methods"]["ens"]
