"""Score forecasters on a dataset's windows: ``evaluate(...) → Scores`` → json / csv / png.

Every method is scored on exactly the same windows, truth frames and truth masks. Methods
run live through :func:`radarcast.forecasters.resolve`, or are read from forecast files
matched to the windows by start index. Persistence is always scored as the reference, also
when it was not asked for (``Scores.reference_added`` says so). Conventions: docs/metrics.md.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from radarcast import forecasters
from radarcast.bootstrap import check_bootstrap_unit, resample
from radarcast.data.forecast_file import stored_pixels
from radarcast.data.store import RadarDataset, open_dataset
from radarcast.data.units import UNIT_LABELS, Units, check_unit, describe_zr
from radarcast.errors import RadarcastError
from radarcast.metrics import ScoreAccumulator, csi, hss, nanmean

THRESHOLD_PRESETS: dict[str, tuple[tuple[float, ...], str]] = {
    "hko7": ((0.5, 2.0, 5.0, 10.0, 30.0), "mmh"),  # Shi et al. 2017, HKO-7
    "dgmr": ((1.0, 4.0, 8.0), "mmh"),  # Ravuri et al. 2021
    "sevir": ((16.0, 74.0, 133.0, 160.0, 181.0, 219.0), "pixel"),  # Veillette et al. 2020, VIL
}
REFERENCE = "persistence"
MEMORY_PER_BATCH = 64 * 2**20  # bytes of float32 frames read per batch
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Thresholds:
    """Thresholds as given (``values`` in ``unit``) and converted to pixels (ascending)."""

    values: tuple[float, ...]
    unit: str
    pixels: tuple[float, ...]

    @property
    def labels(self) -> list[str]:
        return [f"{v:g} {UNIT_LABELS[self.unit]}" for v in self.values]


def resolve_thresholds(
    units: Units, preset: str | None = None, values: Sequence[float] | None = None,
    unit: str | None = None, where: str = "dataset",
) -> Thresholds:
    """A preset name, or values with their unit → :class:`Thresholds` for ``units``."""
    if preset is not None and values is not None:
        raise RadarcastError("give --preset or --thresholds, not both")
    if preset is not None:
        if preset not in THRESHOLD_PRESETS:
            raise RadarcastError(
                f"unknown threshold preset {preset!r}; "
                f"choose one of: {', '.join(THRESHOLD_PRESETS)}"
            )
        values, unit = THRESHOLD_PRESETS[preset]
    if values is None:
        values, unit = THRESHOLD_PRESETS["hko7"] if units.has_zr else THRESHOLD_PRESETS["sevir"]
    unit = check_unit(unit or "mmh")
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 1 or not len(vals) or not np.all(np.isfinite(vals)):
        raise RadarcastError(f"thresholds must be finite numbers, got {list(values)}")
    vals = np.unique(vals)  # ascending, duplicates dropped
    if unit == "mmh" and not units.has_zr:
        raise RadarcastError(
            f"{where} has no Z-R relation (zr_a, zr_b): thresholds in mm/h cannot be converted; "
            "use --units dbz or pixel"
        )
    if unit == "mmh" and np.any(vals <= 0):
        raise RadarcastError(f"rain-rate thresholds must be > 0 mm/h, got {vals.tolist()}")
    pixels = units.to_pixel(vals, unit)
    if not (np.all(np.isfinite(pixels)) and np.all(np.diff(pixels) > 0)):
        raise RadarcastError(
            f"{where}: thresholds {vals.tolist()} {unit} do not map to distinct pixel levels "
            f"on its scale (dBZ = {units.dbz_gain:g}·pixel {units.dbz_offset:+g})"
        )
    return Thresholds(tuple(float(v) for v in vals), unit, tuple(float(p) for p in pixels))


@dataclass
class MethodScores:
    """One method's streaming scores and where its forecasts came from."""

    name: str
    source: str  # 'live' or the forecast file path
    config: dict
    acc: ScoreAccumulator
    reference_only: bool = False

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

    def to_json(self, path) -> Path:
        """Write scores.json: conventions, dataset identity, per-lead counts and scores."""
        return _atomic_write(path, lambda p: p.write_text(json.dumps(_json_doc(self), indent=1)))

    def to_csv(self, path) -> Path:
        """Write tidy rows: method, lead_min, threshold, units, metric, value."""
        return _atomic_write(path, lambda p: _write_csv(self, p))

    def plot(self, path) -> Path:
        """Write skill.png: CSI and HSS against lead time, one panel per threshold."""
        return _atomic_write(path, lambda p: _plot(self, p))

    def write(self, out_dir, overwrite: bool = False) -> dict[str, Path]:
        """Write scores.json, scores.csv and skill.png into ``out_dir`` (created if missing)."""
        paths = output_paths(out_dir, overwrite)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        self.to_json(paths["json"])
        self.to_csv(paths["csv"])
        self.plot(paths["png"])
        return paths


