"""Score forecasters on a dataset's windows: ``evaluate(...) → Scores`` → json / csv / png.

Every method is scored on exactly the same windows, truth frames and truth masks. Methods
run live through :func:`radarcast.forecasters.resolve`, or are read from forecast files
matched to the windows by start index. Persistence is always scored as the reference, also
when it was not asked for (``Scores.reference_added`` says so). Conventions: docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from radarcast.bootstrap import check_bootstrap_unit
from radarcast.data.forecast_file import ForecastSource
from radarcast.data.store import RadarDataset, open_dataset
from radarcast.data.units import describe_zr
from radarcast.errors import RadarcastError
from radarcast.evaluation.bootstrap import (  # noqa: F401  (re-exported: the old import path)
    bootstrap_intervals,
    interval,
    paired_bootstrap,
)
from radarcast.evaluation.outputs import (  # noqa: F401  (re-exported: the old import path)
    _ERROR_UNITS,
    CONVENTIONS,
    CSV_COLUMNS,
    OUTPUT_NAMES,
    PIXEL_RULES,
    MethodScores,
    Scores,
    _atomic_write,
    _cell,
    _csv_rows,
    _json_doc,
    _method_doc,
    _plot,
    _write_csv,
    output_paths,
)
from radarcast.evaluation.scoring import (  # noqa: F401  (re-exported: the old import path)
    MEMORY_PER_BATCH,
    Progress,
    _batches,
    _from_file,
    _live,
    _read_batch,
    _score_windows,
    _unique_names,
    covered_starts,
)
from radarcast.evaluation.thresholds import (  # noqa: F401  (re-exported: the old import path)
    REFERENCE,
    THRESHOLD_PRESETS,
    Thresholds,
    resolve_thresholds,
)
from radarcast.evaluation.windows import (  # noqa: F401  (re-exported: the old import path)
    _lengths,
    select_windows,
)
from radarcast.metrics import ScoreAccumulator
from radarcast.verification.report import ProbabilisticScores
from radarcast.verification.spatial import (
    DEFAULT_SCALES,
    check_scales,
    pixel_km,
    scales_in_pixels,
)


# --------------------------------------------------------------------------- evaluate
def evaluate(
    dataset_path_or_ds, methods: Sequence[str] = (REFERENCE,), forecasts: Sequence = (), *,
    thresholds: Sequence[float] | None = None, units: str | None = None, preset: str | None = None,
    split: str = "test", n_in: int | None = None, n_out: int | None = None,
    limit: int | None = None, bootstrap: int = 0, seed: int = 0, options: dict | None = None,
    progress: Progress | None = None, stride: int = 1, bootstrap_unit: str = "auto",
    fss_scales=DEFAULT_SCALES, reproject: bool = False, pixels: str = "common",
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
    fss_scales
        Window sizes (pixels) of the fractions skill score; none larger than the grid.
    reproject
        Sample CF-netCDF forecasts on another grid or projection onto the dataset's grid
        (nearest neighbour, :class:`~radarcast.data.cf_forecast.CFForecast`); off: refused.
    pixels
        'common' (default): every method is scored on the pixels that all of them forecast
        (a pixel one method leaves unknown, e.g. rain pysteps' extrapolation cannot say that
        flows in from outside the grid, is scored for none); 'own': each method on the
        pixels it forecasts.
    progress
        ``progress(done, total)`` called after each batch of windows.
    """
    ds = dataset_path_or_ds
    if not isinstance(ds, RadarDataset):
        ds = open_dataset(ds)
    plan, sources = plan_evaluation(
        ds, methods, forecasts, thresholds=thresholds, units=units, preset=preset, split=split,
        n_in=n_in, n_out=n_out, limit=limit, options=options, stride=stride,
        bootstrap_unit=bootstrap_unit, fss_scales=fss_scales, reproject=reproject,
        pixels=pixels,
    )
    results = score(plan, ds, plan.starts, sources, progress)
    return finish(plan, ds, results, bootstrap, seed)


@dataclass(frozen=True)
class EvaluationPlan:
    """What an evaluation scores, checked and resolved once; small and picklable, so that
    workers scoring shards of ``starts`` (radarcast.parallel) rebuild the same sources."""

    specs: tuple[str, ...]  # live methods, persistence first
    forecasts: tuple[str, ...]  # forecast files
    options: dict
    thresholds: Thresholds
    split: str
    n_in: int
    n_out: int
    starts: np.ndarray  # (W,) window start indices
    reference_added: bool
    bootstrap_unit: str = "auto"
    coverage: str = ""  # "K of N windows (those FILE covers)" when forecast files cover fewer
    fss_scales: tuple[int, ...] = DEFAULT_SCALES
    fss_notes: tuple[str, ...] = ()  # "4km = 4 px (1 px = 1 km)" per scale given in km
    reproject: bool = False  # CF forecasts on another grid sampled onto the dataset's
    pixels: str = "common"  # 'common': every method on the pixels all forecast; 'own'


