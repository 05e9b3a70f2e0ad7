"""Scores against hand-computed tables, the declared conventions, and pysteps."""

from __future__ import annotations

import numpy as np
import pytest

from radarcast.data.units import Units
from radarcast.metrics import (
    ScoreAccumulator,
    bias,
    categorical_scores,
    contingency_counts,
    csi,
    error_sums,
    ets,
    far,
    frame_counts,
    hss,
    pod,
)

CAWCR = np.array([82, 23, 38, 222])  # hits, misses, false alarms, correct negatives


def _grid(values, dtype=np.float32) -> np.ndarray:
    """(1, 1, 1, n) array: one window, one lead, one row of pixels."""
    return np.asarray(values, dtype=dtype).reshape(1, 1, 1, -1)


def test_cawcr_table():
    assert csi(CAWCR) == pytest.approx(0.573426, abs=1e-6)  # CAWCR truncates
    assert hss(CAWCR) == pytest.approx(0.608871, abs=5e-7)
    assert pod(CAWCR) == pytest.approx(82 / 105)
    assert far(CAWCR) == pytest.approx(38 / 120)
    assert bias(CAWCR) == pytest.approx(120 / 105)
    hr = 105 * 120 / 365
    assert ets(CAWCR) == pytest.approx((82 - hr) / (143 - hr))


def test_counts_reproduce_cawcr_table():
    # lay the CAWCR table out as pixels: truth/pred 1 = event at threshold 0.5
    truth = np.array([1] * 82 + [1] * 23 + [0] * 38 + [0] * 222, np.uint8)
    pred = np.array([1] * 82 + [0] * 23 + [1] * 38 + [0] * 222, np.uint8)
    counts = contingency_counts(_grid(pred, np.uint8), _grid(truth, np.uint8), [0.5])
    np.testing.assert_array_equal(counts[0, 0], CAWCR)


def test_perfect_forecast():
    rng = np.random.default_rng(1)
    field = rng.integers(0, 256, (2, 3, 16, 16)).astype(np.float32)
    s = categorical_scores(contingency_counts(field, field, [20.5, 100.5, 200.5]))
    for name in ("csi", "hss", "pod", "bias", "ets"):
        np.testing.assert_allclose(s[name], 1.0)
    np.testing.assert_allclose(s["far"], 0.0)


def test_all_dry_gives_nan_not_zero():
    dry = np.zeros((1, 2, 8, 8), np.float32)
    counts = contingency_counts(dry, dry, [10.0])
    assert np.all(counts[..., 3] == 64)
    assert np.all(np.isnan(csi(counts)))
    assert np.all(np.isnan(pod(counts)))
    assert np.all(np.isnan(far(counts)))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_value_at_threshold_is_an_event(dtype):
    counts = contingency_counts(_grid([74, 73], dtype), _grid([74, 74], dtype), [74.0])
    np.testing.assert_array_equal(counts[0, 0], [1, 1, 0, 0])


def test_float_threshold_compares_exactly():
    # 0.1 is not a float32: 0.1f > 0.1, so it reaches 0.1, the float32 below it does not
    below = np.nextafter(np.float32(0.1), np.float32(0))
    counts = contingency_counts(_grid([0.1, below]), _grid([0.1, 0.1]), [0.1])
    np.testing.assert_array_equal(counts[0, 0], [1, 1, 0, 0])


def test_masked_pixel_counts_nowhere():
    truth, pred = _grid([100, 100, 0]), _grid([100, 0, 100])
    mask = _grid([True, False, False], bool)
    counts = contingency_counts(pred, truth, [50.0], mask)
    np.testing.assert_array_equal(counts[0, 0], [1, 0, 0, 0])
    sums = error_sums(pred, truth, mask)
    assert sums[0, 0, 0] == 1 and sums[0, 0, 1] == 0.0


def test_nan_counts_nowhere():
    truth = _grid([100, np.nan, 100, 0])
    pred = _grid([100, 100, np.nan, 0])
    counts = contingency_counts(pred, truth, [50.0])
    np.testing.assert_array_equal(counts[0, 0], [1, 0, 0, 1])
    sums = error_sums(pred, truth)
    assert sums[0, 0, 0] == 2 and sums[0, 0, 1] == 0.0


def test_pooled_differs_from_mean_of_window_scores():
    # window 0: 1 hit of 1 event (CSI 1); window 1: 1 hit, 3 misses (CSI 0.25)
    truth = np.array([[1, 0, 0, 0], [1, 1, 1, 1]], np.uint8).reshape(2, 1, 1, 4)
    pred = np.array([[1, 0, 0, 0], [1, 0, 0, 0]], np.uint8).reshape(2, 1, 1, 4)
    per_window = csi(frame_counts(pred, truth, [0.5]))[:, 0, 0]
    pooled = csi(contingency_counts(pred, truth, [0.5]))[0, 0]
    np.testing.assert_allclose(per_window, [1.0, 0.25])
    assert pooled == pytest.approx(2 / 5)
    assert pooled != pytest.approx(per_window.mean())


