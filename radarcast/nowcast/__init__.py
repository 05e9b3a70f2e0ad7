"""Nowcasts straight from raw radar files, no dataset needed.

:func:`read_latest` reads the newest files of any ``preprocess`` source with preprocess'
own readers, scale conversion, crop/resampling and geo-referencing, and checks that they
are consecutive frames of one product on one grid. :func:`run_nowcast` forecasts from them
with any forecaster (persistence, ROVER, a checkpoint) and :func:`write_nowcast` writes
the result in the format its suffix names: a forecast file (.h5), CF-netCDF (.nc),
GeoTIFF (.tif), Zarr, GRIB2, or a picture (.png sheet, .gif animation).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radarcast.data.georef import Georef
from radarcast.data.preprocess import (
    FrameTransform,
    PreprocessConfig,
    SameGrid,
    input_georef,
    output_georef,
)
from radarcast.data.readers import (
    IMAGE_SUFFIXES,
    READERS,
    ReadOptions,
    detect_kind,
    get_reader,
    input_suffixes,
    resolve_inputs,
    times_from_names,
)
from radarcast.data.units import Units
from radarcast.errors import RadarcastError

OUTPUT_SUFFIXES = (".h5", ".nc", ".tif", ".tiff", ".zarr", ".grib2", ".png", ".gif")


@dataclass
class LiveInputs:
    """The newest input frames, on the target pixel scale; quacks like a dataset for
    :func:`radarcast.forecasters.resolve` and :class:`ForecastWriter`.

    ``frames`` (n, H, W) uint8, ``valid`` (n, H, W) bool, ``times`` (n,) int64 s.
    """

    names: list[str]
    frames: np.ndarray
    valid: np.ndarray
    times: np.ndarray
    units: Units
    timestep_s: int
    georef: Georef | None
    attrs: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.names[-1])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.frames.shape)

    @property
    def height(self) -> int:
        return self.frames.shape[1]

    @property
    def width(self) -> int:
        return self.frames.shape[2]

    n_in = property(lambda self: len(self.frames))
    n_out = 12

    def identity(self) -> dict:
        h = hashlib.sha256(np.asarray(self.shape, np.int64).tobytes() + self.times.tobytes())
        return {"path": str(self.path.resolve()), "content_hash": h.hexdigest()[:16]}


def product_key(name: str) -> str:
    """A file name without its digits: files of one product share it (AQC…gif, …_fmi…)."""
    return re.sub(r"\d+", "#", Path(name).name)


def select_newest(paths: list[Path], n: int, time_pattern: str | None) -> list[Path]:
    """The newest ``n`` of ``paths`` (by the time in their names, else by name), oldest first."""
    if time_pattern:
        times = times_from_names(paths, time_pattern)
        paths = [p for _, p in sorted(zip(times, paths, strict=True))]
    else:
        paths = sorted(paths, key=lambda p: p.name)
    if len(paths) < n:
        raise RadarcastError(
            f"{len(paths)} input file{'s' if len(paths) != 1 else ''}; the method needs the "
            f"{n} newest frames"
        )
    return paths[-n:]


def nowcast_suffixes(fmt: str) -> tuple[str, ...] | None:
    """The suffixes of the files a nowcast in ``--format fmt`` reads from a folder (and
    watch mode takes as frames): the reader's; images' for ``auto``, the only kind of one
    frame per file that ``auto`` tells from a suffix. None: every file."""
    kind, importer = get_reader(fmt)
    return IMAGE_SUFFIXES if kind == "auto" else input_suffixes(kind, importer)


def read_latest(files: list[str], n: int, config: PreprocessConfig) -> LiveInputs:
    """Read the ``n`` newest of ``files`` as preprocess would; RadarcastError when they are
    fewer, of different products or grids, or not consecutive ``config.timestep_s`` apart.
    A folder gives only its files of the reader's kind (:func:`nowcast_suffixes`)."""
    config.check()
    kind, importer = get_reader(config.format)
    paths = resolve_inputs(files, nowcast_suffixes(config.format))
    if kind == "auto":
        kind = detect_kind(paths)
    if kind not in ("images", "pysteps"):
        raise RadarcastError(f"nowcast reads one frame per file (images or pysteps), not {kind}")
    paths = select_newest(paths, n, config.time_pattern)
    keys = {product_key(str(p)) for p in paths}
    if len(keys) > 1:
        raise RadarcastError(
            f"inputs are of different products: {paths[0].name} and {paths[-1].name}"
        )
    target = config.target_units()
    opts = ReadOptions(time_pattern=config.time_pattern, pysteps_importer=importer, target=target)
    transform = FrameTransform(config, convert=kind != "pysteps")
    frames, valid, times, same_grid = [], [], [], SameGrid()
    from_mtime = False
    for raw in READERS[kind](paths, opts):
        same_grid(raw)
        frame, mask = transform(raw)
        frames.append(frame)
        valid.append(np.ones(frame.shape, bool) if mask is None else mask)
        from_mtime |= raw.time is None
        times.append(raw.time if raw.time is not None else int(Path(raw.name).stat().st_mtime))
    times = np.asarray(times, np.int64)
    _check_consecutive(paths, times, config.timestep_s, from_mtime)
    first = same_grid.first
    georef = output_georef(input_georef(first, config), config, first.frame.shape)
    return LiveInputs(
        [str(p) for p in paths],
        np.stack(frames),
        np.stack(valid),
        times,
        target,
        config.timestep_s,
        georef,
    )


