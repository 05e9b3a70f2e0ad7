"""The forecast file (schema ``radarcast-forecast/1``): a method's predictions for a set of
windows of one dataset, written atomically and checked against that dataset when read.

Layout::

    pred     uint8 (N, n_out, H, W)      predicted pixels, chunked one lead per chunk, gzip
             uint8 (N, M, n_out, H, W)   an ensemble of M members (root attribute members = M)
    valid    bool, pred's shape          only when some predicted pixel is unknown (NaN)
    start    int64 (N,)                  the dataset window start index each row answers

    analysis_time int64 (N,)          valid time of each window's last input frame, s since
                                      1970 (files written before it lack it)

Attributes: schema, method, config (JSON), n_in, n_out, split, dataset_path,
dataset_hash (see :meth:`RadarDataset.identity`), created_by, created_at; members for an
ensemble file only; and, copied from the dataset so that the file can be exported alone,
timestep_s, the pixel scale (dbz_gain, dbz_offset, zr_a, zr_b) and its geo-reference
(``geo_*``, see :mod:`radarcast.data.georef`).

This module holds the format's schema name, the reading side (:func:`open_forecast`,
:class:`ForecastFile`, :class:`ForecastSource`) and :func:`stored_pixels`, the rounding
both sides share; the writer is :class:`~radarcast.data.forecast_writer.ForecastWriter`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from radarcast.data.georef import Georef, georef_from_attrs
from radarcast.data.store import read_or_close, refuse_outside_storage
from radarcast.errors import RadarcastError

FORECAST_SCHEMA = "radarcast-forecast/1"


class ForecastFile:
    """Read access to a forecast file; see :func:`open_forecast`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.reproject = False  # asked for (open_forecast): only refused here, with a reason
        if not self.path.is_file():
            raise RadarcastError(f"{self.path}: no such forecast file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as e:
            raise RadarcastError(f"{self.path}: not a readable HDF5 file ({e})") from None
        read_or_close(self, self._read_header)

    def _read_header(self) -> None:
        """Read and check the attributes and index arrays; RadarcastError on any mismatch."""
        a, f, where = self._file.attrs, self._file, str(self.path)
        refuse_outside_storage(f, where)
        schema = _attr(a, "schema", where, required=False)
        if not isinstance(schema, str) or schema != FORECAST_SCHEMA:
            raise RadarcastError(
                f"{where} is not a radarcast forecast file "
                f"(schema {schema!r}, expected {FORECAST_SCHEMA!r})"
            )
        self.method = str(_attr(a, "method", where))
        try:
            self.config = json.loads(_attr(a, "config", where))
        except (TypeError, ValueError):
            raise RadarcastError(f"{where}: attribute 'config' is not JSON") from None
        self.n_in, self.n_out = _count(a, "n_in", where), _count(a, "n_out", where)
        self.split = str(_attr(a, "split", where))
        self.dataset_path = str(_attr(a, "dataset_path", where))
        self.dataset_hash = str(_attr(a, "dataset_hash", where))
        fp = a.get("dataset_fingerprint")  # absent in files written before fingerprints
        self.dataset_fingerprint = fp.decode() if isinstance(fp, bytes) else fp
        start, pred = _array(f, "start", where), _array(f, "pred", where)
        if start.ndim != 1 or start.dtype.kind not in "iu":
            raise RadarcastError(
                f"{where}: 'start' must be 1-D integers, got {start.dtype} {start.shape}"
            )
        self.members = _members(a, where)
        lead_axes = (self.n_out,) if self.members is None else (self.members, self.n_out)
        layout = "(N, n_out, H, W)" if self.members is None else "(N, M, n_out, H, W)"
        if pred.ndim != 3 + len(lead_axes) or pred.dtype != np.uint8:
            raise RadarcastError(
                f"{where}: 'pred' must be uint8 {layout}, got {pred.dtype} {pred.shape}"
            )
        if pred.shape[:-2] != (start.shape[0], *lead_axes):
            expect = ", ".join(str(v) for v in (start.shape[0], *lead_axes))
            raise RadarcastError(
                f"{where}: 'pred' has shape {pred.shape}, expected "
                f"({expect}, H, W) for {start.shape[0]} windows"
            )
        self.starts = start[...].astype(np.int64)
        self.shape = pred.shape
        self.grid = tuple(pred.shape[-2:])
        self._read_context(a, f, where)
        self.has_valid = "valid" in f
        if self.has_valid:
            valid = _array(f, "valid", where)
            if valid.shape != pred.shape or valid.dtype != bool:
                raise RadarcastError(
                    f"{where}: 'valid' must be bool {pred.shape}, got {valid.dtype} {valid.shape}"
                )

    def _read_context(self, a, f, where: str) -> None:
        """What files since the geo-reference carry; None where a file lacks it."""
        from radarcast.data.units import Units

        self.georef: Georef | None = georef_from_attrs(a, where)
        self.timestep_s = int(a["timestep_s"]) if "timestep_s" in a else None
        self.units = (
            Units.from_attrs(a)
            if all(k in a for k in ("dbz_gain", "dbz_offset", "zr_a", "zr_b"))
            else None
        )
        self.analysis_times = None
        if "analysis_time" in f:
            t = _array(f, "analysis_time", where)
            if t.shape != (len(self.starts),):
                raise RadarcastError(f"{where}: 'analysis_time' must hold one time per window")
            self.analysis_times = t[...].astype(np.int64)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ForecastFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check_matches(self, dataset, n_in: int | None = None, n_out: int | None = None) -> None:
        """Raise unless this file was made from ``dataset`` (and the given window lengths)."""
        if self.reproject and self.grid != tuple(dataset.shape[1:]):
            raise RadarcastError(
                f"{self.path}: predictions are {self.grid[0]}x{self.grid[1]}, the dataset's "
                f"grid is {dataset.shape[1]}x{dataset.shape[2]}; --reproject is for other "
                "tools' CF-netCDF (.nc) forecasts, not radarcast forecast files (make this one "
                "from the dataset scored)"
            )
        mine, theirs = self.dataset_fingerprint, getattr(dataset, "fingerprint", None)
        if isinstance(mine, str) and theirs is not None:
            if theirs() != mine:
                raise RadarcastError(
                    f"{self.path} was made from another dataset (fingerprint {mine[:8]}... of "
                    f"{Path(self.dataset_path).name}), not from {dataset.path.name} "
                    f"(fingerprint {theirs()[:8]}...)"
                )
        elif dataset.identity()["content_hash"] != self.dataset_hash:
            raise RadarcastError(
                f"{self.path} was made from another dataset ({self.dataset_path}), "
                f"not {dataset.path}"
            )
        if n_in is not None and n_in != self.n_in:
            raise RadarcastError(f"{self.path} used n_in={self.n_in}, expected {n_in}")
        if n_out is not None and n_out > self.n_out:
            raise RadarcastError(f"{self.path} has {self.n_out} leads, {n_out} were asked for")
        if self.grid != tuple(dataset.shape[1:]):
            h, w = dataset.shape[1:]
            raise RadarcastError(
                f"{self.path}: predictions are {self.grid[0]}x{self.grid[1]}, "
                f"the dataset's grid is {h}x{w}"
            )
        if len(self.starts) and (self.starts.min() < 0 or self.starts.max() >= dataset.n_frames):
            raise RadarcastError(f"{self.path}: window starts lie outside the dataset's frames")

    def row_of(self, start: int) -> int:
        """The row that answers window ``start``; RadarcastError if the file has none."""
        rows = np.flatnonzero(self.starts == start)
        if not len(rows):
            raise RadarcastError(f"{self.path} holds no forecast for window {start}")
        return int(rows[0])

    def pred(self, rows) -> np.ndarray:
        """(n, n_out, H, W) float32 pixels of the given rows, NaN where unknown;
        (n, M, n_out, H, W) for an ensemble file."""
        rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        try:
            out = np.stack([self._file["pred"][int(r)] for r in rows]).astype(np.float32)
            if self.has_valid:
                valid = np.stack([self._file["valid"][int(r)] for r in rows])
                out[~valid] = np.nan
        except OSError as e:  # a damaged chunk: the file, not the caller, is at fault
            raise RadarcastError(f"{self.path}: cannot read predictions ({e})") from None
        return out


def stored_pixels(values: np.ndarray) -> np.ndarray:
    """Float pixels as a forecast file stores and returns them: rounded to the nearest
    integer (half to even), clipped to 0…255, float32, NaN kept where not finite.

    The forecast writer stores these (as uint8 with a validity mask) and ``evaluate`` scores
    live forecasts through the same function, so a method scored live and the same method
    read back from its file give identical counts.
    """
    out = np.array(values, dtype=np.float32)  # a copy
    finite = np.isfinite(out)
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    out[~finite] = np.nan
    return out


def _attr(attrs, name: str, where: str, required: bool = True):
    """An attribute as a plain str/number; RadarcastError when it is missing or an array."""
    if name not in attrs:
        if not required:
            return None
        raise RadarcastError(f"{where}: attribute {name!r} is missing")
    try:
        v = attrs[name]
    except (OSError, TypeError, ValueError) as e:
        raise RadarcastError(f"{where}: attribute {name!r} cannot be read ({e})") from None
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    if isinstance(v, np.ndarray):
        if v.size != 1:
            raise RadarcastError(f"{where}: attribute {name!r} is an array, expected one value")
        v = v.reshape(()).item()
    return v.item() if isinstance(v, np.generic) else v


def _count(attrs, name: str, where: str) -> int:
    v = _attr(attrs, name, where)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise RadarcastError(f"{where}: attribute {name!r} must be an integer ≥ 1, got {v!r}")
    return int(v)


def _members(attrs, where: str) -> int | None:
    """The ``members`` attribute: None when absent (a deterministic file), else M ≥ 1."""
    if "members" not in attrs:
        return None
    return _count(attrs, "members", where)


def _array(f: h5py.File, name: str, where: str) -> h5py.Dataset:
    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset):
        raise RadarcastError(f"{where}: dataset {name!r} is missing")
    return obj


@dataclass(frozen=True)
class ForecastSource:
    """A forecast file's path and how to open it (picklable; a path wherever one is read):
    ``reproject`` samples another tool's CF-netCDF forecast onto the dataset's grid."""

    path: str
    reproject: bool = False

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


def open_forecast(path: str | os.PathLike, reproject: bool | None = None) -> ForecastFile:
    """Open a forecast file written by ``radarcast forecast``, or (``.nc``) a CF-netCDF
    nowcast of another tool (:class:`~radarcast.data.cf_forecast.CFForecast`, matched to the
    dataset by its ``check_matches``). ``reproject`` (default: the path's own, see
    :class:`ForecastSource`) lets a CF forecast on another grid be sampled onto the dataset's;
    a radarcast forecast file on another grid is refused all the same."""
    if reproject is None:
        reproject = bool(getattr(path, "reproject", False))
    if Path(path).suffix.lower() == ".nc":
        from radarcast.data.cf_forecast import CFForecast

        return CFForecast(path, reproject=reproject)
    ff = ForecastFile(path)
    ff.reproject = reproject
    return ff