def test_accumulator_merge_equals_one_pass():
    rng = np.random.default_rng(2)
    pred = rng.uniform(0, 255, (6, 3, 12, 12)).astype(np.float32)
    truth = rng.integers(0, 256, (6, 3, 12, 12)).astype(np.uint8)
    mask = rng.random((6, 3, 12, 12)) > 0.1
    thr = [20.5, 90.5, 150.5]
    one = ScoreAccumulator.init(thr, 3, Units())
    one.add(pred, truth, mask)
    a, b = ScoreAccumulator.init(thr, 3, Units()), ScoreAccumulator.init(thr, 3, Units())
    a.add(pred[:2], truth[:2], mask[:2])
    b.add(pred[2:], truth[2:], mask[2:])
    ra, rb = one.compute(), a.merge(b).compute()
    np.testing.assert_array_equal(ra["counts"], rb["counts"])
    for key in ("csi", "hss", "mse", "b_mse", "mae_mmh", "csi_mean_over_leads"):
        np.testing.assert_allclose(ra[key], rb[key], rtol=1e-12)


def test_bootstrap_weights_of_ones_equal_pooled():
    rng = np.random.default_rng(3)
    pred = rng.uniform(0, 255, (4, 2, 8, 8)).astype(np.float32)
    truth = rng.integers(0, 256, (4, 2, 8, 8)).astype(np.uint8)
    acc = ScoreAccumulator.init([100.5], 2)
    acc.add(pred, truth)
    np.testing.assert_array_equal(acc.compute(np.ones(4))["counts"], acc.compute()["counts"])
    doubled = acc.compute(np.array([2, 0, 0, 0]))["counts"]
    np.testing.assert_array_equal(doubled, 2 * acc.counts[0])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_b_mse_weights_on_hand_case(dtype):
    # HKO-7 scale: pixels 50, 100, 130, 150, 170, 200 are 0.13, 0.97, 3.3, 7.3, 16.5,
    # 55.6 mm/h, so their weights are 1, 1, 2, 5, 10, 30; every error is 10 pixels
    truth = _grid([50, 100, 130, 150, 170, 200], dtype)
    pred = truth.astype(np.float32) + 10
    acc = ScoreAccumulator.init([100.5], 1, Units())
    acc.add(pred, truth)
    r = acc.compute()
    weights = np.array([1, 1, 2, 5, 10, 30])
    assert r["mse"][0] == pytest.approx((10 / 255) ** 2)
    assert r["mae"][0] == pytest.approx(10 / 255)
    assert r["b_mse"][0] == pytest.approx(weights.mean() * (10 / 255) ** 2, rel=1e-6)
    assert r["b_mae"][0] == pytest.approx(weights.mean() * 10 / 255, rel=1e-6)


def test_rain_rate_errors_and_no_zr():
    u = Units()
    truth, pred = _grid([100], np.uint8), _grid([130.0])
    acc = ScoreAccumulator.init([50.0], 1, u)
    acc.add(pred, truth)
    diff = u.pixel_to_rain(130) - u.pixel_to_rain(100)
    assert acc.compute()["mae_mmh"][0] == pytest.approx(diff, rel=1e-5)
    no_zr = ScoreAccumulator.init([50.0], 1, None)
    no_zr.add(pred, truth)
    assert np.isnan(no_zr.compute()["b_mse"][0])


def test_thresholds_must_increase():
    with pytest.raises(ValueError, match="strictly increasing"):
        ScoreAccumulator.init([5.0, 2.0], 3)


# ---------------------------------------------------------------------- pysteps
@pytest.fixture
def random_fields():
    """Integer-valued NaN-free fields, thresholds between pixel levels (> and ≥ agree)."""
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 256, (3, 4, 20, 24)).astype(np.float32)
    pred = np.clip(truth + rng.normal(0, 30, truth.shape), 0, 255).round().astype(np.float32)
    return pred, truth, [16.5, 74.5, 133.5, 180.5]


def test_categorical_matches_pysteps(random_fields):
    detcat = pytest.importorskip("pysteps.verification.detcatscores")
    pred, truth, thr = random_fields
    ours = categorical_scores(contingency_counts(pred, truth, thr))
    names = {"csi": "CSI", "hss": "HSS", "pod": "POD", "far": "FAR", "bias": "BIAS", "ets": "ETS"}
    for lead in range(pred.shape[1]):
        for k, t in enumerate(thr):
            for ours_name, theirs_name in names.items():
                theirs = detcat.det_cat_fct(pred[:, lead], truth[:, lead], t, [ours_name])
                assert ours[ours_name][lead, k] == pytest.approx(theirs[theirs_name], rel=1e-10)


def test_continuous_matches_pysteps(random_fields):
    detcont = pytest.importorskip("pysteps.verification.detcontscores")
    pred, truth, _ = random_fields
    acc = ScoreAccumulator.init([100.5], pred.shape[1], Units())
    acc.add(pred, truth)
    r = acc.compute()
    for lead in range(pred.shape[1]):
        theirs = detcont.det_cont_fct(pred[:, lead] / 255, truth[:, lead] / 255, ["MSE", "MAE"])
        assert r["mse"][lead] == pytest.approx(theirs["MSE"], rel=1e-6)
        assert r["mae"][lead] == pytest.approx(theirs["MAE"], rel=1e-6)
