"""Probabilistic and spatial scores of one method as JSON, tidy CSV rows and plots.

A :class:`ProbabilisticScores` holds one method's :class:`EnsembleAccumulator` and its FSS
accumulators ('deterministic' for a single forecast; 'mean' and 'probability' for an
ensemble). Units: the CRPS and spread–skill in ``value_unit`` (mm/h where the dataset has a
Z–R relation, else dBZ) and in pixels; probabilities, Brier, ROC area, FSS are unitless.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radarcast.verification.ensemble import EnsembleAccumulator, brier_sums
from radarcast.verification.spatial import FSSAccumulator, ObsCache


def _nanmean(a, axis=None):
    """numpy's nanmean without its "Mean of empty slice" warning: a lead or threshold with
    nothing to score is NaN (null in scores.json), which is the answer, not a fault."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


UNIT_LABELS = {"mmh": "mm/h", "dbz": "dBZ", "pixel": "pixel"}
"""How scores.csv and the console spell a unit (``--units`` takes the keys)."""

RELIABILITY_BINS, RELIABILITY_MIN_COUNT = 10, 10  # pysteps' reldiag: bins, least pixels


def conventions(value_unit: str = "pixel") -> dict[str, str]:
    """What every probabilistic and spatial number means, as scores.json writes it next to
    them; ``value_unit`` ('mmh', 'dbz' or 'pixel') is the unit of the CRPS column."""
    unit = UNIT_LABELS.get(value_unit, value_unit)
    return {
        "probability": "k/M: the share of the M members at or above a threshold (event: value "
                       ">= threshold, as for the counts); a single forecast (M = 1) gives 0 or 1",
        "ensemble_pixels": "a pixel counts where the truth mask is set and the truth and every "
                           "member are finite; every sum is pooled over windows per lead, "
                           "scores from the pooled sums",
        "crps": f"in {unit} (per_lead.crps) and in pixels (crps_pixel): the CRPS of the "
                "ensemble's empirical distribution, mean |X - y| - 1/2 mean |X - X'| over all "
                "member pairs, i = j included (Hersbach 2000, pysteps' probscores.CRPS; not "
                "the fair CRPS); identical members (or one) give the MAE",
        "brier": "mean (k/M - o)^2 over pixels, o = 1 where the truth is an event; unitless",
        "reliability": f"{RELIABILITY_BINS} bins of k/M, bin b from edge b (exclusive) to "
                       f"edge b + 1 (inclusive) of linspace(-1e-6, 1 + 1e-6, "
                       f"{RELIABILITY_BINS + 1}) as pysteps' reldiag; per lead, threshold and "
                       "bin: mean forecast probability, observed frequency and pixel count; "
                       "probability and "
                       f"frequency null in a bin of fewer than {RELIABILITY_MIN_COUNT} pixels "
                       "(reliability.png pools the leads first)",
        "roc": "POFD and POD at probability thresholds k/M, k = 0 ... M, 'yes' where p >= k/M; "
               "area by pysteps' trapezoid rule through (0, 0) and (1, 1)",
        "rank_histogram": "rank of the truth = members below it, ties split uniformly at "
                          "random (seeded per window and lead); pixels where the truth and "
                          "every member are below the lowest threshold left out, values below "
                          "it tie (pysteps' rankhist with X_min); counts per lead, M + 1 bins",
        "rank_flatness": "sum |f_r - 1/(M+1)| / (2 (1 - 1/(M+1))) of the rank frequencies "
                         "pooled over leads: 0 flat, 1 every truth in one bin",
        "spread_skill": "sqrt(mean ensemble variance, ddof 1) / RMSE of the ensemble mean, "
                        "pooled over pixels; about sqrt(M/(M+1)) for a reliable ensemble; "
                        "null for one member",
        "fss": "1 - sum (F - O)^2 / (sum F^2 + sum O^2) (Roberts & Lean 2008), O and F the "
               "fractions of event pixels in n x n windows as scipy uniform_filter(size=n, "
               "mode='constant') (zeros outside the grid, divided by n^2); F of a single "
               "forecast from its events ('deterministic'); of an ensemble F = window mean of "
               "k/M ('probability') and of its ensemble mean ('mean'), not pysteps' "
               "ensemble_skill FSS (a mean of per-member FSS); a pixel unknown in either "
               "field is a non-event in both; n in pixels (fss_scales_px), a km scale "
               "rounded to whole pixels (fss_scale_conversion)",
        "mean_over_leads": "NaN-skipping mean of the per-lead scores (rank_flatness: of the "
                           "ranks pooled over leads)",
        "docs": "docs/metrics.md, Probabilistic and spatial scores",
    }  # fmt: skip