def plan_evaluation(
    ds: RadarDataset, methods: Sequence[str] = (REFERENCE,), forecasts: Sequence = (), *,
    thresholds=None, units: str | None = None, preset: str | None = None, split: str = "test",
    n_in: int | None = None, n_out: int | None = None, limit: int | None = None,
    options: dict | None = None, stride: int = 1, bootstrap_unit: str = "auto",
    fss_scales=DEFAULT_SCALES, reproject: bool = False, pixels: str = "common",
) -> tuple[EvaluationPlan, list[dict]]:
    """Check every input of :func:`evaluate` (same parameters) and resolve its sources."""
    n_in, n_out = _lengths(ds, n_in, n_out)
    if isinstance(thresholds, str):  # a preset name given as thresholds
        preset, thresholds = thresholds, None
    thr = resolve_thresholds(ds.units, preset, thresholds, units, where=str(ds.path))
    check_bootstrap_unit(bootstrap_unit)
    if pixels not in PIXEL_RULES:
        raise RadarcastError(f"--pixels {pixels!r}: choose one of {', '.join(PIXEL_RULES)}")
    try:
        scales, notes = scales_in_pixels(fss_scales, ds.georef)
        scales = check_scales(scales, (ds.height, ds.width), given=list(fss_scales))
    except ValueError as e:
        raise RadarcastError(f"--fss-scales: {e}") from None
    starts = select_windows(ds, split, n_in, n_out, limit, stride)
    sources = [ForecastSource(str(f), reproject) for f in forecasts]
    starts, coverage = covered_starts(sources, ds, starts, n_in, n_out)
    specs = list(dict.fromkeys(methods))
    added = REFERENCE not in specs
    specs = [REFERENCE, *[s for s in specs if s != REFERENCE]]
    plan = EvaluationPlan(tuple(specs), tuple(str(f) for f in forecasts), dict(options or {}),
                          thr, split, n_in, n_out, starts, added, bootstrap_unit, coverage,
                          scales, tuple(notes), reproject, pixels)
    return plan, open_sources(plan, ds, starts)


def open_sources(plan: EvaluationPlan, ds: RadarDataset, starts: np.ndarray) -> list[dict]:
    """The plan's live forecasters and forecast files (checked to cover ``starts``)."""
    n_in, n_out = plan.n_in, plan.n_out
    sources = [_live(s, ds, n_in, n_out, plan.options.get(s, {})) for s in plan.specs]
    sources += [_from_file(ForecastSource(path, plan.reproject), ds, starts, n_in, n_out)
                for path in plan.forecasts]
    _unique_names(sources)
    return sources


def score(
    plan: EvaluationPlan, ds: RadarDataset, starts: np.ndarray, sources: list[dict] | None = None,
    progress: Progress | None = None,
) -> list[MethodScores]:
    """Score the windows ``starts`` (all of the plan's, or a shard of them) for every source;
    the accumulators of consecutive shards concatenate to those of all windows."""
    sources = open_sources(plan, ds, starts) if sources is None else sources
    zr_units = ds.units if ds.units.has_zr else None
    value_unit = "mmh" if zr_units is not None else "dbz"
    results = [
        MethodScores(s["name"], s["source"], s["config"],
                     ScoreAccumulator.init(plan.thresholds.pixels, plan.n_out, zr_units),
                     reference_only=(i == 0 and plan.reference_added),
                     prob=ProbabilisticScores.init(
                         s["members"], plan.n_out, plan.thresholds.pixels, plan.fss_scales,
                         (ds.height, ds.width), value_unit, pixel_km(ds.georef),
                         plan.fss_notes))
        for i, s in enumerate(sources)
    ]
    _score_windows(ds, starts, plan.n_in, plan.n_out, sources, results, progress,
                   common=plan.pixels == "common")
    return results


def finish(
    plan: EvaluationPlan, ds: RadarDataset, results: list[MethodScores], bootstrap: int = 0,
    seed: int = 0,
) -> Scores:
    """The :class:`Scores` of scored ``results`` (of all the plan's windows, in order)."""
    starts = plan.starts
    scores = Scores(
        dataset={**ds.identity(), "units": ds.units.attrs(), "shape": list(ds.shape),
                 "zr": describe_zr(ds.units), "zr_source": str(ds.attrs.get("zr_source", ""))},
        split=plan.split, n_in=plan.n_in, n_out=plan.n_out, timestep_s=ds.timestep_s,
        starts=starts, thresholds=plan.thresholds, methods=results,
        reference_added=plan.reference_added, coverage=plan.coverage, pixels=plan.pixels,
    )
    if bootstrap:
        scores.bootstrap = bootstrap_intervals(
            results, int(bootstrap), seed, starts=starts, segments=ds.segments[starts],
            length=plan.n_in + plan.n_out, unit=plan.bootstrap_unit,
        )
    return scores
