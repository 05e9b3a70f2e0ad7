"""Score forecasters on a dataset's windows: ``evaluate(...) → Scores`` → json / csv / png.

Every method is scored on exactly the same windows, truth frames and truth masks. Methods
run live through :func:`radarcast.forecasters.resolve`, or are read from forecast files
matched to the windows by start index. Persistence is always scored as the reference, also
when it was not asked for (``Scores.reference_added`` says so). Conventions: docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from radarcast.data.store import RadarDataset, open_dataset
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
    MethodScores,
    Scores,
    _atomic_write,
    _cell,
    _csv_rows,
    _json_doc,
    _method_doc,
    _plain,
    _plot,
    _write_csv,
    output_paths,
)
from radarcast.evaluation.scoring import (  # noqa: F401  (re-exported: the old import path)
    _batches,
    _from_file,
    _live,
    _read_batch,
    _score_windows,
    _unique_names,
)
from radarcast.evaluation.thresholds import (  # noqa: F401  (re-exported: the old import path)
    MEMORY_PER_BATCH,
    REFERENCE,
    THRESHOLD_PRESETS,
    Progress,
    Thresholds,
    resolve_thresholds,
)
from radarcast.evaluation.windows import (  # noqa: F401  (re-exported: the old import path)
    _lengths,
    select_windows,
)
from radarcast.metrics import ScoreAccumulator


# --------------------------------------------------------------------------- evaluate
def evaluate(
    dataset_path_or_ds, methods: Sequence[str] = (REFERENCE,), forecasts: Sequence = (), *,
    thresholds: Sequence[float] | None = None, units: str | None = None, preset: str | None = None,
    split: str = "test", n_in: int | None = None, n_out: int | None = None,
    limit: int | None = None, bootstrap: int = 0, seed: int = 0, options: dict | None = None,
    progress: Progress | None = None,
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
    split, n_in, n_out, limit
        Which windows: a split ('train', 'val', 'test', 'all'), the window lengths (dataset
        defaults when None) and at most ``limit`` of them (the first, in time order).
    bootstrap, seed
        Resamples of windows for 95% intervals (0: none) and the generator seed.
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
    starts = select_windows(ds, split, n_in, n_out, limit)
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
        dataset={**ds.identity(), "units": ds.units.attrs(), "shape": list(ds.shape)},
        split=split, n_in=n_in, n_out=n_out, timestep_s=ds.timestep_s, starts=starts,
        thresholds=thr, methods=results, reference_added=added,
    )
    if bootstrap:
        scores.bootstrap = bootstrap_intervals(results, int(bootstrap), seed)
    return scores
