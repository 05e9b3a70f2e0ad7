"""One interface for every forecaster: persistence, ROVER and trained checkpoints.

A forecaster is called as ``forecaster(x) → y``:

- ``x``: (B, n_in, H, W) pixels, uint8, or float32 with NaN where a pixel is invalid;
- ``y``: (B, n_out, H, W) float32 pixels in [0, 255] (NaN only where a method cannot say).

:func:`resolve` builds one from a name or a checkpoint path; ``forecast``, ``evaluate`` and
``animate`` use nothing else, so a new method is one new entry in :data:`METHODS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from radarcast.baselines.persistence import persistence
from radarcast.config import count_or
from radarcast.errors import RadarcastError
from radarcast.interface import Forecaster

__all__ = [
    "METHODS",
    "Forecaster",
    "check_window_lengths",
    "ensemble_options",
    "plan_windows",
    "read_inputs",
    "resolve",
    "run_batched",
    "write_forecast",
    "write_windows",
]


def _persistence(dataset, n_in: int, n_out: int, options: dict) -> Forecaster:
    if options:
        raise RadarcastError(f"persistence takes no options, got {', '.join(options)}")
    return Forecaster("persistence", 1, n_out, persistence, {"method": "persistence"}, 64)


def _rover(dataset, n_in: int, n_out: int, options: dict) -> Forecaster:
    """ROVER; with ``members`` (and optionally ``centre``, a checkpoint path whose forecast
    the members perturb) the ROVER ensemble of docs/ensembles.md."""
    options = dict(options)
    centre = options.pop("centre", None)
    if options.get("members") is None and centre is None:
        options.pop("members", None)
        options.pop("seed", None)
        from radarcast.baselines.rover import make_forecaster

        return make_forecaster(dataset, n_out, options)
    from radarcast.baselines.ensemble_forecaster import make_forecaster as make_ensemble

    centre_fc = None
    if centre is not None:
        path = Path(centre)
        if not path.is_file():
            raise RadarcastError(f"--centre {centre}: no such checkpoint file")
        centre_fc = _checkpoint(
            path, dataset, n_in, n_out, {"device": options.get("device", "auto")}
        )
    options.setdefault("members", 20)
    return make_ensemble(dataset, n_out, options, centre=centre_fc)


def _pysteps(kind: str) -> Callable[..., Forecaster]:
    def make(dataset, n_in: int, n_out: int, options: dict) -> Forecaster:
        from radarcast.baselines.pysteps_methods import make_forecaster

        return make_forecaster(kind, dataset, n_out, options)

    return make


def _checkpoint(path: Path, dataset, n_in: int, n_out: int, options: dict) -> Forecaster:
    from radarcast.checkpoint import load_forecaster

    return load_forecaster(path, dataset, n_in=n_in, n_out=n_out, **options)


METHODS: dict[str, Callable[..., Forecaster]] = {
    "persistence": _persistence,
    "rover": _rover,
    **{f"pysteps:{k}": _pysteps(k) for k in ("extrapolation", "sprog", "steps", "anvil")},
}
"""Forecasters by name; anything else that names an existing file is a checkpoint."""


ENSEMBLE_OPTIONS: dict[str, tuple[str, ...]] = {
    "rover": ("members", "centre"),
    "pysteps:steps": ("members",),
}
"""The methods that make ensembles, and the ensemble options each takes (every one takes
``members``: a method is in this table when ``--members`` sizes its ensemble)."""

ENSEMBLE_BY_DEFAULT = ("pysteps:steps",)
"""The methods that make an ensemble without ``--members`` (STEPS: 20 members)."""


def ensemble_options(
    method: str, members: int | None, seed: int | None = None, centre: str | None = None
) -> dict:
    """``--members``/``--seed``/``--centre`` as ``method``'s options: empty when none is
    given; RadarcastError where the method makes no ensemble or takes no such option, where
    a seed is given for a forecast that has no random draws, or ``members`` < 1."""
    given = [name for name, v in (("members", members), ("centre", centre)) if v is not None]
    if not given:
        if seed is None:
            return {}
        if method in ENSEMBLE_BY_DEFAULT:
            return {"seed": seed}
        raise RadarcastError(f"--seed: {method} makes a deterministic forecast here; the seed "
                             "is for an ensemble's random draws (--members N)")  # fmt: skip
    takes = ENSEMBLE_OPTIONS.get(method, ())
    refused = [name for name in given if name not in takes]
    if refused:
        makers = ", ".join(f"{m} ({'/'.join('--' + o for o in opts)})"
                           for m, opts in ENSEMBLE_OPTIONS.items())  # fmt: skip
        what = "makes no ensemble" if not takes else f"takes no --{refused[0]}"
        raise RadarcastError(f"--{refused[0]}: {method} {what}; ensembles come from {makers}")
    if members is not None and members < 1:
        raise RadarcastError(f"--members must be a whole number ≥ 1, got {members}")
    out: dict = {}
    if members is not None:
        out["members"] = members
    if seed is not None:
        out["seed"] = seed
    if centre is not None:
        out["centre"] = str(centre)
    return out


def resolve(
    spec: str,
    dataset=None,
    *,
    n_in: int | None = None,
    n_out: int | None = None,
    options: dict | None = None,
) -> Forecaster:
    """Build a forecaster from a method name or a checkpoint path.

    Parameters
    ----------
    spec
        'persistence', 'rover', or the path of a checkpoint written by ``radarcast train``.
    dataset
        The :class:`~radarcast.data.store.RadarDataset` it will run on (units, defaults).
    n_in, n_out
        Window lengths; the dataset's defaults when None.
    options
        Method options (e.g. ROVER's config fields, a checkpoint's ``device``).
    """
    n_in = count_or(n_in, dataset.n_in if dataset is not None else 5, "--n-in")
    n_out = count_or(n_out, dataset.n_out if dataset is not None else 15, "--n-out")
    options = dict(options or {})
    if spec in METHODS:
        return METHODS[spec](dataset, n_in, n_out, options)
    path = Path(spec)
    if path.suffix in (".pt", ".pth") or path.is_file():
        if not path.is_file():
            raise RadarcastError(f"{spec}: no such checkpoint file")
        return _checkpoint(path, dataset, n_in, n_out, options)
    raise RadarcastError(
        f"unknown method {spec!r}; choose one of: {', '.join(METHODS)}, or a checkpoint path (.pt)"
    )


def run_batched(
    forecaster: Forecaster,
    x: np.ndarray,
    batch_size: int | None = None,
) -> np.ndarray:
    """Call ``forecaster`` on (N, n_in, H, W) in batches; returns (N, n_out, H, W) float32."""
    bs = count_or(batch_size, forecaster.batch_size, "--batch-size")
    parts = [forecaster(x[i : i + bs]) for i in range(0, len(x), bs)]
    return (
        np.concatenate(parts)
        if parts
        else np.zeros((0, forecaster.n_out, *x.shape[2:]), np.float32)
    )


def check_window_lengths(forecaster: Forecaster, dataset, n_in: int | None) -> int:
    """The n_in to read windows with; RadarcastError when the forecaster needs more."""
    n_in = count_or(n_in, dataset.n_in, "--n-in")
    if n_in < forecaster.n_in:
        raise RadarcastError(
            f"{dataset.path}: {forecaster.name} needs {forecaster.n_in} input frames, "
            f"windows have n_in={n_in} (pass --n-in {forecaster.n_in} or more)"
        )
    return n_in


def plan_windows(
    dataset,
    forecaster: Forecaster,
    split: str | None,
    n_in: int | None,
    limit: int | None,
    stride: int = 1,
) -> tuple[np.ndarray, int]:
    """The window starts a forecast run will answer, and its n_in; raises before any work
    when the forecaster needs more input frames or there is no window. The windows are
    :func:`radarcast.data.selection.select_windows`' (the selection every command shares)."""
    from radarcast.data.selection import select_windows

    n_in = check_window_lengths(forecaster, dataset, n_in)
    starts = select_windows(dataset, split, n_in, forecaster.n_out, limit, stride)
    return starts, n_in


