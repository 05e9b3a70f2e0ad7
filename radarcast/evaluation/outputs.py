"""The scores of one evaluation and their files: scores.json, scores.csv, skill.png."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from radarcast.errors import RadarcastError
from radarcast.evaluation.thresholds import REFERENCE, Thresholds
from radarcast.metrics import ScoreAccumulator
from radarcast.verification.report import UNIT_LABELS, ProbabilisticScores, json_ready


@dataclass
class MethodScores:
    """One method's streaming scores and where its forecasts came from."""

    name: str
    source: str  # 'live' or the forecast file path
    config: dict
    acc: ScoreAccumulator
    reference_only: bool = False
    prob: ProbabilisticScores | None = None  # ensemble scores and FSS (docs/metrics.md)

    def result(self) -> dict[str, np.ndarray]:
        return self.acc.compute()


@dataclass
class Scores:
    """The result of :func:`evaluate`: per-method accumulators, thresholds, windows."""

    dataset: dict
    split: str
    n_in: int
    n_out: int
    timestep_s: int
    starts: np.ndarray
    thresholds: Thresholds
    methods: list[MethodScores]
    reference_added: bool = False
    bootstrap: dict = field(default_factory=dict)
    coverage: str = ""  # when forecast files cover fewer windows: "K of N windows (...)"
    pixels: str = "common"  # the rule of PIXEL_RULES the methods were scored under

    @property
    def lead_min(self) -> list[float]:
        return [(i + 1) * self.timestep_s / 60.0 for i in range(self.n_out)]

    def method(self, name: str) -> MethodScores:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)

    def csi_skill(self, name: str) -> np.ndarray:
        """(K,) skill of mean-over-leads CSI against persistence: (CSI − CSI_p) / (1 − CSI_p)."""
        c = self.method(name).result()["csi_mean_over_leads"]
        ref = self.method(REFERENCE).result()["csi_mean_over_leads"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ref < 1, (c - ref) / (1 - ref), np.nan)

    def to_json(self, path, overwrite: bool = True) -> Path:
        """Write scores.json: conventions, dataset identity, per-lead counts and scores."""
        return _atomic_write(path, lambda p: p.write_text(json.dumps(_json_doc(self), indent=1)),
                             overwrite)

    def to_csv(self, path, overwrite: bool = True) -> Path:
        """Write tidy rows: method, lead_min, threshold, units, metric, value."""
        return _atomic_write(path, lambda p: _write_csv(self, p), overwrite)

    def plot(self, path, overwrite: bool = True) -> Path:
        """Write skill.png: CSI and HSS against lead time, one panel per threshold."""
        return _atomic_write(path, lambda p: _plot(self, p), overwrite)

    def write(self, out_dir, overwrite: bool = False) -> dict[str, Path]:
        """Write scores.json, scores.csv, skill.png (and, with ensemble scores,
        reliability.png, rank_histogram.png, fss.png) into ``out_dir`` as one set; returns
        the paths written, by key of :data:`OUTPUT_NAMES`.

        Every file is written to a hidden temporary first; then all are placed under their
        final names together (SIGINT/SIGTERM wait until the set is in place). A marker
        ``.scores.incomplete`` names the set while it is being placed, so a set that a
        SIGKILL cut short between two renames is replaced by the next run, not refused.
        """
        from radarcast.data.store import temporary_path

        paths = output_paths(out_dir, overwrite)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        writers = {"json": lambda p: p.write_text(json.dumps(_json_doc(self), indent=1)),
                   "csv": lambda p: _write_csv(self, p), "png": lambda p: _plot(self, p)}
        prob = {m.name: m.prob for m in self.methods if m.prob is not None}
        if prob:
            from radarcast.verification import report

            labels, scales = self.thresholds.labels, next(iter(prob.values())).scales
            writers["reliability"] = lambda p: report.plot_reliability(prob, labels, p)
            writers["rank_histogram"] = lambda p: report.plot_rank_histograms(prob, p)
            writers["fss"] = lambda p: report.plot_fss(prob, labels, scales, p)
        temps = {}
        try:
            for key, write in writers.items():
                temps[key] = temporary_path(paths[key], paths[key].suffix)
                write(temps[key])
            _place_set(temps, paths, overwrite or _incomplete(Path(out_dir)) is not None)
        finally:
            for tmp in temps.values():
                tmp.unlink(missing_ok=True)
        return {key: paths[key] for key in writers}  # the files written, in writing order


MARKER = ".scores.incomplete"