def _check_consecutive(paths: list[Path], times: np.ndarray, step: int, from_mtime: bool) -> None:
    gaps = np.diff(times)
    bad = np.flatnonzero(gaps != step)
    if len(bad):
        i = int(bad[0])
        hint = (
            "; times were taken from the files' modification times: pass --time-pattern"
            if from_mtime
            else " (--timestep)"
        )
        raise RadarcastError(
            f"inputs are not consecutive: {paths[i].name} → {paths[i + 1].name} is "
            f"{gaps[i] / 60:g} min, the time step is {step / 60:g} min{hint}"
        )


@dataclass
class Nowcast:
    """A forecast from live inputs: ``pred`` float32 pixels (n_out, H, W) or
    (M, n_out, H, W), NaN where unknown; ``analysis_time`` the newest input's time."""

    inputs: LiveInputs
    pred: np.ndarray
    method: str
    config: dict
    members: int | None = None

    @property
    def analysis_time(self) -> int:
        return int(self.inputs.times[-1])


def frames_needed(spec: str, leads: int, options: dict) -> int:
    """How many input frames ``spec`` reads (persistence and ROVER without torch; a
    checkpoint from its header, without building the model)."""
    if spec == "persistence":
        return 1
    if spec == "rover":
        from radarcast.baselines.rover import RoverConfig

        return int(options.get("frames", RoverConfig.frames))
    from radarcast.forecasters import METHODS, resolve

    if spec in METHODS or not Path(spec).is_file():  # other methods; or the registry's error
        return resolve(spec, None, n_out=leads, options=options).n_in
    from radarcast.checkpoint import load_checkpoint

    return int(load_checkpoint(spec)["n_in"])


def run_nowcast(inputs: LiveInputs, forecaster) -> Nowcast:
    """Forecast from the newest ``forecaster.n_in`` frames of ``inputs``."""
    x = inputs.frames[None].astype(np.float32)  # (1, n, H, W)
    x[0][~inputs.valid] = np.nan
    pred = forecaster(x)[0]
    members = getattr(forecaster, "members", None)
    return Nowcast(inputs, pred, forecaster.name, forecaster.config, members)


def prepare_write(inputs: LiveInputs, output: str | os.PathLike) -> None:
    """Start, in the background, what writing a nowcast of ``inputs`` to ``output`` needs
    and its forecast does not change: the lon/lat of every pixel of a CF-netCDF or Zarr
    file (pyproj, ~0.25 s on the MeteoSwiss grid) and netCDF4's import, so that they run
    beside the forecast."""
    suffix = Path(output).suffix.lower()
    if inputs.georef is None or suffix not in (".nc", ".zarr"):
        return
    from radarcast.export.lonlat import prefetch_lonlat

    netcdf = ("netCDF4",) if suffix == ".nc" else ()
    prefetch_lonlat(inputs.georef, inputs.frames.shape[1:], netcdf)


def check_output_suffix(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise RadarcastError(
            f"{path}: unknown output type {suffix or '(none)'!r}; "
            f"choose one of: {', '.join(OUTPUT_SUFFIXES)}"
        )
    return suffix


def write_nowcast(
    nowcast: Nowcast, output: str | os.PathLike, units: str = "mm/h", overwrite: bool = False
) -> Path:
    """Write ``nowcast`` atomically in the format of ``output``'s suffix."""
    from radarcast.data.schema import check_output

    suffix = check_output_suffix(output)
    if suffix == ".h5":
        return _write_h5(nowcast, check_output(output, overwrite), overwrite)
    if suffix in (".png", ".gif"):
        from radarcast.nowcast.render import write_picture

        return write_picture(nowcast, check_output(output, overwrite), units)
    from radarcast.export import write_cube

    return write_cube(nowcast_cube(nowcast, units), output, overwrite)


def _write_h5(nowcast: Nowcast, path: Path, overwrite: bool = True) -> Path:
    from radarcast.data.forecast_writer import ForecastWriter

    inp = nowcast.inputs
    extra = {"members": nowcast.members} if nowcast.members else {}
    n_out = nowcast.pred.shape[-3]
    with ForecastWriter(
        path,
        inp,
        np.zeros(1, np.int64),
        method=nowcast.method,
        config={**nowcast.config, "inputs": inp.names},
        n_in=inp.n_in,
        n_out=n_out,
        split=None,
        overwrite=overwrite,
        **extra,
    ) as w:
        w.write(nowcast.pred[None])
        return w.finish()


def nowcast_cube(nowcast: Nowcast, units: str):
    """``nowcast`` as an export :class:`~radarcast.export.cube.Cube`."""
    from radarcast.export.cube import Cube, _check_rain, check_units, value_table

    unit = check_units(units)
    inp = nowcast.inputs
    _check_rain(inp.units, unit, inp.path)
    lut = np.append(value_table(inp.units, unit), np.float32(np.nan))  # 256: unknown
    pred = nowcast.pred

    def read(i: int) -> np.ndarray:  # pixel levels (rounded) → values, NaN → NaN
        level = np.rint(pred)
        np.nan_to_num(level, copy=False, nan=256.0)
        return lut[level.astype(np.uint16)]

    n_out = pred.shape[-3]
    leads = inp.timestep_s * np.arange(1, n_out + 1, dtype=np.int64)
    attrs = {
        "method": nowcast.method,
        "inputs": ", ".join(Path(n).name for n in inp.names),
        "source_path": str(inp.path),
    }
    return Cube(
        "forecast",
        nowcast.method,
        inp.times[-1:],
        leads,
        nowcast.members,
        tuple(pred.shape[-2:]),
        read,
        inp.georef,
        unit,
        attrs,
    )
