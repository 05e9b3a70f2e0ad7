"""What an animation shows: one window's input, truth and predictions (:class:`WindowPanels`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radarcast.data.store import ProgressFn, format_time, parse_time
from radarcast.errors import RadarcastError


# --------------------------------------------------------------------------- panels
@dataclass(frozen=True)
class WindowPanels:
    """Everything drawn for one window: observations, truth and each method's prediction.

    ``x``/``mask_x`` (n_in, H, W) uint8/bool; ``y``/``mask_y`` (n_out, H, W); ``times``
    (n_in + n_out,) int64 s; ``preds``/``pred_valid`` (M, n_out, H, W) uint8/bool.
    """

    source: str
    start: int
    times: np.ndarray
    x: np.ndarray
    mask_x: np.ndarray
    y: np.ndarray
    mask_y: np.ndarray
    methods: tuple[str, ...]
    preds: np.ndarray
    pred_valid: np.ndarray
    georef: object = None  # the dataset's Georef: km grid lines and a scale bar when set
    probs: tuple[bool, ...] = ()  # per method panel: True = probability in percent (0..100)

    @property
    def n_in(self) -> int:
        return len(self.x)

    @property
    def n_out(self) -> int:
        return len(self.y)

    def lead_s(self, t: int) -> int:
        """Seconds from t0 (the last input) to frame ``t`` of the window."""
        return int(self.times[t] - self.times[self.n_in - 1])


def choose_window(ds, n_in: int, n_out: int, split: str, window: int | None = None,
                  time: str | None = None, stride: int = 1) -> int:
    """The start frame of window number ``window`` of ``split`` (counting every ``stride``-th
    window, as forecast and evaluate select them), or of the window whose last input frame
    is at ``time`` (ISO-8601, any split)."""
    from radarcast.data.selection import select_windows

    if (window is None) == (time is None):
        raise RadarcastError("give exactly one of --window K or --time ISO-8601")
    if window is not None:
        try:
            starts = select_windows(ds, split, n_in, n_out, None, stride)
        except RadarcastError:  # no window at all: said with the range below
            starts = np.zeros(0, np.int64)
        if not 0 <= window < len(starts):
            have = f"windows 0..{len(starts) - 1}" if len(starts) else "no windows"
            raise RadarcastError(f"--window {window} is out of range: the {split} split of "
                                 f"{ds.path} has {have} of {n_in}+{n_out} frames")
        return int(starts[window])
    t = parse_time(time)
    start = ds.index_of_time(t) - n_in + 1
    if start not in set(ds.windows(n_in, n_out, None).tolist()):
        raise RadarcastError(f"{ds.path}: no window of {n_in}+{n_out} frames in one segment has "
                             f"its last input at {format_time(t)}")
    return start


def _as_pixels(pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float pixels with NaN → (uint8 pixels, bool valid)."""
    valid = np.isfinite(pred)
    return np.clip(np.rint(np.nan_to_num(pred)), 0, 255).astype(np.uint8), valid


def gather_panels(ds, start: int, n_in: int, n_out: int, methods: Sequence[str] = (),
                  forecasts: Sequence = (), progress: ProgressFn | None = None,
                  members: int | None = None, event: np.ndarray | None = None,
                  label: str = "") -> WindowPanels:
    """Read window ``start`` and each method's prediction for it.

    ``methods`` are run live through :func:`radarcast.forecasters.resolve`; ``forecasts`` are
    open :class:`~radarcast.data.forecast_file.ForecastFile` objects already checked against
    ``ds``. ``members`` (live ``rover``: the ensemble size) and ``event`` (256,) bool per
    pixel level (the --probability threshold) choose ensemble panels, see
    :func:`radarcast.animation.ensemble.expand_source`.
    """
    from radarcast.animation.ensemble import expand_source
    from radarcast.forecasters import ENSEMBLE_OPTIONS, resolve

    win = ds.window(start, n_in, n_out)
    names, preds, valid, probs, seen = [], [], [], [], []
    ensembles = 0

    def add(name, p, v):
        nonlocal ensembles
        ensembles += p.ndim == 4
        for title, pp, vv, is_p in expand_source(name, p, v, members, event, label):
            names.append(title), preds.append(pp), valid.append(vv), probs.append(is_p)
        seen.append(name)
        if progress:
            progress(len(seen), total)

    x = win.x.astype(np.float32)
    x[~win.mask_x] = np.nan  # (n_in, H, W): NaN where the input is unknown
    total = len(methods) + len(forecasts)
    for spec in methods:
        makes = members is not None and spec in ENSEMBLE_OPTIONS
        options = {"members": members} if makes else None  # K members, K shown
        f = resolve(spec, ds, n_in=n_in, n_out=n_out, options=options)
        p, v = _as_pixels(f(x[None])[0])  # (n_out, H, W) or (M, n_out, H, W)
        add(f.name, p, v)
    for ff in forecasts:
        if start not in ff.starts:
            raise RadarcastError(f"{ff.path} has no forecast for the window at frames "
                                 f"{start}-{start + n_in + n_out - 1} (it holds "
                                 f"{len(ff.starts)} windows of the {ff.split} split)")
        p, v = _as_pixels(ff.pred(ff.row_of(start))[0][..., :n_out, :, :])
        add(ff.method if ff.method not in seen else f"{ff.method} ({Path(ff.path).stem})", p, v)
    if members is not None and not ensembles:
        raise RadarcastError(f"--members {members} shows ensemble members, but no method here "
                             "is an ensemble (a forecast file with members, or -m "
                             f"{' or -m '.join(ENSEMBLE_OPTIONS)})")
    shape = (0, n_out, *win.y.shape[1:])
    return WindowPanels(
        source=Path(ds.path).name, start=int(start), times=win.times, x=win.x,
        mask_x=np.asarray(win.mask_x), y=win.y, mask_y=np.asarray(win.mask_y),
        methods=tuple(names),
        preds=np.stack(preds) if preds else np.zeros(shape, np.uint8),
        pred_valid=np.stack(valid) if valid else np.zeros(shape, bool),
        georef=getattr(ds, "georef", None), probs=tuple(probs),
    )