def _incomplete(out: Path) -> list[str] | None:
    """The names of a set whose placement was cut short (its marker), or None."""
    try:
        return json.loads((out / MARKER).read_text())["names"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _place_set(temps: dict[str, Path], paths: dict[str, Path], overwrite: bool) -> None:
    """Rename every temporary to its final name, the marker standing while they move."""
    from radarcast.data.store import place

    out = next(iter(paths.values())).parent
    marker = out / MARKER
    with _signals_deferred():
        mtmp = out / f".{MARKER}.tmp"
        try:
            mtmp.write_text(json.dumps({"names": [paths[k].name for k in temps]}))
            mtmp.replace(marker)
        finally:
            mtmp.unlink(missing_ok=True)  # a marker that could not be placed leaves nothing
        for key, tmp in temps.items():
            place(tmp, paths[key], overwrite)
        marker.unlink()


class _signals_deferred:
    """SIGINT and SIGTERM received inside wait until the block ends, then act as usual
    (main thread only: elsewhere signals are the main thread's business anyway)."""

    def __enter__(self):
        import signal
        import threading

        self.got, self.old = [], {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, lambda n, f: self.got.append(n))
        return self

    def __exit__(self, *exc) -> None:
        import os
        import signal

        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        for sig in self.got[:1]:
            os.kill(os.getpid(), sig)


OUTPUT_NAMES = {
    "json": "scores.json", "csv": "scores.csv", "png": "skill.png",
    "reliability": "reliability.png", "rank_histogram": "rank_histogram.png", "fss": "fss.png",
}


def output_paths(out_dir, overwrite: bool = False) -> dict[str, Path]:
    """The three output paths in ``out_dir``; refuse existing ones unless ``overwrite``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RadarcastError(f"--out {out} is a file, expected a folder")
    paths = {k: out / name for k, name in OUTPUT_NAMES.items()}
    ours = set(_incomplete(out) or ())  # a set radarcast began placing: replaced, not refused
    existing = [str(p) for p in paths.values() if p.exists() and p.name not in ours]
    if existing and not overwrite:
        raise RadarcastError(f"{existing[0]} exists; pass --overwrite to replace it")
    return paths


# --------------------------------------------------------------------------- outputs
CONVENTIONS = {
    "event": "value >= threshold (thresholds converted to pixels once, with the dataset's units)",
    "invalid_pixels": "masked in the truth, or NaN in truth or prediction: in no cell and no error",
    "zero_division": "NaN (null in JSON)",
    "pooling": "counts and error sums pooled over all windows per lead time; "
               "scores from pooled counts",
    "mean_over_leads": "NaN-skipping mean over lead times of the per-lead scores (derived)",
    "mse_mae": "per-pixel means; 'mse'/'mae' on pixel/255, "
               "'mse_mmh'/'mae_mmh' on rain rate in mm/h",
    "b_mse_b_mae": "HKO-7 balanced: per-pixel mean of w*e^2 / w*|e| with e on pixel/255, "
                   "w = 1,1,2,5,10,30 for truth rain rate edges 0.5,2,5,10,30 mm/h",
    "hss": "2(H*R - M*F) / ((H+M)(M+R) + (H+F)(F+R))",
    "reference": "persistence is always scored as the reference, also when not asked for",
    "live_forecasts": "rounded to integer pixels and clipped to 0-255 before scoring, as a "
                      "forecast file stores them, so live and file scores agree exactly",
    "docs": "docs/metrics.md",
}


PIXEL_RULES = {
    "common": "every method is scored on the same pixels: those valid in the truth that all "
              "methods forecast (a pixel one method leaves unknown is scored for none)",
    "own": "each method is scored on the pixels valid in the truth that it forecasts",
}  # fmt: skip


def _atomic_write(path, write: Callable[[Path], None], overwrite: bool = True) -> Path:
    from radarcast.data.store import place, temporary_path

    path = Path(path)
    tmp = temporary_path(path, path.suffix)
    try:
        write(tmp)
        place(tmp, path, overwrite)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _method_doc(m: MethodScores) -> dict:
    r = m.result()
    per_lead = {"counts": r["counts"], "n_valid_pixels": m.acc.sums.sum(axis=0)[:, 0]}
    mean = {}
    for key, value in r.items():
        if key.endswith("_mean_over_leads"):
            mean[key.removesuffix("_mean_over_leads")] = value
        elif key != "counts":
            per_lead[key] = value
    doc = {"name": m.name, "source": m.source, "config": m.config,
           "reference_only": m.reference_only, "per_lead": json_ready(per_lead),
           "mean_over_leads": json_ready(mean)}
    if m.prob is not None:
        doc["probabilistic"] = m.prob.doc()
        doc["probabilistic"]["deterministic_scores_of"] = (
            "the ensemble mean, rounded to whole pixels as a forecast file stores it"
            if m.prob.members > 1 else "itself")
    return doc


def _threshold_dbz(s: Scores) -> list[float]:
    """The thresholds in dBZ: what the dataset's pixel scale (and, for mm/h, its Z–R) made of
    them."""
    from radarcast.data.units import Units

    return [float(v) for v in Units.from_attrs(s.dataset["units"]).pixel_to_dbz(
        np.asarray(s.thresholds.pixels, dtype=float))]


def _conventions(s: Scores) -> dict[str, str]:
    """CONVENTIONS and, where probabilistic scores were kept, theirs (each method's
    ``probabilistic.conventions`` says the same next to its numbers)."""
    from radarcast.verification.report import conventions

    out = {**CONVENTIONS, "pixels": PIXEL_RULES[s.pixels]}
    prob = [m.prob for m in s.methods if m.prob is not None]
    if not prob:
        return out
    extra = conventions(prob[0].value_unit)
    return {**out, **{k: v for k, v in extra.items() if k not in out}}


def _json_doc(s: Scores) -> dict:
    from radarcast import __version__

    return {
        "schema": "radarcast-scores/1",
        "created_by": f"radarcast {__version__}: {' '.join(sys.argv)}",
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conventions": _conventions(s),
        "dataset": s.dataset,
        "split": s.split, "n_in": s.n_in, "n_out": s.n_out, "timestep_s": s.timestep_s,
        "window_starts": s.starts.tolist(),
        "coverage": s.coverage or "every selected window",
        "thresholds": {"values": list(s.thresholds.values), "units": s.thresholds.unit,
                       "pixels": list(s.thresholds.pixels), "dbz": _threshold_dbz(s),
                       "zr": s.dataset.get("zr")},
        "lead_min": s.lead_min,
        "count_cells": ["hits", "misses", "false_alarms", "correct_negatives"],
        "count_layout": "per_lead.counts[lead][threshold][cell]",
        "reference": REFERENCE, "reference_added": s.reference_added,
        "methods": [_method_doc(m) for m in s.methods],
        "bootstrap": json_ready(s.bootstrap) if s.bootstrap else None,
    }


CSV_COLUMNS = ("method", "lead_min", "threshold", "units", "metric", "value")
_ERROR_UNITS = {"mse": "(pixel/255)^2", "mae": "pixel/255", "mse_mmh": "(mm/h)^2",
                "mae_mmh": "mm/h", "b_mse": "(pixel/255)^2 weighted", "b_mae": "pixel/255 weighted"}


def _csv_rows(s: Scores):
    cells = ("hits", "misses", "false_alarms", "correct_negatives")
    unit = UNIT_LABELS.get(s.thresholds.unit, s.thresholds.unit)  # as the value units: mm/h
    zr = s.dataset.get("zr") or "none"
    for t, dbz in zip(s.thresholds.values, _threshold_dbz(s), strict=True):
        yield "(threshold)", "", t, unit, f"dbz ({zr})", dbz  # which dBZ the threshold became
    for m in s.methods:
        r = m.result()
        leads = [*s.lead_min, "mean"]
        for k, t in enumerate(s.thresholds.values):
            for li, lead in enumerate(leads):
                is_mean = lead == "mean"
                if not is_mean:
                    for c, cell in enumerate(cells):
                        yield m.name, lead, t, unit, cell, int(r["counts"][li, k, c])
                for score in ("csi", "hss", "pod", "far", "ets", "bias"):
                    v = r[f"{score}_mean_over_leads"][k] if is_mean else r[score][li, k]
                    yield m.name, lead, t, unit, score, v
        for li, lead in enumerate(leads):
            for score, eu in _ERROR_UNITS.items():
                v = r[f"{score}_mean_over_leads"] if lead == "mean" else r[score][li]
                yield m.name, lead, "", eu, score, v
        if m.prob is not None:
            value_unit = UNIT_LABELS.get(m.prob.value_unit, "pixel")
            yield from m.prob.rows(m.name, s.lead_min, s.thresholds.values, unit, value_unit,
                                   m.prob.scales)


def _write_csv(s: Scores, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for row in _csv_rows(s):
            w.writerow([*row[:-1], _cell(row[-1])])


def _cell(v) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    return repr(v) if np.isfinite(v) else ""


def _plot(s: Scores, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(s.thresholds.values)
    fig, axes = plt.subplots(2, k, figsize=(3.2 * k + 1, 6), squeeze=False, sharex=True)
    boot = (s.bootstrap or {}).get("methods", {})
    if s.bootstrap and s.bootstrap["scheme"].get("no_interval"):
        boot = {}  # too few independent units: no bars
    for m in s.methods:
        r = m.result()
        band = boot.get(m.name, {}).get("csi_per_lead")
        for j in range(k):
            for i, score in enumerate(("csi", "hss")):
                line = axes[i, j].plot(s.lead_min, r[score][:, j], marker=".", label=m.name)[0]
                if i == 0 and band is not None:  # the bootstrap's 95% interval per lead
                    lo, hi = np.asarray(band["low"])[:, j], np.asarray(band["high"])[:, j]
                    axes[0, j].errorbar(s.lead_min, r["csi"][:, j],
                                        yerr=[r["csi"][:, j] - lo, hi - r["csi"][:, j]],
                                        fmt="none", ecolor=line.get_color(), alpha=0.6,
                                        capsize=2)
    for j, label in enumerate(s.thresholds.labels):
        axes[0, j].set_title(f"≥ {label}")
        axes[1, j].set_xlabel("lead time (min)")
    axes[0, 0].set_ylabel("CSI")
    axes[1, 0].set_ylabel("HSS")
    axes[0, -1].legend(fontsize="small")
    title = f"{Path(s.dataset['path']).name} · {s.split} · {len(s.starts)} windows"
    if s.bootstrap:
        scheme = s.bootstrap["scheme"]
        title += ("\nno 95% intervals: " + scheme["no_interval"] if scheme.get("no_interval")
                  else f"\nCSI bars: 95% intervals, {scheme['description']}")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
