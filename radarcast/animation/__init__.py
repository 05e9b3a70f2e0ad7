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

import numpy as np

from radarcast.animation.colours import (  # noqa: I001  (after the modules it builds on)
    COLOUR_MAPS,
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
from radarcast.animation.gif import encode_gif
from radarcast.animation.layout import Grid, clock, lead_text, text_block
from radarcast.data.store import ProgressFn, check_output, format_time, parse_time
from radarcast.data.units import UNIT_LABELS, check_unit
from radarcast.errors import RadarcastError

__all__ = [
    "DBZ_LEVELS", "MMH_LEVELS", "NODATA_RGB", "OVERLAY_RGB", "RADAR_RGB", "AnimateConfig",
    "AnimationResult", "ColourScale", "Grid", "WindowPanels", "animate", "animation_frames",
    "animation_grid", "check_format", "choose_window", "clock", "colour_scale", "colourise",
    "contact_sheet", "contingency_rgb", "gather_panels", "lead_text", "require_video",
    "sheet_grid", "sheet_leads", "text_block", "write_output",
]

FORMATS = (".gif", ".mp4", ".png")
VIDEO_HINT = "pip install 'radarcast[video]'"
MAX_PANEL = 8192  # px per panel side after --scale
MIN_WIDTH = 200  # px: the narrowest --max-width that still leaves room for the legend


@dataclass(frozen=True)
class AnimateConfig:
    """How to draw one window.

    ``overlay`` is a threshold in ``units``; ``leads`` are 1-based lead steps for the contact
    sheet columns (None: up to 4, evenly spaced); ``n_in``/``n_out`` None take the first
    forecast file's lengths, else the dataset's; ``stride`` makes ``--window K`` count every
    stride-th window of the split; ``max_width`` bounds the output's width in pixels (the
    panels shrink to fit; None: no bound).
    """

    units: str = "dbz"
    cmap: str = "radar"
    fps: float = 4.0
    overlay: float | None = None
    scale: int = 2
    leads: tuple[int, ...] | None = None
    n_in: int | None = None
    n_out: int | None = None
    split: str = "test"
    stride: int = 1
    max_width: int | None = 1600

    def __post_init__(self) -> None:
        check_unit(self.units)
        if self.stride < 1:
            raise RadarcastError(f"--stride must be ≥ 1, got {self.stride}")
        if self.max_width is not None and self.max_width < MIN_WIDTH:
            raise RadarcastError(f"--max-width must be ≥ {MIN_WIDTH} px (or 0 for no limit), "
                                 f"got {self.max_width}")
        if self.cmap not in COLOUR_MAPS:
            choices = ", ".join(COLOUR_MAPS)
            raise RadarcastError(f"unknown --cmap {self.cmap!r}; choose one of: {choices}")
        if not 0 < self.fps <= 60:
            raise RadarcastError(f"--fps must be in (0, 60], got {self.fps}")
        if not 1 <= self.scale <= 16:
            raise RadarcastError(f"--scale must be an integer 1..16, got {self.scale}")
        if self.leads is not None and (not self.leads or min(self.leads) < 1):
            raise RadarcastError(f"--leads must be lead steps ≥ 1, got {self.leads}")



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
                  forecasts: Sequence = (), progress: ProgressFn | None = None) -> WindowPanels:
    """Read window ``start`` and each method's prediction for it.

    ``methods`` are run live through :func:`radarcast.forecasters.resolve`; ``forecasts`` are
    open :class:`~radarcast.data.forecast_file.ForecastFile` objects already checked against
    ``ds``.
    """
    from radarcast.forecasters import resolve

    win = ds.window(start, n_in, n_out)
    names, preds, valid = [], [], []
    x = win.x.astype(np.float32)
    x[~win.mask_x] = np.nan  # (n_in, H, W): NaN where the input is unknown
    total = len(methods) + len(forecasts)
    for spec in methods:
        f = resolve(spec, ds, n_in=n_in, n_out=n_out)
        p, v = _as_pixels(f(x[None])[0])  # (n_out, H, W)
        names.append(f.name), preds.append(p), valid.append(v)
        if progress:
            progress(len(names), total)
    for ff in forecasts:
        if start not in ff.starts:
            raise RadarcastError(f"{ff.path} has no forecast for the window at frames "
                                 f"{start}-{start + n_in + n_out - 1} (it holds "
                                 f"{len(ff.starts)} windows of the {ff.split} split)")
        p, v = _as_pixels(ff.pred(ff.row_of(start))[0, :n_out])
        name = ff.method if ff.method not in names else f"{ff.method} ({Path(ff.path).stem})"
        names.append(name), preds.append(p), valid.append(v)
        if progress:
            progress(len(names), total)
    shape = (0, n_out, *win.y.shape[1:])
    return WindowPanels(
        source=Path(ds.path).name, start=int(start), times=win.times, x=win.x,
        mask_x=np.asarray(win.mask_x), y=win.y, mask_y=np.asarray(win.mask_y),
        methods=tuple(names),
        preds=np.stack(preds) if preds else np.zeros(shape, np.uint8),
        pred_valid=np.stack(valid) if valid else np.zeros(shape, bool),
    )