@dataclass
class ProbabilisticScores:
    """One method's ensemble and FSS accumulators (merge by addition)."""

    members: int
    ens: EnsembleAccumulator
    fss: dict[str, FSSAccumulator] = field(default_factory=dict)
    scales: tuple[int, ...] = ()
    value_unit: str = "pixel"  # unit of the CRPS/spread–skill column: 'mmh', 'dbz' or 'pixel'
    pixel_km: tuple[float, float] | None = None  # (x, y) pixel size, km (from georef)
    scale_notes: tuple[str, ...] = ()  # how --fss-scales given in km became pixels
    # per scored window, in the order added (for bootstrap intervals over windows):
    window_ids: list = field(default_factory=list)
    _per_window: list = field(default_factory=list, repr=False)  # dicts of window_sums()' keys

    @classmethod
    def init(cls, members: int | None, n_leads: int, thresholds, scales, shape,
             value_unit: str = "pixel", pixel_km=None, scale_notes=()):  # fmt: skip
        m = members or 1
        kinds = ("deterministic",) if members is None else ("mean", "probability")
        fss = {k: FSSAccumulator(n_leads, thresholds, scales, shape) for k in kinds}
        rank_min = float(np.min(thresholds))
        acc = EnsembleAccumulator(n_leads, m, thresholds, rank_min)
        return cls(m, acc, fss, next(iter(fss.values())).scales, value_unit, pixel_km,
                   tuple(scale_notes))

    def scales_km(self) -> dict | None:
        """Each FSS scale in km: {"x": [...], "y": [...]} (pixel size × scale); None unknown."""
        if self.pixel_km is None:
            return None
        return {"x": [s * self.pixel_km[0] for s in self.scales],
                "y": [s * self.pixel_km[1] for s in self.scales]}

    @property
    def fss_kind(self) -> str:
        """The FSS the report shows: a forecast's own, an ensemble's probability field's."""
        return "deterministic" if "deterministic" in self.fss else "probability"

    def add(self, lead: int, ens, obs, mask, to_value, rng, window: int | None = None,
            cache: ObsCache | None = None) -> None:
        """One frame: ``ens`` (M, H, W) members (or (1, H, W)), ``obs`` (H, W) pixels.

        ``window`` (the window's id) also keeps this frame's CRPS, Brier and FSS sums per
        window (:meth:`window_sums`), so that they can be bootstrapped over windows.
        ``cache``: one :class:`ObsCache` per truth frame, shared by the methods scored on
        it (speed only: the sums are the same without it)."""
        sums, table = self.ens.add_frame(lead, ens, obs, mask, to_value, rng)
        cache = cache or ObsCache()
        if "deterministic" in self.fss:
            fss = self.fss["deterministic"].add(lead, ens[0], obs, mask, cache)
        else:
            self.fss["mean"].add(lead, np.mean(ens, axis=0), obs, mask, cache)
            fss = self.fss["probability"].add(lead, ens, obs, mask, cache)
        if window is None:
            return
        if not self.window_ids or self.window_ids[-1] != int(window):
            n_leads, k = self.ens.n_leads, len(self.ens.thresholds)
            self.window_ids.append(int(window))
            self._per_window.append({"crps": np.zeros((n_leads, 2)),
                                     "brier": np.zeros((n_leads, k, 2)),
                                     "fss": np.zeros((n_leads, *fss.shape))})
        rec = self._per_window[-1]
        rec["crps"][lead] += (sums[0], sums[2])
        tot, n = brier_sums(table)
        rec["brier"][lead, :, 0] += tot
        rec["brier"][lead, :, 1] += n
        rec["fss"][lead] += fss

    def window_sums(self) -> dict[str, np.ndarray]:
        """Per window (in :attr:`window_ids` order) the sums the pooled scores are ratios of:
        ``crps`` (W, L, 2): pixels and Σ CRPS in the value unit; ``brier`` (W, L, K, 2):
        Σ (k/M − o)² and pixels; ``fss`` (W, L, K, S, 3): Σ F·O, Σ F², Σ O² of
        :attr:`fss_kind`. Empty (W = 0) when frames were added without a window id."""
        if not self._per_window:
            n_leads, k = self.ens.n_leads, len(self.ens.thresholds)
            return {"crps": np.zeros((0, n_leads, 2)), "brier": np.zeros((0, n_leads, k, 2)),
                    "fss": np.zeros((0, n_leads, k, len(self.scales), 3))}
        return {key: np.stack([r[key] for r in self._per_window])
                for key in ("crps", "brier", "fss")}

    def offset_windows(self, offset: int) -> ProbabilisticScores:
        """Shift every window id by ``offset`` (to pool events whose ids overlap)."""
        self.window_ids = [i + offset for i in self.window_ids]
        return self

    def merge(self, other: ProbabilisticScores) -> ProbabilisticScores:
        self.ens.merge(other.ens)
        for k, acc in self.fss.items():
            acc.merge(other.fss[k])
        self.window_ids = self.window_ids + other.window_ids
        self._per_window = self._per_window + other._per_window
        return self

    def doc(self) -> dict:
        """JSON-ready per-lead arrays (NaN → None) and the raw sums they come from."""
        e = self.ens
        pofd, pod, area = e.roc()
        rel_p, rel_o, rel_n = e.reliability(RELIABILITY_BINS, RELIABILITY_MIN_COUNT)
        per_lead = {
            "crps": e.crps(), "crps_pixel": e.crps(value_unit=False),
            "spread_skill": e.spread_skill(), "rmse_ensemble_mean": e.rmse_mean(),
            "brier": e.brier(), "roc_area": area, "rank_histogram": e.rank_histogram(False),
            "reliability": {"mean_probability": rel_p, "observed_frequency": rel_o,
                            "count": rel_n},
            "fss": {k: a.fss() for k, a in self.fss.items()},
        }  # fmt: skip
        mean = self._means()
        raw = {"sums": e.sums, "sum_columns": ["n", "crps_pixel", "crps", "se_mean", "var"],
               "probability_table": e.table, "rank_counts": e.ranks,
               "fss_sums": {k: a.sums for k, a in self.fss.items()}}  # fmt: skip
        return {"members": self.members, "conventions": conventions(self.value_unit),
                "value_unit": UNIT_LABELS.get(self.value_unit, self.value_unit),
                "fss_scales_px": list(self.scales),
                "fss_scales_km": self.scales_km(), "fss_scale_conversion": list(self.scale_notes),
                "per_lead": json_ready(per_lead),
                "mean_over_leads": json_ready(mean), "raw": json_ready(raw)}  # fmt: skip

    def rows(self, method: str, lead_min, thresholds, threshold_unit: str, value_unit: str,
             scales):  # fmt: skip
        """Tidy rows (method, lead_min, threshold, units, metric, value): per lead, then the
        km of each FSS scale, then ``lead_min = "mean"`` (mean over leads). ``units`` is the
        threshold's on rows with a threshold, else the value's."""
        e = self.ens
        v = {"crps": e.crps(), "crps_px": e.crps(value_unit=False), "ss": e.spread_skill(),
             "brier": e.brier(), "roc": e.roc()[2], "ranks": e.rank_histogram(False),
             "rel": e.reliability(RELIABILITY_BINS, RELIABILITY_MIN_COUNT),
             "fss": {kind: acc.fss() for kind, acc in self.fss.items()}}  # fmt: skip
        for li, lead in enumerate(lead_min):
            yield from self._lead_rows(method, li, lead, v, thresholds, threshold_unit,
                                       value_unit, scales)  # fmt: skip
        km = self.scales_km()
        for j, s in enumerate(scales if km else ()):  # the km each FSS scale stands for
            yield method, "", "", "km", f"fss_scale_{s}px_x", km["x"][j]
            yield method, "", "", "km", f"fss_scale_{s}px_y", km["y"][j]
        yield from self._mean_rows(method, thresholds, threshold_unit, value_unit, scales)

    @staticmethod
    def _lead_rows(method, li, lead, v, thresholds, threshold_unit, value_unit, scales):
        """One lead's rows from ``v``, the per-lead arrays :meth:`rows` computed once."""
        yield method, lead, "", value_unit, "crps", v["crps"][li]
        yield method, lead, "", "pixel", "crps", v["crps_px"][li]
        yield method, lead, "", "ratio", "spread_skill", v["ss"][li]
        names = ("mean_probability", "observed_frequency", "count")
        for k, t in enumerate(thresholds):
            yield method, lead, t, threshold_unit, "brier", v["brier"][li, k]
            yield method, lead, t, threshold_unit, "roc_area", v["roc"][li, k]
            for b in range(RELIABILITY_BINS):
                for name, values in zip(names, v["rel"], strict=True):
                    x = values[li, k, b]
                    yield (method, lead, t, threshold_unit, f"reliability_bin{b}_{name}",
                           int(x) if name == "count" else x)  # fmt: skip
            for kind, f in v["fss"].items():
                for j, s in enumerate(scales):
                    yield method, lead, t, threshold_unit, f"fss_{kind}_{s}px", f[li, k, j]
        counts = v["ranks"][li]
        total = counts.sum()
        for r, c in enumerate(counts):
            yield method, lead, "", "count", f"rank_{r}_count", int(c)
            yield method, lead, "", "fraction", f"rank_{r}_frequency", (
                c / total if total else float("nan"))  # fmt: skip

    def _means(self) -> dict:
        """The scores' means over leads (NaN-skipping; rank flatness of the pooled ranks),
        as scores.json's ``mean_over_leads`` and scores.csv's "mean" rows give them."""
        e = self.ens
        return {
            "crps": _nanmean(e.crps()), "crps_pixel": _nanmean(e.crps(value_unit=False)),
            "spread_skill": _nanmean(e.spread_skill()), "brier": _nanmean(e.brier(), axis=0),
            "roc_area": _nanmean(e.roc()[2], axis=0), "rank_flatness": e.rank_flatness(),
            "fss": {k: _nanmean(a.fss(), axis=0) for k, a in self.fss.items()},
        }  # fmt: skip

    def _mean_rows(self, method, thresholds, threshold_unit, value_unit, scales):
        m = self._means()
        yield method, "mean", "", value_unit, "crps", float(m["crps"])
        yield method, "mean", "", "pixel", "crps", float(m["crps_pixel"])
        yield method, "mean", "", "ratio", "spread_skill", float(m["spread_skill"])
        for k, t in enumerate(thresholds):
            yield method, "mean", t, threshold_unit, "brier", m["brier"][k]
            yield method, "mean", t, threshold_unit, "roc_area", m["roc_area"][k]
            for kind, f in m["fss"].items():
                for j, s in enumerate(scales):
                    yield method, "mean", t, threshold_unit, f"fss_{kind}_{s}px", f[k, j]
        yield method, "mean", "", "fraction", "rank_flatness", m["rank_flatness"]


