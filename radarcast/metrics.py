"""Verification scores for pixel-grid nowcasts, under one declared set of conventions.

Conventions (docs/metrics.md):

- an event is ``value ≥ threshold``;
- a pixel that is masked, or NaN in the truth or the prediction, is in none of the four
  contingency cells and in no error sum;
- any score whose denominator is 0 is NaN;
- counts and error sums are pooled over windows for each lead time; the mean over lead
  times is derived from the per-lead scores and labelled as such;
- MSE/MAE are per-pixel means, in pixel/255 and in mm/h; B-MSE/B-MAE (HKO-7) are per-pixel
  means of weighted errors in pixel/255, the weights taken from the truth's rain rate.

Everything is vectorised over thresholds: one pass over a frame computes each pixel's
*level* (how many thresholds it reaches) for truth and prediction, and one ``np.bincount``
of the joint (truth level, prediction level) code gives the contingency table of every
threshold at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from radarcast.data.units import Units

CELLS = ("hits", "misses", "false_alarms", "correct_negatives")
CATEGORICAL = ("csi", "hss", "pod", "far", "ets", "bias")
CONTINUOUS = ("mse", "mae", "mse_mmh", "mae_mmh", "b_mse", "b_mae")
# columns of the per-window error sums
_SUMS = ("n", "se", "ae", "se_mmh", "ae_mmh", "bse", "bae")
B_EDGES_MMH = (0.5, 2.0, 5.0, 10.0, 30.0)
B_WEIGHTS = (1.0, 1.0, 2.0, 5.0, 10.0, 30.0)


# ---------------------------------------------------------------------- scores from counts
def _ratio(num, den) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    return np.divide(num, den, out=out, where=den != 0)


def _cells(counts):
    c = np.asarray(counts, dtype=np.float64)
    return c[..., 0], c[..., 1], c[..., 2], c[..., 3]


def csi(counts) -> np.ndarray:
    """Critical success index H / (H + M + F) over counts (..., 4)."""
    h, m, f, _ = _cells(counts)
    return _ratio(h, h + m + f)


def pod(counts) -> np.ndarray:
    """Probability of detection H / (H + M)."""
    h, m, _, _ = _cells(counts)
    return _ratio(h, h + m)


def far(counts) -> np.ndarray:
    """False alarm ratio F / (H + F)."""
    h, _, f, _ = _cells(counts)
    return _ratio(f, h + f)


def bias(counts) -> np.ndarray:
    """Frequency bias (H + F) / (H + M)."""
    h, m, f, _ = _cells(counts)
    return _ratio(h + f, h + m)


def hss(counts) -> np.ndarray:
    """Heidke skill score 2(HR − MF) / ((H+M)(M+R) + (H+F)(F+R))."""
    h, m, f, r = _cells(counts)
    return _ratio(2.0 * (h * r - m * f), (h + m) * (m + r) + (h + f) * (f + r))


def ets(counts) -> np.ndarray:
    """Equitable threat score (GSS) (H − Hr) / (H + M + F − Hr), Hr = (H+M)(H+F)/N."""
    h, m, f, r = _cells(counts)
    hr = _ratio((h + m) * (h + f), h + m + f + r)
    return _ratio(h - hr, h + m + f - hr)


SCORES = {"csi": csi, "hss": hss, "pod": pod, "far": far, "ets": ets, "bias": bias}
"""Categorical scores by name: each maps counts (..., 4) to a float64 array (...)."""


def categorical_scores(counts) -> dict[str, np.ndarray]:
    """Every categorical score of counts (..., 4): hits, misses, false alarms, correct negatives."""
    return {name: fn(counts) for name, fn in SCORES.items()}


# ---------------------------------------------------------------------- per-pixel levels
def _levels(v: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """uint8 array shaped like ``v``: how many of the ascending ``thresholds`` ``v`` reaches.

    Exact ``v ≥ t`` for uint8 and float32 input without a float64 copy: uint8 compares
    with ceil(t); float32 with the smallest float32 not below t.
    """
    lev = np.zeros(v.shape, dtype=np.uint8)
    for t in thresholds:
        if v.dtype == np.uint8:
            tk = int(np.ceil(t)) if np.isfinite(t) else (-1 if t < 0 else 256)
            if tk > 255:
                continue
            if tk <= 0:
                lev += 1
                continue
            np.add(lev, v >= np.uint8(tk), out=lev, casting="unsafe")
        else:
            np.add(lev, v >= _f32_at_least(t, v.dtype), out=lev, casting="unsafe")
    return lev


def _f32_at_least(t: float, dtype) -> np.floating:
    """The smallest value of ``dtype`` that is ≥ t, so ``v ≥ it`` ⇔ ``v ≥ t`` exactly."""
    tt = dtype.type(t)
    if float(tt) < t:
        tt = np.nextafter(tt, dtype.type(np.inf))
    return tt


def _as_grid(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.uint8 or a.dtype == np.float32:
        return a
    return a.astype(np.float32)


def _validity(pred: np.ndarray, truth: np.ndarray, mask) -> np.ndarray | None:
    """bool (same shape) of pixels that count, or None when all do."""
    valid = None
    for a in (pred, truth):
        if a.dtype != np.uint8:
            fin = np.isfinite(a)
            valid = fin if valid is None else np.logical_and(valid, fin, out=valid)
    if mask is not None:
        m = np.broadcast_to(np.asarray(mask, dtype=bool), pred.shape)
        valid = m.copy() if valid is None else np.logical_and(valid, m, out=valid)
    return valid


def _joint_to_counts(joint: np.ndarray, k: int) -> np.ndarray:
    """(..., K+1, K+1) joint histogram of (truth level, pred level) → (..., K, 4) counts."""
    s = joint[..., ::-1, ::-1].cumsum(-2).cumsum(-1)[..., ::-1, ::-1]  # s[i, j] = #(lt ≥ i, lp ≥ j)
    idx = np.arange(1, k + 1)
    hits = s[..., idx, idx]
    obs = s[..., idx, 0]
    fct = s[..., 0, idx]
    n = s[..., :1, 0]
    return np.stack([hits, obs - hits, fct - hits, n - obs - fct + hits], axis=-1)


def contingency_counts(pred, truth, thresholds, mask=None) -> np.ndarray:
    """Contingency counts of every lead and threshold, pooled over the batch.

    Parameters
    ----------
    pred, truth
        (B, L, H, W) pixels (uint8 or float; NaN = invalid).
    thresholds
        (K,) ascending thresholds in the same units as the pixels; event = value ≥ threshold.
    mask
        bool, broadcastable to (B, L, H, W): True where a pixel counts.

    Returns
    -------
    (L, K, 4) int64: hits, misses, false alarms, correct negatives.
    """
    return frame_counts(pred, truth, thresholds, mask).sum(axis=0)


def frame_counts(pred, truth, thresholds, mask=None) -> np.ndarray:
    """Like :func:`contingency_counts` but per window: (B, L, K, 4) int64."""
    pred, truth = _as_grid(pred), _as_grid(truth)
    if pred.shape != truth.shape or pred.ndim != 4:
        raise ValueError(f"pred, truth must be (B, L, H, W), got {pred.shape}, {truth.shape}")
    thr = np.sort(np.asarray(thresholds, dtype=np.float64))
    k = len(thr)
    nb = (k + 1) ** 2
    b, n_l = pred.shape[:2]
    out = np.zeros((b, n_l, k, 4), dtype=np.int64)
    for lead in range(n_l):  # one lead at a time: temporaries of B frames
        p, t = pred[:, lead], truth[:, lead]
        m = None if mask is None else np.broadcast_to(mask, pred.shape)[:, lead]
        out[:, lead] = _slab_counts(p, t, m, thr, nb)
    return out


def _slab_counts(p, t, m, thr, nb) -> np.ndarray:
    k = len(thr)
    code = _levels(t, thr)
    code *= k + 1
    code += _levels(p, thr)  # (B, H, W) = truth level·(K+1) + pred level
    valid = _validity(p, t, m)
    if valid is not None:
        code[~valid] = nb  # the one bin that no cell reads
    joint = np.stack([np.bincount(c.ravel(), minlength=nb + 1)[:nb] for c in code])
    return _joint_to_counts(joint.reshape(-1, k + 1, k + 1), k)


# ---------------------------------------------------------------------- continuous errors
def _rain_coeffs(units: Units | None) -> tuple[float, float] | None:
    """(α, β) with R = exp(α·p + β) mm/h, or None without a Z–R relation."""
    if units is None or not units.has_zr:
        return None
    ln10 = np.log(10.0)
    alpha = units.dbz_gain * ln10 / 10.0 / units.zr_b
    beta = (units.dbz_offset * ln10 / 10.0 - np.log(units.zr_a)) / units.zr_b
    return float(alpha), float(beta)


def _rain(v: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """float32 rain rate exp(α·p + β) mm/h of pixels ``v``."""
    r = np.multiply(v, np.float32(alpha), dtype=np.float32)
    r += np.float32(beta)
    return np.exp(r, out=r)


def _b_weights(t: np.ndarray, units: Units) -> np.ndarray:
    """float32 HKO-7 weights of truth pixels ``t`` (1, 1, 2, 5, 10, 30 by rain rate)."""
    weights = np.asarray(B_WEIGHTS, dtype=np.float32)
    edges = units.rain_to_pixel(B_EDGES_MMH)
    if t.dtype == np.uint8:  # a 256-entry table: one gather, no comparisons
        table = weights[_levels(np.arange(256, dtype=np.uint8), edges)]
        return np.take(table, t)
    return np.take(weights, _levels(t, edges))


def _sum(a: np.ndarray) -> np.ndarray:
    """(B,) float64 sums over the last two axes of (B, H, W)."""
    return a.reshape(len(a), -1).sum(axis=1, dtype=np.float64)


def _error_sums(p, t, m, units: Units | None) -> np.ndarray:
    """(B, 7) float64 sums over one lead's (B, H, W) slab: see ``_SUMS``."""
    valid = _validity(p, t, m)
    b = p.shape[0]
    out = np.full((b, len(_SUMS)), np.nan)
    e = np.subtract(p, t, dtype=np.float32)  # pixels
    if valid is not None:
        np.copyto(e, 0.0, where=~valid)
        out[:, 0] = np.count_nonzero(valid.reshape(b, -1), axis=1)
    else:
        out[:, 0] = p[0].size
    ae = np.abs(e)
    out[:, 2] = _sum(ae) / 255.0
    e *= e
    out[:, 1] = _sum(e) / 255.0**2
    coeffs = _rain_coeffs(units)
    if coeffs is None:
        return out
    w = _b_weights(t, units)
    ae *= w
    e *= w
    out[:, 5] = _sum(e) / 255.0**2
    out[:, 6] = _sum(ae) / 255.0
    er = _rain(p, *coeffs)
    er -= _rain(t, *coeffs)  # mm/h
    if valid is not None:
        np.copyto(er, 0.0, where=~valid)
    out[:, 4] = _sum(np.abs(er, out=e))
    er *= er
    out[:, 3] = _sum(er)
    return out


