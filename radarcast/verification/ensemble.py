"""Ensemble verification accumulated per lead time: CRPS, Brier score, reliability, ROC,
rank histogram and spread–skill, from one pass over the members of each frame.

Conventions:

- an event is ``value ≥ threshold``; the forecast probability of a pixel is k/M, the
  fraction of its M members that reach the threshold;
- a pixel counts only where the observation and every member are finite and the mask is
  True; sums are pooled over all windows of a lead (no per-window averaging);
- CRPS is that of the ensemble's empirical distribution (Hersbach 2000), as pysteps'
  ``probscores.CRPS``: mean |X − y| − ½ mean |X − X'| over all member pairs (i = j included),
  in the value unit passed (pixels and, with ``to_value``, e.g. mm/h). One member → MAE;
- Brier score: mean (k/M − o)²; reliability diagram and ROC from the exact (k, o) table,
  with pysteps' bins and probability thresholds when asked (``reliability``, ``roc``);
- rank of the observation among the members: #members below it, ties split uniformly at
  random; pixels where the observation and every member are below ``rank_min`` are not
  counted, and values below it tie (pysteps' ``rankhist`` with X_min);
- spread–skill: sqrt(mean ensemble variance (ddof 1)) / RMSE of the ensemble mean, both
  pooled over pixels; ≈ sqrt(M / (M + 1)) for a reliable ensemble (Fortin et al. 2014).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_SUMS = ("n", "crps", "crps_value", "se_mean", "var")


class EnsembleAccumulator:
    """Streaming ensemble scores for ``n_leads`` leads, ``members`` members and thresholds.

    Parameters
    ----------
    n_leads, members
        Lead times and ensemble size M (1: a deterministic forecast).
    thresholds
        (K,) ascending event thresholds in the units of the arrays given to :meth:`add`.
    rank_min
        X_min of the rank histogram (same units); None: every valid pixel counts.
    """

    def __init__(self, n_leads: int, members: int, thresholds, rank_min: float | None = None):
        if members < 1:
            raise ValueError(f"members must be ≥ 1, got {members}")
        self.n_leads, self.members = int(n_leads), int(members)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.rank_min = rank_min
        k, m = len(self.thresholds), self.members
        self.sums = np.zeros((self.n_leads, len(_SUMS)), dtype=np.float64)
        self.table = np.zeros((self.n_leads, k, m + 1, 2), dtype=np.int64)  # (k members, o)
        self.ranks = np.zeros((self.n_leads, m + 1), dtype=np.int64)

    # ------------------------------------------------------------------ accumulate
    def add(
        self,
        lead: int,
        ens,
        obs,
        mask=None,
        to_value: Callable | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        """Add one frame: ``ens`` (M, H, W) members, ``obs`` (H, W), NaN = unknown.

        ``to_value`` maps values monotonically to the unit of the second CRPS column and of
        spread–skill (e.g. pixels → mm/h); ``rng`` splits rank ties (seed it per window for
        reproducible, mergeable results).
        """
        self.add_frame(lead, ens, obs, mask, to_value, rng)

    def add_frame(self, lead: int, ens, obs, mask=None, to_value: Callable | None = None,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`add`, returning what this one frame added: its sums (5,) (columns
        ``_SUMS``) and its (K, M+1, 2) probability table, so a caller can keep them per
        window (for a bootstrap over windows) with the pooled sums unchanged."""
        ens = np.asarray(ens, dtype=np.float32).reshape(self.members, -1)
        obs = np.asarray(obs, dtype=np.float32).reshape(-1)
        valid = np.isfinite(obs) & np.isfinite(ens).all(axis=0)
        if mask is not None:
            valid &= np.asarray(mask, dtype=bool).reshape(-1)
        x, y = np.sort(ens[:, valid], axis=0), obs[valid]  # (M, n) ascending, (n,)
        frame = np.zeros(len(_SUMS))
        frame[0] = y.size
        frame[1] = crps_sum(x, y)
        xv, yv = (x, y) if to_value is None else (to_value(x), to_value(y))
        frame[2] = crps_sum(xv, yv)
        mean = xv.mean(axis=0, dtype=np.float64)
        frame[3] = float(np.sum((mean - yv) ** 2))
        if self.members > 1:
            frame[4] = float(np.sum(xv.var(axis=0, ddof=1, dtype=np.float64)))
        self.sums[lead] += frame
        table = self._frame_table(x, y)
        self.table[lead] += table
        self._add_ranks(lead, x, y, rng or np.random.default_rng(0))
        return frame, table

    def _frame_table(self, x, y) -> np.ndarray:
        m1 = self.members + 1
        out = np.zeros((len(self.thresholds), m1, 2), dtype=np.int64)
        for j, t in enumerate(self.thresholds):
            k = np.count_nonzero(x >= t, axis=0)  # members reaching t (x is sorted)
            code = k * 2 + (y >= t)
            out[j] = np.bincount(code, minlength=2 * m1).reshape(m1, 2)
        return out

    def _add_ranks(self, lead: int, x, y, rng: np.random.Generator) -> None:
        if self.rank_min is not None:
            keep = (y >= self.rank_min) | (x[-1] >= self.rank_min)
            x, y = x[:, keep], y[keep]
            lo = np.float32(self.rank_min) - 1
            x, y = np.where(x < self.rank_min, lo, x), np.where(y < self.rank_min, lo, y)
        below = np.count_nonzero(x < y, axis=0)
        ties = np.count_nonzero(x == y, axis=0)
        rank = below + np.floor(rng.random(y.size) * (ties + 1)).astype(np.int64)
        self.ranks[lead] += np.bincount(rank, minlength=self.members + 1)

    def merge(self, other: EnsembleAccumulator) -> EnsembleAccumulator:
        """Add another accumulator's sums (same leads, members and thresholds) into this."""
        if (other.sums.shape, other.table.shape) != (self.sums.shape, self.table.shape):
            raise ValueError("accumulators of different shapes cannot be merged")
        self.sums += other.sums
        self.table += other.table
        self.ranks += other.ranks
        return self

    # ------------------------------------------------------------------ scores
    def _per_pixel(self, col: int) -> np.ndarray:
        n = self.sums[:, 0]
        return np.divide(self.sums[:, col], n, out=np.full(len(n), np.nan), where=n > 0)

    def crps(self, value_unit: bool = True) -> np.ndarray:
        """(L,) CRPS per lead, in the ``to_value`` unit (or the arrays' own unit)."""
        return self._per_pixel(2 if value_unit else 1)

    def spread_skill(self) -> np.ndarray:
        """(L,) sqrt(mean ensemble variance) / RMSE of the ensemble mean (NaN for M = 1)."""
        if self.members < 2:
            return np.full(self.n_leads, np.nan)
        se = self.sums[:, 3]
        out = np.full(self.n_leads, np.nan)
        return np.divide(np.sqrt(self.sums[:, 4]), np.sqrt(se), out=out, where=se > 0)

    def rmse_mean(self) -> np.ndarray:
        """(L,) RMSE of the ensemble mean, in the ``to_value`` unit."""
        return np.sqrt(self._per_pixel(3))

    def brier(self) -> np.ndarray:
        """(L, K) Brier score mean (k/M − o)² per lead and threshold."""
        tot, n = brier_sums(self.table)
        return np.divide(tot, n, out=np.full(n.shape, np.nan), where=n > 0)

    def reliability(self, n_bins: int = 10, min_count: int = 10):
        """Reliability diagram per lead and threshold, pysteps' bins (``reldiag``).

        Returns (mean forecast probability, observed frequency, count), each (L, K, n_bins);
        NaN where a bin holds fewer than ``min_count`` pixels.
        """
        p = np.arange(self.members + 1) / self.members
        edges = np.linspace(-1e-6, 1 + 1e-6, int(n_bins + 1))
        b = np.digitize(p, edges, right=True) - 1  # bin of each k/M
        onehot = np.zeros((self.members + 1, n_bins))
        onehot[np.arange(self.members + 1), b] = 1.0
        count = np.einsum("lkmo,mb->lkb", self.table, onehot)
        psum = np.einsum("lkmo,m,mb->lkb", self.table, p, onehot)
        osum = np.einsum("lkm,mb->lkb", self.table[..., 1], onehot)
        ok = count >= max(min_count, 1)
        nan = np.full(count.shape, np.nan)
        return (
            np.divide(psum, count, out=nan.copy(), where=ok),
            np.divide(osum, count, out=nan.copy(), where=ok),
            count,
        )

    def roc(self, prob_thresholds=None):
        """ROC per lead and threshold: (POFD, POD) each (L, K, P) and area (L, K).

        ``prob_thresholds`` default k/M for k = 0 … M (the ensemble's exact curve); a
        forecast is "yes" when its probability is ≥ the threshold. The area is pysteps'
        trapezoid rule (``ROC_curve_compute``) over the points plus (1, 1) and (0, 0).
        """
        m = self.members
        p = np.arange(m + 1) / m
        pt = p if prob_thresholds is None else np.asarray(prob_thresholds, dtype=np.float64)
        yes = (p[None, :] >= pt[:, None]).astype(np.int64)  # (P, M+1)
        t = self.table
        hits = np.einsum("lkm,pm->lkp", t[..., 1], yes)
        fa = np.einsum("lkm,pm->lkp", t[..., 0], yes)
        n_obs, n_no = t[..., 1].sum(-1)[..., None], t[..., 0].sum(-1)[..., None]
        pod = np.divide(hits, n_obs, out=np.full(hits.shape, np.nan), where=n_obs > 0)
        pofd = np.divide(fa, n_no, out=np.full(fa.shape, np.nan), where=n_no > 0)
        area = (1.0 - pofd[..., 0]) * (1.0 + pod[..., 0]) / 2.0
        area += np.sum((pofd[..., :-1] - pofd[..., 1:]) * (pod[..., 1:] + pod[..., :-1]) / 2, -1)
        area += pofd[..., -1] * pod[..., -1] / 2.0
        return pofd, pod, area

    def rank_histogram(self, normalize: bool = True) -> np.ndarray:
        """(L, M+1) rank counts per lead (fractions summing to 1 when ``normalize``)."""
        if not normalize:
            return self.ranks.copy()
        n = self.ranks.sum(axis=1, keepdims=True)
        return np.divide(self.ranks, n, out=np.full(self.ranks.shape, np.nan), where=n > 0)

    def rank_flatness(self) -> float:
        """Pooled over leads: Σ_r |f_r − u| / (2 (1 − u)), u = 1/(M+1): 0 for a flat rank
        histogram, 1 when every observation falls in one bin (a scaled L1 distance)."""
        r = self.ranks.sum(axis=0).astype(np.float64)
        if r.sum() == 0:
            return float("nan")
        f = r / r.sum()
        u = 1.0 / len(f)
        return float(np.abs(f - u).sum() / (2.0 * (1.0 - u)))