def read_inputs(dataset, starts: np.ndarray, n_in: int) -> np.ndarray:
    """(B, n_in, H, W) float32 input pixels of the windows at ``starts``, NaN where invalid."""
    x = np.stack([dataset.frames(int(s), int(s) + n_in) for s in starts]).astype(np.float32)
    masks = np.stack([dataset.masks(int(s), int(s) + n_in) for s in starts])
    x[~masks] = np.nan
    return x


def write_forecast(
    dataset,
    forecaster: Forecaster,
    output: str | Path,
    split: str | None = "test",
    n_in: int | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stride: int = 1,
) -> Path:
    """Forecast every window of ``split`` and write a forecast file atomically.

    Parameters
    ----------
    dataset
        An open :class:`~radarcast.data.store.RadarDataset`.
    forecaster
        From :func:`resolve`; its ``n_out`` sets the window length.
    output
        The forecast file (.h5) to create; refused when it exists unless ``overwrite``.
    split
        'train' | 'val' | 'test' | 'all' (or None).
    n_in
        Input frames per window (the dataset's default when None); ≥ ``forecaster.n_in``.
    limit
        Forecast only the first ``limit`` windows.
    stride
        Forecast every ``stride``-th window start of each segment.
    batch_size
        Windows per forecaster call; the forecaster's own choice when None.
    overwrite
        Replace an existing ``output``.
    progress
        ``progress(done, total)`` after every batch.

    Returns
    -------
    The path written.
    """
    starts, n_in = plan_windows(dataset, forecaster, split, n_in, limit, stride)
    return write_windows(
        dataset, forecaster, output, starts, n_in, split, batch_size, overwrite, progress
    )


def write_windows(
    dataset,
    forecaster: Forecaster,
    output: str | Path,
    starts: np.ndarray,
    n_in: int,
    split: str | None,
    batch_size: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Forecast the windows ``starts`` (planned by :func:`plan_windows`), ``batch_size`` per
    call, into a forecast file written atomically; a shard of a sharded run writes its part
    file with this too, batch for batch the same calls."""
    from radarcast.data.forecast_writer import ForecastWriter

    bs = count_or(batch_size, forecaster.batch_size, "--batch-size")
    with ForecastWriter(
        output,
        dataset,
        starts,
        method=forecaster.name,
        config=forecaster.config,
        n_in=n_in,
        n_out=forecaster.n_out,
        split=split,
        overwrite=overwrite,
        members=forecaster.members,
    ) as writer:
        if forecaster.stream is not None:  # an ensemble: one window at a time, in pieces
            for i in range(len(starts)):
                x = read_inputs(dataset, starts[i : i + 1], n_in)[0]
                writer.write_streamed(forecaster.stream(x, forecaster.n_out))
                if progress is not None:
                    progress(i + 1, len(starts))
            return writer.finish()
        for i in range(0, len(starts), bs):
            chunk = starts[i : i + bs]
            writer.write(forecaster(read_inputs(dataset, chunk, n_in)))
            if progress is not None:
                progress(i + len(chunk), len(starts))
        return writer.finish()