OUTPUT_NAMES = {"json": "scores.json", "csv": "scores.csv", "png": "skill.png"}


def output_paths(out_dir, overwrite: bool = False) -> dict[str, Path]:
    """The three output paths in ``out_dir``; refuse existing ones unless ``overwrite``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RadarcastError(f"--out {out} is a file, expected a folder")
    paths = {k: out / name for k, name in OUTPUT_NAMES.items()}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise RadarcastError(f"{existing[0]} exists; pass --overwrite to replace it")
    return paths


# --------------------------------------------------------------------------- evaluate
def evaluate(
    dataset_path_or_ds, methods: Sequence[str] = (REFERENCE,), forecasts: Sequence = (), *,
    thresholds: Sequence[float] | None = None, units: str | None = None, preset: str | None = None,
    split: str = "test", n_in: int | None = None, n_out: int | None = None,
    limit: int | None = None, bootstrap: int = 0, seed: int = 0, options: dict | None = None,
    progress: Progress | None = None, stride: int = 1, bootstrap_unit: str = "auto",
) -> Scores:
    """Score methods (run live) and forecast files on the same windows of one dataset.

    Parameters
    ----------
    dataset_path_or_ds
        A dataset path or an open :class:`RadarDataset`.
    methods
        Specs for :func:`radarcast.forecasters.resolve` ('persistence', 'rover', a .pt path).
    forecasts
        Forecast files (``radarcast forecast``) covering every scored window.
    thresholds, units, preset
        Thresholds in ``units`` ('mmh', 'dbz', 'pixel'), or a preset name (hko7, dgmr,
        sevir) given as ``preset`` or as ``thresholds``.
    split, n_in, n_out, limit, stride
        Which windows: a split ('train', 'val', 'test', 'all'), the window lengths (dataset
        defaults when None), every ``stride``-th start of each segment, and at most ``limit``
        of them (the first, in time order).
    bootstrap, seed, bootstrap_unit
        Resamples for 95% intervals (0: none), the generator seed, and what is resampled:
        'auto', 'segment', 'block' or 'window' (:mod:`radarcast.bootstrap`).
    options
        Per-method options, ``{spec: {...}}``, handed to ``resolve``.
    progress
        ``progress(done, total)`` called after each batch of windows.
    """
    ds = dataset_path_or_ds
    if not isinstance(ds, RadarDataset):
        ds = open_dataset(ds)
    n_in, n_out = _lengths(ds, n_in, n_out)
    if isinstance(thresholds, str):  # a preset name given as thresholds
        preset, thresholds = thresholds, None
    thr = resolve_thresholds(ds.units, preset, thresholds, units, where=str(ds.path))
    check_bootstrap_unit(bootstrap_unit)
    starts = select_windows(ds, split, n_in, n_out, limit, stride)
    specs = list(dict.fromkeys(methods))
    added = REFERENCE not in specs
    specs = [REFERENCE, *[s for s in specs if s != REFERENCE]]
    sources = [_live(spec, ds, n_in, n_out, (options or {}).get(spec, {})) for spec in specs]
    sources += [_from_file(path, ds, starts, n_in, n_out) for path in forecasts]
    _unique_names(sources)
    zr_units = ds.units if ds.units.has_zr else None
    results = [
        MethodScores(s["name"], s["source"], s["config"],
                     ScoreAccumulator.init(thr.pixels, n_out, zr_units),
                     reference_only=(i == 0 and added))
        for i, s in enumerate(sources)
    ]
    _score_windows(ds, starts, n_in, n_out, sources, results, progress)
    scores = Scores(
        dataset={**ds.identity(), "units": ds.units.attrs(), "shape": list(ds.shape),
                 "zr": describe_zr(ds.units), "zr_source": str(ds.attrs.get("zr_source", ""))},
        split=split, n_in=n_in, n_out=n_out, timestep_s=ds.timestep_s, starts=starts,
        thresholds=thr, methods=results, reference_added=added,
    )
    if bootstrap:
        scores.bootstrap = bootstrap_intervals(
            results, int(bootstrap), seed, starts=starts, segments=ds.segments[starts],
            length=n_in + n_out, unit=bootstrap_unit,
        )
    return scores


def _lengths(ds: RadarDataset, n_in: int | None, n_out: int | None) -> tuple[int, int]:
    n_in, n_out = n_in or ds.n_in, n_out or ds.n_out
    if n_in < 1 or n_out < 1:
        raise RadarcastError(f"--n-in and --n-out must be ≥ 1, got {n_in} and {n_out}")
    return int(n_in), int(n_out)


def select_windows(
    ds: RadarDataset, split: str, n_in: int, n_out: int, limit: int | None, stride: int = 1
) -> np.ndarray:
    """Start indices of the scored windows (:func:`radarcast.data.selection.select_windows`,
    the selection every command shares); RadarcastError when there are none."""
    from radarcast.data.selection import select_windows as shared

    return shared(ds, split, n_in, n_out, limit, stride)


def _live(spec: str, ds, n_in: int, n_out: int, options: dict) -> dict:
    try:
        fc = forecasters.resolve(spec, ds, n_in=n_in, n_out=n_out, options=options)
    except RadarcastError:
        raise
    except Exception as e:  # noqa: BLE001 - a checkpoint that does not load is a user error
        if spec in forecasters.METHODS:
            raise
        msg = f"{spec}: could not load checkpoint ({type(e).__name__}: {e})"
        raise RadarcastError(msg.splitlines()[0]) from None
    if fc.n_in > n_in:
        raise RadarcastError(f"{spec} needs {fc.n_in} input frames, but --n-in is {n_in}")
    return {"name": fc.name, "source": "live", "config": fc.config, "forecaster": fc}


def _from_file(path, ds, starts: np.ndarray, n_in: int, n_out: int) -> dict:
    from radarcast.data.forecast_file import open_forecast

    ff = open_forecast(path)
    ff.check_matches(ds, n_in, n_out)
    missing = starts[~np.isin(starts, ff.starts)]
    if len(missing):
        ff.close()
        raise RadarcastError(
            f"{path} does not cover the scored windows: {len(missing)} of {len(starts)} missing "
            f"(first missing start index {int(missing[0])}); make it with the same --split/--limit"
        )
    return {"name": ff.method, "source": str(Path(path)), "config": ff.config, "file": ff}


def _unique_names(sources: list[dict]) -> None:
    seen: set[str] = set()
    for s in sources:
        if s["name"] in seen and "file" in s:
            s["name"] = f"{s['name']} ({Path(s['source']).name})"
        k = 2
        base = s["name"]
        while s["name"] in seen:
            s["name"], k = f"{base} #{k}", k + 1
        seen.add(s["name"])


def _batches(ds: RadarDataset, starts: np.ndarray, length: int) -> list[np.ndarray]:
    per = max(1, min(64, MEMORY_PER_BATCH // (length * ds.height * ds.width * 4)))
    return [starts[i : i + per] for i in range(0, len(starts), per)]


def _read_batch(ds: RadarDataset, starts: np.ndarray, n_in: int, n_out: int):
    """x float32 (B, n_in, H, W) NaN where invalid; y uint8 (B, n_out, H, W); mask_y bool."""
    length = n_in + n_out
    a, b = int(starts[0]), int(starts[-1]) + length
    if b - a <= 2 * len(starts) * length:  # one contiguous read serves overlapping windows
        frames, masks = ds.frames(a, b), ds.masks(a, b)
        idx = (starts - a)[:, None] + np.arange(length)  # (B, n_in + n_out)
        frames, masks = frames[idx], masks[idx]
    else:
        wins = [ds.window(int(s), n_in, n_out) for s in starts]
        frames = np.stack([np.concatenate([w.x, w.y]) for w in wins])
        masks = np.stack([np.concatenate([w.mask_x, w.mask_y]) for w in wins])
    x = frames[:, :n_in].astype(np.float32)
    x[~masks[:, :n_in]] = np.nan
    return x, frames[:, n_in:], masks[:, n_in:]


def _score_windows(ds, starts, n_in, n_out, sources, results, progress) -> None:
    done = 0
    for batch in _batches(ds, starts, n_in + n_out):
        x, y, mask_y = _read_batch(ds, batch, n_in, n_out)
        for src, res in zip(sources, results, strict=True):
            if "forecaster" in src:  # rounded as a forecast file stores it: same counts
                pred = stored_pixels(forecasters.run_batched(src["forecaster"], x))
            else:
                ff = src["file"]
                pred = ff.pred([ff.row_of(int(s)) for s in batch])[:, :n_out]
            res.acc.add(pred, y, mask_y, window_ids=batch)
        done += len(batch)
        if progress is not None:
            progress(done, len(starts))
    for src in sources:
        if "file" in src:
            src["file"].close()


# --------------------------------------------------------------------------- bootstrap
def bootstrap_intervals(
    results: list[MethodScores], n: int, seed: int = 0, against: tuple[str, ...] = (), *,
    starts: np.ndarray | None = None, segments: np.ndarray | None = None,
    length: int | None = None, unit: str = "auto",
) -> dict:
    """95% percentile intervals of mean-over-leads CSI/HSS per threshold (and per lead), and
    of each method's difference to persistence (the first of ``results``) and to the methods
    named in ``against``, from ``n`` paired resamples (every method uses the same ones).

    ``starts``, ``segments`` (per window) and ``length`` (n_in + n_out) let the resamples
    keep the windows' dependence: ``unit`` 'auto', 'segment', 'block' or 'window'
    (:mod:`radarcast.bootstrap`); without them single windows are resampled. The scheme is
    written into the result next to the intervals."""
    if n < 0:
        raise RadarcastError(f"--bootstrap must be ≥ 0, got {n}")
    counts = {r.name: r.acc.counts for r in results}
    n_win = len(next(iter(counts.values())))
    if starts is None:
        starts, segments, length, unit = np.arange(n_win), np.zeros(n_win), 1, "window"
    weights, scheme = resample(starts, segments, length, n, seed, unit)
    stats = paired_bootstrap(counts, n, seed, weights=weights)
    refs = [results[0].name, *(a for a in against if a in stats and a != results[0].name)]
    out = {"n": n, "seed": seed, "level": 0.95, "scheme": scheme.to_dict(),
           "resampled": f"{scheme.describe()} (paired across methods)",
           "statistic": "mean over lead times of per-lead pooled score, per threshold",
           "methods": {}}
    for name, st in stats.items():
        entry = {"csi_per_lead": interval(st["csi_per_lead"])}
        for score in ("csi", "hss"):
            entry[score] = interval(st[score])
            for ref in refs:
                if name != ref:
                    entry[f"{score}_minus_{ref}"] = interval(st[score] - stats[ref][score])
        out["methods"][name] = entry
    return out


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


def _atomic_write(path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _plain(v):
    """numpy → JSON-ready lists, NaN → None."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    a = np.asarray(v)
    if a.dtype.kind == "f":
        return np.where(np.isfinite(a), a, None).tolist()
    return a.tolist()


