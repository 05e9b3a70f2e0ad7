"""Block-bootstrap confidence intervals of the scores and of paired differences."""

from __future__ import annotations

import numpy as np

from radarcast.bootstrap import plan
from radarcast.bootstrap import weights as resample_weights
from radarcast.errors import RadarcastError
from radarcast.evaluation.outputs import MethodScores
from radarcast.metrics import csi, hss, nanmean


# --------------------------------------------------------------------------- bootstrap
def bootstrap_intervals(
    results: list[MethodScores], n: int, seed: int = 0, against: tuple[str, ...] = (), *,
    starts: np.ndarray | None = None, segments: np.ndarray | None = None,
    length: int | None = None, unit: str = "auto",
) -> dict:
    """95% percentile intervals of mean-over-leads CSI/HSS per threshold (and per lead), and
    of each method's difference to persistence (the first of ``results``) and to the methods
    named in ``against``, from ``n`` paired resamples (every method uses the same ones).
    Where a method kept its probabilistic sums per window (``prob.window_sums()``), the
    same resamples give intervals of its FSS, CRPS and Brier score and their differences.

    ``starts``, ``segments`` (per window) and ``length`` (n_in + n_out) let the resamples
    keep the windows' dependence: ``unit`` 'auto', 'segment', 'block' or 'window'
    (:mod:`radarcast.bootstrap`); without them single windows are resampled. The scheme is
    written into the result next to the intervals. Where it holds too few independent units
    for an interval (``scheme.no_interval``, the reason), every interval is NaN (null in
    JSON), in the shapes it would have, and nothing is resampled."""
    if n < 0:
        raise RadarcastError(f"--bootstrap must be ≥ 0, got {n}")
    counts = {r.name: r.acc.counts for r in results}
    n_win = len(next(iter(counts.values())))
    if starts is None:
        starts, segments, length, unit = np.arange(n_win), np.zeros(n_win), 1, "window"
    scheme, units = plan(starts, segments, length, unit)
    iv = interval
    if scheme.no_interval:  # one unweighted "resample" gives the shapes; no interval
        weights, iv = np.ones((1, n_win), dtype=np.int64), _no_interval
    else:
        weights = resample_weights(units, scheme.draws, n_win, n, seed)
    stats = paired_bootstrap(counts, n, seed, weights=weights)
    prob = {r.name: r.prob.window_sums() for r in results
            if r.prob is not None and r.prob.window_ids == r.acc.window_ids}
    prob_stats = {name: probabilistic_bootstrap(sums, weights) for name, sums in prob.items()}
    refs = [results[0].name, *(a for a in against if a in stats and a != results[0].name)]
    out = {"n": n, "seed": seed, "level": 0.95, "scheme": scheme.to_dict(),
           "resampled": scheme.describe() + ("" if scheme.no_interval
                                             else " (paired across methods)"),
           "statistic": "mean over lead times of per-lead pooled score, per threshold "
                        "(FSS: per threshold and scale; CRPS: one number)",
           "methods": {}}
    for name, st in stats.items():
        entry = {"csi_per_lead": iv(st["csi_per_lead"])}
        for score in ("csi", "hss"):
            entry[score] = iv(st[score])
            for ref in refs:
                if name != ref:
                    entry[f"{score}_minus_{ref}"] = iv(st[score] - stats[ref][score])
        for score, samples in prob_stats.get(name, {}).items():
            entry[score] = iv(samples)
            for ref in refs:
                if name != ref and ref in prob_stats:
                    entry[f"{score}_minus_{ref}"] = iv(samples - prob_stats[ref][score])
        out["methods"][name] = entry
    return out


PROB_SCORES = ("fss", "crps", "brier")  # bootstrapped from per-window sums when kept


def probabilistic_bootstrap(sums: dict[str, np.ndarray], weights: np.ndarray) -> dict:
    """Bootstrap samples of the mean-over-leads FSS (n, K, S), CRPS (n,) and Brier score
    (n, K) from per-window sums (:meth:`ProbabilisticScores.window_sums`): each resample
    pools the weighted sums per lead, forms the score per lead, then averages the leads
    (NaN-skipping), as the point estimates are made from the sums of all windows."""
    from radarcast.verification.spatial import fss_of

    w = np.asarray(weights, dtype=np.float64)  # (n, W)

    def pooled(a):  # (W, ...) → (n, ...)
        return np.tensordot(w, a, axes=(1, 0))

    crps = pooled(sums["crps"])  # (n, L, 2): pixels, Σ CRPS
    brier = pooled(sums["brier"])  # (n, L, K, 2): Σ (p − o)², pixels
    return {"fss": nanmean(fss_of(pooled(sums["fss"])), axis=1),
            "crps": nanmean(_ratio(crps[..., 1], crps[..., 0]), axis=1),
            "brier": nanmean(_ratio(brier[..., 0], brier[..., 1]), axis=1)}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def paired_bootstrap(
    counts: dict[str, np.ndarray], n: int, seed: int = 0, weights: np.ndarray | None = None
) -> dict:
    """Bootstrap samples of the mean-over-leads CSI and HSS per threshold.

    ``counts`` maps each method to its per-window contingency counts (W, L, K, 4), the same
    W windows in the same order for all. Every method is resampled with the same ``n``
    resamples (paired), so differences between methods keep their correlation: ``weights``
    (n, W), how often each window is in each resample (:func:`radarcast.bootstrap.resample`:
    whole segments or moving blocks), or, when None, ``n`` draws of W single windows with
    replacement. Returns name → {"csi": (n, K), "hss": (n, K), "csi_per_lead": (n, L, K)}.
    """
    n_win = len(next(iter(counts.values())))
    if weights is None:
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(n_win, np.full(n_win, 1.0 / n_win), size=n)
    stats = {}
    for name, c in counts.items():
        boot = np.einsum("nw,wlkc->nlkc", weights, c)  # (n, L, K, 4)
        per_lead = csi(boot)  # (n, L, K)
        stats[name] = {"csi": nanmean(per_lead, axis=1), "hss": nanmean(hss(boot), axis=1),
                       "csi_per_lead": per_lead}
    return stats


def interval(samples: np.ndarray, level: float = 0.95) -> dict:
    """Percentile interval per column of (n, ...) bootstrap samples, skipping NaN samples:
    {"low": (...), "high": (...)}, NaN where a column has no finite sample."""
    flat = samples.reshape(len(samples), -1)
    ok = np.isfinite(flat)
    lo = np.full(flat.shape[1], np.nan)
    hi = lo.copy()
    tail = 50 * (1 - level)
    for k in range(flat.shape[1]):
        if ok[:, k].any():
            lo[k], hi[k] = np.percentile(flat[ok[:, k], k], [tail, 100 - tail])
    return {"low": lo.reshape(samples.shape[1:]), "high": hi.reshape(samples.shape[1:])}


def _no_interval(samples: np.ndarray) -> dict:
    """The interval fields, NaN, of a scheme with too few independent units."""
    nan = np.full(samples.shape[1:], np.nan)
    return {"low": nan, "high": nan.copy()}