# --------------------------------------------------------------------------- frames
def _legend(scale: ColourScale, cfg: AnimateConfig) -> list:
    items: list = [("no data", scale.nodata)]
    if cfg.overlay is not None:
        items.append((f"events >= {cfg.overlay:g} {UNIT_LABELS[cfg.units]}:", None))
        items += list(OVERLAY_RGB.items())
    return items


def _title(panels: WindowPanels, cfg: AnimateConfig) -> str:
    t0 = panels.times[panels.n_in - 1]
    last = panels.start + panels.n_in + panels.n_out - 1
    return f"{panels.source} · frames {panels.start}-{last} · t0 = {clock(t0, True)}"


def _method_rgb(panels: WindowPanels, m: int, k: int, scale: ColourScale, event) -> np.ndarray:
    # hatched where the method gave no value or the truth has no data, as in Truth's panel
    pred, valid = panels.preds[m, k], panels.pred_valid[m, k] & panels.mask_y[k]
    if event is None:
        return colourise(pred, valid, scale)
    return contingency_rgb(pred, panels.y[k], valid & panels.mask_y[k], event, scale)


def _event(scale: ColourScale, cfg: AnimateConfig) -> np.ndarray | None:
    """(256,) bool: which pixel levels are events at the overlay threshold (value ≥ it)."""
    return None if cfg.overlay is None else scale.values >= cfg.overlay


def animation_grid(panels: WindowPanels, scale: ColourScale, cfg: AnimateConfig) -> Grid:
    """The layout of one animation frame: Input, Truth and one column per method."""
    titles = ["Input", "Truth", *panels.methods]
    return Grid(1, len(titles), panels.x.shape[1:], cfg.scale, title=_title(panels, cfg),
                col_titles=titles, scale=scale, legend=_legend(scale, cfg),
                max_width=cfg.max_width)


def animation_frames(panels: WindowPanels, scale: ColourScale, cfg: AnimateConfig):
    """Yield the n_in + n_out frames, each (height, width, 3) uint8, of the animation."""
    grid = animation_grid(panels, scale, cfg)
    event, n_in = _event(scale, cfg), panels.n_in
    inputs = [colourise(panels.x[i], panels.mask_x[i], scale) for i in range(n_in)]
    first = lead_text(panels.lead_s(n_in))
    for t in range(n_in + panels.n_out):
        canvas, lead = grid.canvas(), panels.lead_s(t)
        when = f"{lead_text(lead)} · {clock(panels.times[t])}"
        if t < n_in:
            for c in (0, 1):  # Input and Truth both show the observation
                grid.cell(canvas, 0, c, inputs[t])
                grid.stamp(canvas, 0, c, f"obs {when}")
            for m in range(len(panels.methods)):
                grid.stamp(canvas, 0, 2 + m, f"starts at {first}")
            what = f"observed {lead_text(lead)}" if lead else "t0 (last observation)"
        else:
            k = t - n_in
            grid.cell(canvas, 0, 0, inputs[-1])
            grid.stamp(canvas, 0, 0, f"t0 · {clock(panels.times[n_in - 1])} (held)")
            grid.cell(canvas, 0, 1, colourise(panels.y[k], panels.mask_y[k], scale))
            grid.stamp(canvas, 0, 1, when)
            for m in range(len(panels.methods)):
                grid.cell(canvas, 0, 2 + m, _method_rgb(panels, m, k, scale, event))
                grid.stamp(canvas, 0, 2 + m, when)
            what = f"forecast lead {lead_text(lead)}"
        grid.info(canvas, f"valid {clock(panels.times[t], True)} · {what}")
        yield canvas


def sheet_leads(leads: Sequence[int] | None, n_out: int) -> list[int]:
    """The 1-based lead steps to show: ``leads`` checked, or up to 4 evenly spaced."""
    if leads is None:
        return sorted({int(v) for v in np.rint(np.linspace(1, n_out, min(4, n_out)))})
    bad = [k for k in leads if not 1 <= k <= n_out]
    if bad:
        raise RadarcastError(f"--leads {bad[0]} is out of range: this window has leads 1..{n_out}")
    return list(leads)


def sheet_grid(panels: WindowPanels, scale: ColourScale, cfg: AnimateConfig) -> Grid:
    """The contact sheet's layout: a row per panel, a column per lead in ``cfg.leads``."""
    leads = sheet_leads(cfg.leads, panels.n_out)
    rows = ["Input", "Truth", *panels.methods]
    return Grid(len(rows), len(leads), panels.x.shape[1:], cfg.scale, title=_title(panels, cfg),
                col_titles=[lead_text(panels.lead_s(panels.n_in - 1 + k)) for k in leads],
                row_titles=rows, scale=scale, legend=_legend(scale, cfg), titles_above=1,
                max_width=cfg.max_width)