def crps_sum(x, y) -> float:
    """Σ over pixels of the CRPS of the ensemble ``x`` (M, n), sorted along axis 0, for
    observations ``y`` (n,): mean|x_i − y| − ½ mean|x_i − x_j|, the pair term written over
    the gaps g_k = x_(k+1) − x_(k) as (1/M²) Σ_k k (M − k) g_k, so that identical members
    give exactly 0 there."""
    m = x.shape[0]
    if x.shape[1] == 0:
        return 0.0
    abs_err = np.abs(x - y[None, :]).sum(axis=0, dtype=np.float64) / m
    if m == 1:
        return float(abs_err.sum())
    k = np.arange(1, m, dtype=np.float64)
    gaps = np.diff(x, axis=0).sum(axis=1, dtype=np.float64)  # (M−1,) summed over pixels
    return float(abs_err.sum() - np.dot(k * (m - k), gaps) / (m * m))


def brier_sums(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σ (k/M − o)² and the pixel count of probability tables (..., M+1, 2), summed over
    their last two axes (the Brier score is their ratio)."""
    m = table.shape[-2] - 1
    p = np.arange(m + 1) / m
    err = (p[:, None] - np.array([0.0, 1.0])[None, :]) ** 2  # (M+1, 2)
    return (table * err).sum(axis=(-2, -1)), table.sum(axis=(-2, -1))