def _method_doc(m: MethodScores) -> dict:
    r = m.result()
    per_lead = {"counts": r["counts"], "n_valid_pixels": m.acc.sums.sum(axis=0)[:, 0]}
    mean = {}
    for key, value in r.items():
        if key.endswith("_mean_over_leads"):
            mean[key.removesuffix("_mean_over_leads")] = value
        elif key != "counts":
            per_lead[key] = value
    return {"name": m.name, "source": m.source, "config": m.config,
            "reference_only": m.reference_only, "per_lead": _plain(per_lead),
            "mean_over_leads": _plain(mean)}


def _threshold_dbz(s: Scores) -> list[float]:
    """The thresholds in dBZ: what the dataset's pixel scale (and, for mm/h, its Z–R) made of
    them."""
    from radarcast.data.units import Units

    return [float(v) for v in Units.from_attrs(s.dataset["units"]).pixel_to_dbz(
        np.asarray(s.thresholds.pixels, dtype=float))]


def _json_doc(s: Scores) -> dict:
    from radarcast import __version__

    return {
        "schema": "radarcast-scores/1",
        "created_by": f"radarcast {__version__}: {' '.join(sys.argv)}",
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conventions": CONVENTIONS,
        "dataset": s.dataset,
        "split": s.split, "n_in": s.n_in, "n_out": s.n_out, "timestep_s": s.timestep_s,
        "window_starts": s.starts.tolist(),
        "thresholds": {"values": list(s.thresholds.values), "units": s.thresholds.unit,
                       "pixels": list(s.thresholds.pixels), "dbz": _threshold_dbz(s),
                       "zr": s.dataset.get("zr")},
        "lead_min": s.lead_min,
        "count_cells": ["hits", "misses", "false_alarms", "correct_negatives"],
        "count_layout": "per_lead.counts[lead][threshold][cell]",
        "reference": REFERENCE, "reference_added": s.reference_added,
        "methods": [_method_doc(m) for m in s.methods],
        "bootstrap": _plain(s.bootstrap) if s.bootstrap else None,
    }


CSV_COLUMNS = ("method", "lead_min", "threshold", "units", "metric", "value")
_ERROR_UNITS = {"mse": "(pixel/255)^2", "mae": "pixel/255", "mse_mmh": "(mm/h)^2",
                "mae_mmh": "mm/h", "b_mse": "(pixel/255)^2 weighted", "b_mae": "pixel/255 weighted"}


def _csv_rows(s: Scores):
    cells = ("hits", "misses", "false_alarms", "correct_negatives")
    unit = s.thresholds.unit
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
        title += f"\nCSI bars: 95% intervals, {s.bootstrap['scheme']['description']}"
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