def error_sums(pred, truth, mask=None, units: Units | None = None) -> np.ndarray:
    """Per-window, per-lead error sums (B, L, 7) float64.

    Columns: valid pixels; Σe² and Σ|e| in pixel/255; Σe² and Σ|e| in mm/h; HKO-7-weighted
    Σw·e² and Σw·|e| in pixel/255 (w from the truth's rain rate). The mm/h and weighted
    columns are NaN when ``units`` has no Z–R relation.
    """
    pred, truth = _as_grid(pred), _as_grid(truth)
    b, n_l = pred.shape[:2]
    out = np.zeros((b, n_l, len(_SUMS)))
    for lead in range(n_l):
        m = None if mask is None else np.broadcast_to(mask, pred.shape)[:, lead]
        out[:, lead] = _error_sums(pred[:, lead], truth[:, lead], m, units)
    return out


def continuous_scores(sums) -> dict[str, np.ndarray]:
    """Per-pixel means from pooled sums (..., 7): MSE/MAE (pixel/255, mm/h), B-MSE/B-MAE."""
    s = np.asarray(sums, dtype=np.float64)
    n = s[..., 0]
    return {name: _ratio(s[..., i + 1], n) for i, name in enumerate(CONTINUOUS)}


# ---------------------------------------------------------------------- streaming accumulator
@dataclass
class ScoreAccumulator:
    """Streaming scores over windows: ``init`` → ``add`` batch by batch → ``merge`` → ``compute``.

    Keeps only per-window, per-lead counts (W, L, K, 4) and error sums (W, L, 7): a few
    hundred bytes a window, so bootstrap intervals need no second pass over the data.

    Attributes
    ----------
    thresholds
        (K,) ascending thresholds in pixels.
    n_leads
        L, lead times per window.
    units
        The dataset's pixel scale (for mm/h errors and B-MSE weights), or None.
    """

    thresholds: np.ndarray
    n_leads: int
    units: Units | None = None
    window_ids: list = field(default_factory=list)
    _counts: list = field(default_factory=list, repr=False)
    _sums: list = field(default_factory=list, repr=False)

    @classmethod
    def init(cls, thresholds, n_leads: int, units: Units | None = None) -> ScoreAccumulator:
        thr = np.asarray(thresholds, dtype=np.float64)
        if thr.ndim != 1 or len(thr) == 0 or np.any(np.diff(thr) <= 0) or np.any(np.isnan(thr)):
            raise ValueError(f"thresholds must be a strictly increasing 1-D list, got {thr}")
        return cls(thr, int(n_leads), units)

    def add(self, pred, truth, mask=None, window_ids=None) -> None:
        """Score a batch: pred/truth (B, L, H, W) pixels, mask bool broadcastable (True = valid)."""
        pred, truth = _as_grid(pred), _as_grid(truth)
        if pred.ndim != 4 or pred.shape != truth.shape or pred.shape[1] != self.n_leads:
            raise ValueError(
                f"expected pred, truth (B, {self.n_leads}, H, W), got {pred.shape}, {truth.shape}"
            )
        self._counts.append(frame_counts(pred, truth, self.thresholds, mask))
        self._sums.append(error_sums(pred, truth, mask, self.units))
        n = len(self.window_ids)
        ids = range(n, n + len(pred)) if window_ids is None else window_ids
        self.window_ids.extend(int(i) for i in ids)

    def merge(self, other: ScoreAccumulator) -> ScoreAccumulator:
        """A new accumulator holding both sets of windows (same thresholds and leads)."""
        if not np.array_equal(self.thresholds, other.thresholds) or self.n_leads != other.n_leads:
            raise ValueError("cannot merge accumulators with different thresholds or lead counts")
        out = ScoreAccumulator(self.thresholds, self.n_leads, self.units)
        out.window_ids = self.window_ids + other.window_ids
        out._counts = [self.counts, other.counts]
        out._sums = [self.sums, other.sums]
        return out

    @property
    def counts(self) -> np.ndarray:
        """(W, L, K, 4) int64 per-window counts."""
        k = len(self.thresholds)
        if not self._counts:
            return np.zeros((0, self.n_leads, k, 4), np.int64)
        return np.concatenate(self._counts)

    @property
    def sums(self) -> np.ndarray:
        """(W, L, 7) float64 per-window error sums."""
        return np.concatenate(self._sums) if self._sums else np.zeros((0, self.n_leads, len(_SUMS)))

    def compute(self, weights=None) -> dict[str, np.ndarray]:
        """Scores from counts pooled over windows.

        Parameters
        ----------
        weights
            Optional (W,) multiplicity of each window (a bootstrap resample).

        Returns
        -------
        dict with 'counts' (L, K, 4) int64; each categorical score (L, K); each continuous
        score (L,); and '<score>_mean_over_leads' ((K,) or scalar: NaN-skipping mean of the
        per-lead scores).
        """
        counts, sums = self.counts, self.sums
        if weights is not None:
            w = np.asarray(weights)
            counts = np.tensordot(w, counts, axes=(0, 0))
            sums = np.tensordot(w, sums, axes=(0, 0))
        else:
            counts, sums = counts.sum(axis=0), sums.sum(axis=0)
        out: dict[str, np.ndarray] = {"counts": counts}
        out.update(categorical_scores(counts))
        out.update(continuous_scores(sums))
        for name in (*CATEGORICAL, *CONTINUOUS):
            out[f"{name}_mean_over_leads"] = nanmean(out[name], axis=0)
        return out


def nanmean(a, axis=0) -> np.ndarray:
    """Mean skipping NaN; all-NaN gives NaN without a warning."""
    a = np.asarray(a, dtype=np.float64)
    n = np.isfinite(a).sum(axis=axis)
    return _ratio(np.nansum(a, axis=axis), n)