def contact_sheet(panels: WindowPanels, scale: ColourScale, cfg: AnimateConfig) -> np.ndarray:
    """(height, width, 3) uint8: rows Input/Truth/methods, columns the chosen lead times.

    The Input row shows observed frames spread evenly over the inputs, ending at t0.
    """
    leads, n_in = sheet_leads(cfg.leads, panels.n_out), panels.n_in
    grid = sheet_grid(panels, scale, cfg)
    canvas, event = grid.canvas(), _event(scale, cfg)
    step = lead_text(panels.lead_s(n_in)).lstrip("+")
    grid.info(canvas, f"Input: observations up to t0 · other rows: lead time after t0 "
                      f"(time step {step})")
    picks = range(n_in) if n_in < len(leads) else np.rint(np.linspace(0, n_in - 1, len(leads)))
    for c, i in enumerate(int(i) for i in picks):
        grid.cell(canvas, 0, c, colourise(panels.x[i], panels.mask_x[i], scale))
        grid.stamp(canvas, 0, c, f"obs {lead_text(panels.lead_s(i))} · {clock(panels.times[i])}")
    for c, lead in enumerate(leads):
        k = lead - 1
        when = f"{clock(panels.times[n_in + k])} UTC"
        grid.cell(canvas, 1, c, colourise(panels.y[k], panels.mask_y[k], scale))
        grid.stamp(canvas, 1, c, when)
        for m in range(len(panels.methods)):
            grid.cell(canvas, 2 + m, c, _method_rgb(panels, m, k, scale, event))
            grid.stamp(canvas, 2 + m, c, when)
    return canvas


# --------------------------------------------------------------------------- output
def check_format(path: str | os.PathLike) -> str:
    """The output's extension, checked; '.mp4' also needs the video extra."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise RadarcastError(f"{path}: unsupported output type {suffix or '(none)'!r}; "
                             f"use one of: {', '.join(FORMATS)}")
    if suffix == ".mp4":
        require_video()
    return suffix


def require_video():
    """The imageio_ffmpeg module, or a RadarcastError saying how to install it."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise RadarcastError(f"writing .mp4 needs imageio-ffmpeg: {VIDEO_HINT}") from None
    return imageio_ffmpeg


def _write_mp4(path: Path, frames, fps: float) -> None:
    ffmpeg = require_video()
    writer = None
    for frame in frames:
        if writer is None:  # H.264 in yuv420p wants sizes divisible by 16: pad with white
            h, w = (-(-s // 16) * 16 for s in frame.shape[:2])
            writer = ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", quality=8,
                                         output_params=["-f", "mp4"], ffmpeg_log_level="error")
            writer.send(None)
        padded = np.full((h, w, 3), 255, np.uint8)
        padded[: frame.shape[0], : frame.shape[1]] = frame
        writer.send(padded)
    if writer is not None:
        writer.close()


def write_output(path: str | os.PathLike, frames, fps: float = 4.0) -> Path:
    """Write frames ((H, W, 3) uint8 each) as .gif/.mp4, or one image as .png, atomically."""
    import imageio.v3 as iio

    path = Path(path)
    suffix = check_format(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{suffix}")
    try:
        # GIF/PNG are encoded in memory and written by Python: a failed write (full or
        # read-only disk) is then one OSError, not a plugin retrying in its destructor
        if suffix == ".gif":
            tmp.write_bytes(encode_gif(frames, fps))  # one exact palette for all frames
        elif suffix == ".mp4":
            _write_mp4(tmp, frames, fps)
        else:
            tmp.write_bytes(iio.imwrite("<bytes>", np.asarray(frames), extension=".png"))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
    n_in = cfg.n_in or (first.n_in if first else ds.n_in)
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
        if max(ds.height, ds.width) * config.scale > MAX_PANEL:
            raise RadarcastError(f"--scale {config.scale} makes {ds.height}x{ds.width} panels "
                                 f"larger than {MAX_PANEL} px; use a smaller --scale")
        files = [open_forecast(p) for p in forecasts]
        try:
            n_in, n_out = _lengths(ds, files, config)
            start = choose_window(ds, n_in, n_out, config.split, window, time, config.stride)
            panels = gather_panels(ds, start, n_in, n_out, methods, files, progress)
        finally:
            for f in files:
                f.close()
    if suffix == ".png":
        image = contact_sheet(panels, scale, config)
        n = 1
    else:
        image = _counted(animation_frames(panels, scale, config), n_in + n_out, progress)
        n = n_in + n_out
    write_output(out, image, config.fps)
    shape = _shape_of(out) if suffix != ".png" else image.shape
    return AnimationResult(out, n, shape[1], shape[0], start, panels.methods)


def _counted(frames, total: int, progress: ProgressFn | None):
    for i, frame in enumerate(frames, 1):
        yield frame
        if progress:
            progress(i, total)


def _shape_of(path: Path) -> tuple[int, ...]:
    import imageio.v3 as iio

    return iio.improps(path, index=0).shape
