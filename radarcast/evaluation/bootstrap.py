"""Block-bootstrap confidence intervals of the scores and of paired differences.
"""

from __future__ import annotations

import numpy as np

from radarcast.errors import RadarcastError
from radarcast.evaluation.outputs import MethodScores
from radarcast.metrics import csi, hss, nanmean


# --------------------------------------------------------------------------- bootstrap
def bootstrap_intervals(
    results: list[MethodScores], n: int, seed: int = 0, against: tuple[str, ...] = ()
) -> dict:
    """95% percentile intervals of mean-over-leads CSI/HSS per threshold, and of each
    method's difference to persistence (the first of ``results``) and to the methods named in
    ``against``, from ``n`` resamples of windows (paired: every method uses the same
    resampled windows)."""
    if n < 0:
        raise RadarcastError(f"--bootstrap must be ≥ 0, got {n}")
    stats = paired_bootstrap({r.name: r.acc.counts for r in results}, n, seed)
    refs = [results[0].name, *(a for a in against if a in stats and a != results[0].name)]
    out = {"n": n, "seed": seed, "level": 0.95, "resampled": "windows (paired across methods)",
           "statistic": "mean over lead times of per-lead pooled score, per threshold",
           "methods": {}}
    for name, st in stats.items():
        entry = {}
        for score in ("csi", "hss"):
            entry[score] = interval(st[score])
            for ref in refs:
                if name != ref:
                    entry[f"{score}_minus_{ref}"] = interval(st[score] - stats[ref][score])
        out["methods"][name] = entry
    return out


def paired_bootstrap(counts: dict[str, np.ndarray], n: int, seed: int = 0) -> dict:
    """Bootstrap samples of the mean-over-leads CSI and HSS per threshold.

    ``counts`` maps each method to its per-window contingency counts (W, L, K, 4), the same
    W windows in the same order for all. Every method is resampled with the same ``n`` draws
    of W windows with replacement (paired), so differences between methods keep their
    correlation. Returns name → {"csi": (n, K), "hss": (n, K)}.
    """
    n_win = len(next(iter(counts.values())))
    mult = np.random.default_rng(seed).multinomial(n_win, np.full(n_win, 1.0 / n_win), size=n)
    stats = {}
    for name, c in counts.items():
        boot = np.einsum("nw,wlkc->nlkc", mult, c)  # (n, L, K, 4)
        stats[name] = {"csi": nanmean(csi(boot), axis=1), "hss": nanmean(hss(boot), axis=1)}
    return stats


def interval(samples: np.ndarray, level: float = 0.95) -> dict:
    """Percentile interval per column of (n, K) bootstrap samples, skipping NaN samples:
    {"low": (K,), "high": (K,)}, NaN where a column has no finite sample."""
    ok = np.isfinite(samples)
    lo = np.full(samples.shape[1], np.nan)
    hi = lo.copy()
    tail = 50 * (1 - level)
    for k in range(samples.shape[1]):
        if ok[:, k].any():
            lo[k], hi[k] = np.percentile(samples[ok[:, k], k], [tail, 100 - tail])
    return {"low": lo, "high": hi}