def json_ready(v):
    """numpy (or a dict of them) → JSON-ready lists, NaN → None."""
    if isinstance(v, dict):
        return {k: json_ready(x) for k, x in v.items()}
    a = np.asarray(v)
    if a.dtype.kind == "f":
        return np.where(np.isfinite(a), a, None).tolist()
    return a.tolist()


# ---------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_reliability(methods: dict[str, ProbabilisticScores], labels, path: Path) -> None:
    """Reliability diagram per threshold, pooled over leads, one line per method."""
    plt = _pyplot()
    k = len(labels)
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k + 1, 3.6), squeeze=False)
    for name, s in methods.items():
        p, o, n = s.ens.reliability(RELIABILITY_BINS, 1)
        for j in range(k):
            nn = n[:, j].sum(0)
            pp = np.nansum(np.nan_to_num(p[:, j]) * n[:, j], 0)
            oo = np.nansum(np.nan_to_num(o[:, j]) * n[:, j], 0)
            ok = nn >= RELIABILITY_MIN_COUNT
            axes[0, j].plot(pp[ok] / nn[ok], oo[ok] / nn[ok], marker=".", label=name)
    for j, label in enumerate(labels):
        ax = axes[0, j]
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.set(title=f"≥ {label}", xlabel="forecast probability", xlim=(0, 1), ylim=(0, 1))
    axes[0, 0].set_ylabel("observed frequency")
    axes[0, -1].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def plot_rank_histograms(methods: dict[str, ProbabilisticScores], path: Path) -> None:
    """Rank histogram pooled over leads, one panel per ensemble method."""
    plt = _pyplot()
    ens = {k: v for k, v in methods.items() if v.members > 1} or methods
    fig, axes = plt.subplots(1, len(ens), figsize=(3.6 * len(ens) + 0.5, 3.4), squeeze=False)
    for ax, (name, s) in zip(axes[0], ens.items(), strict=True):
        r = s.ens.ranks.sum(axis=0).astype(float)
        ax.bar(np.arange(len(r)), r / max(r.sum(), 1), color="tab:blue")
        ax.axhline(1.0 / len(r), color="grey", lw=0.8)
        ax.set(title=f"{name} (M = {s.members})", xlabel="rank of the truth")
    axes[0, 0].set_ylabel("fraction")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def _scale_label(methods: dict[str, ProbabilisticScores]) -> str:
    px = next(iter(methods.values())).pixel_km
    if px is None:
        return "scale (px)"
    if np.isclose(px[0], px[1]):
        return f"scale (px; 1 px = {px[0]:g} km)"
    return f"scale (px; 1 px = {px[0]:g} x {px[1]:g} km)"


def plot_fss(methods: dict[str, ProbabilisticScores], labels, scales, path: Path) -> None:
    """FSS (mean over leads) against scale, one panel per threshold."""
    plt = _pyplot()
    xlabel = _scale_label(methods)
    k = len(labels)
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k + 1, 3.6), squeeze=False)
    for name, s in methods.items():
        for kind, acc in s.fss.items():
            f = _nanmean(acc.fss(), axis=0)  # (K, S)
            tag = name if kind == "deterministic" else f"{name} ({kind})"
            for j in range(k):
                axes[0, j].plot(scales, f[j], marker=".", label=tag)
    for j, label in enumerate(labels):
        axes[0, j].set(title=f"≥ {label}", xlabel=xlabel, xscale="log", ylim=(0, 1))
    axes[0, 0].set_ylabel("FSS")
    axes[0, -1].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
