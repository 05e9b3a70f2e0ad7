"""Input | truth | predictions of one window as a GIF, an MP4 or a PNG contact sheet.

Frames are composed with numpy: each panel is a 256-entry lookup from pixel level to RGB
(one ``np.take`` per panel), pasted into a pre-drawn canvas that already holds titles,
colour bar and legend; only the per-frame time stamps are drawn with Pillow, and cached.

Panels: **Input** plays the ``n_in`` observed frames, then holds the last (t0); **Truth**
shows the observations; each method shows its prediction from the first lead on. With an
overlay threshold, method panels show hits, misses and false alarms against the truth.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from radarcast.animation.colours import (  # noqa: I001  (after the modules it builds on)
    DBZ_LEVELS,
    MMH_LEVELS,
    NODATA_RGB,
    OVERLAY_RGB,
    RADAR_RGB,
    ColourScale,
    colour_scale,
    colourise,
    contingency_rgb,
)
from radarcast.animation.config import (  # noqa: F401  (re-exported: the old import path)
    FORMATS,
    MAX_PANEL,
    VIDEO_HINT,
    AnimateConfig,
)
from radarcast.animation.frames import (  # noqa: F401  (re-exported: the old import path)
    _event,
    _legend,
    _method_rgb,
    _title,
    animation_frames,
    animation_grid,
    contact_sheet,
    prob_label,
    sheet_grid,
    sheet_leads,
)
from radarcast.animation.layout import Grid, clock, lead_text, text_block
from radarcast.animation.output import (  # noqa: F401  (re-exported: the old import path)
    _write_mp4,
    check_format,
    require_video,
    write_output,
)
from radarcast.animation.panels import (  # noqa: F401  (re-exported: the old import path)
    WindowPanels,
    _as_pixels,
    choose_window,
    gather_panels,
)
from radarcast.data.store import ProgressFn, check_output
from radarcast.errors import RadarcastError

__all__ = [
    "DBZ_LEVELS", "MMH_LEVELS", "NODATA_RGB", "OVERLAY_RGB", "RADAR_RGB", "AnimateConfig",
    "AnimationResult", "ColourScale", "Grid", "WindowPanels", "animate", "animation_frames",
    "animation_grid", "check_format", "choose_window", "clock", "colour_scale", "colourise",
    "contact_sheet", "contingency_rgb", "gather_panels", "lead_text", "require_video",
    "sheet_grid", "sheet_leads", "text_block", "write_output",
]


@dataclass(frozen=True)
class AnimationResult:
    path: Path
    frames: int
    width: int
    height: int
    start: int
    methods: tuple[str, ...]


def _lengths(ds, forecasts, cfg: AnimateConfig) -> tuple[int, int]:
    first = forecasts[0] if forecasts else None
    n_in = cfg.n_in or (first.n_in if first else None) or ds.n_in  # a CF file's: None
    n_out = cfg.n_out or (min(f.n_out for f in forecasts) if forecasts else ds.n_out)
    for f in forecasts:
        f.check_matches(ds, n_in, n_out)
    return n_in, n_out


def animate(dataset: str | os.PathLike, output: str | os.PathLike, *,
            methods: Sequence[str] = (), forecasts: Sequence[str | os.PathLike] = (),
            window: int | None = None, time: str | None = None,
            config: AnimateConfig = AnimateConfig(), overwrite: bool = False,
            progress: ProgressFn | None = None) -> AnimationResult:
    """Draw one window of ``dataset`` with each method's prediction into ``output``.

    ``window`` indexes the windows of ``config.split`` (0 = first); ``time`` (ISO-8601)
    picks the window whose last input frame is at that time. The output type follows the
    extension: .gif / .mp4 animation, .png contact sheet. Nothing is written on error.
    """
    from radarcast.data.forecast_file import open_forecast
    from radarcast.data.store import open_dataset

    suffix = check_format(output)
    out = check_output(output, overwrite)
    with open_dataset(dataset) as ds:
        scale = colour_scale(ds.units, config.units, config.cmap)
        if config.overlay is not None:
            ds.units.check_reachable(config.overlay, config.units, "--overlay", str(dataset))
        if max(ds.height, ds.width) * config.scale > MAX_PANEL:
            raise RadarcastError(f"--scale {config.scale} makes {ds.height}x{ds.width} panels "
                                 f"larger than {MAX_PANEL} px; use a smaller --scale")
        files = [open_forecast(p, config.reproject) for p in forecasts]
        try:
            n_in, n_out = _lengths(ds, files, config)
            start = choose_window(ds, n_in, n_out, config.split, window, time, config.stride)
            event = _probability_event(ds, config)
            panels = gather_panels(ds, start, n_in, n_out, methods, files, progress,
                                   config.members, event, prob_label(config))
        finally:
            for f in files:
                f.close()
    if suffix == ".png":
        image = contact_sheet(panels, scale, config)
        n = 1
    else:
        image = _counted(animation_frames(panels, scale, config), n_in + n_out, progress)
        n = n_in + n_out
    write_output(out, image, config.fps, overwrite)
    shape = _shape_of(out) if suffix != ".png" else image.shape
    return AnimationResult(out, n, shape[1], shape[0], start, panels.methods)


def _probability_event(ds, cfg: AnimateConfig):
    """(256,) bool per pixel level: reaches the --probability threshold (None: not asked).

    The threshold in ``cfg.units`` is converted with the dataset's units exactly as
    evaluate's thresholds are (:func:`radarcast.evaluation.thresholds.resolve_thresholds`).
    """
    import numpy as np

    from radarcast.evaluation.thresholds import resolve_thresholds

    if cfg.probability is None:
        return None
    try:
        t = resolve_thresholds(ds.units, values=[cfg.probability], unit=cfg.units,
                               where=str(ds.path))
    except RadarcastError as e:
        raise RadarcastError(f"--probability {cfg.probability:g}: {e}") from None
    level = t.pixels[0]
    if not 0 < level <= 255:
        raise RadarcastError(f"--probability {cfg.probability:g} {cfg.units} is outside what "
                             f"{ds.path} can hold (pixel level {level:.3g}, not in (0, 255])")
    return np.arange(256) >= level


def _counted(frames, total: int, progress: ProgressFn | None):
    for i, frame in enumerate(frames, 1):
        yield frame
        if progress:
            progress(i, total)


def _shape_of(path: Path) -> tuple[int, ...]:
    import imageio.v3 as iio

    return iio.improps(path, index=0).shape
