"""What an export writes: a forecast or a dataset as physical values on a known grid.

:func:`open_cube` reads a forecast file (or a dataset) lazily and describes it as a
:class:`Cube`: its rows (forecasts, or observed frames), their times, the lead times,
the ensemble members, the geo-reference and a reader that turns one row's pixels into
mm/h or dBZ with NaN where a pixel is masked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radarcast.data.georef import Georef, dataset_georef
from radarcast.data.units import Units
from radarcast.errors import RadarcastError

UNIT_ALIASES = {"mm/h": "mmh", "mmh": "mmh", "dbz": "dbz", "pixel": "pixel"}


def check_units(unit: str) -> str:
    """'mm/h' | 'dBZ' | 'pixel' (any case; 'mmh' too) → the Units name."""
    key = UNIT_ALIASES.get(unit.strip().lower())
    if key is None:
        raise RadarcastError(f"unknown --units {unit!r}; choose one of: mm/h, dBZ, pixel")
    return key


def value_table(units: Units, unit: str) -> np.ndarray:
    """(256,) float32: each pixel level in ``unit``; pixel 0, the scale's floor, is 0 mm/h
    (dry) in rain rate."""
    lut = units.pixel_lut(unit).astype(np.float32)
    if unit == "mmh":
        lut[0] = 0.0
    return lut


@dataclass
class Cube:
    """A forecast file or dataset seen as physical values.

    Attributes
    ----------
    kind
        'forecast' (rows are forecasts: (N, [M], L, H, W)) or 'observation' (frames: (N, H, W)).
    times
        (N,) int64 s since 1970: analysis times of forecasts, valid times of frames.
    leads
        (L,) int64 lead times in s; None for observations.
    members
        Ensemble size M; None for deterministic forecasts and observations.
    grid
        (H, W).
    read
        ``read(i)`` → row ``i`` as float32 ``(L, H, W)``, ``(M, L, H, W)`` or ``(H, W)``
        in ``unit``, NaN where masked.
    """

    kind: str
    name: str
    times: np.ndarray
    leads: np.ndarray | None
    members: int | None
    grid: tuple[int, int]
    read: Callable[[int], np.ndarray]
    georef: Georef | None
    unit: str
    attrs: dict = field(default_factory=dict)
    close: Callable[[], None] = lambda: None

    @property
    def row_shape(self) -> tuple[int, ...]:
        if self.kind == "observation":
            return self.grid
        lead = (len(self.leads),)
        return (self.members, *lead, *self.grid) if self.members else (*lead, *self.grid)

    def nbytes(self) -> int:
        return int(len(self.times) * np.prod(self.row_shape) * 4)

    def select(self, rows: np.ndarray) -> Cube:
        """The same cube restricted to ``rows`` (indices into ``times``)."""
        rows = np.asarray(rows, dtype=np.int64)
        read = self.read
        return Cube(
            self.kind,
            self.name,
            self.times[rows],
            self.leads,
            self.members,
            self.grid,
            lambda i: read(int(rows[i])),
            self.georef,
            self.unit,
            self.attrs,
            self.close,
        )


def file_schema(path: Path) -> str:
    """The ``schema`` attribute of an HDF5 file ('' when it has none)."""
    import h5py

    if not path.is_file():
        raise RadarcastError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            v = f.attrs.get("schema", "")
    except OSError as e:
        raise RadarcastError(f"{path}: not a readable HDF5 file ({e})") from None
    return v.decode() if isinstance(v, bytes) else str(v)


def open_cube(
    path: str | os.PathLike, unit: str = "mm/h", dataset: str | os.PathLike | None = None
) -> Cube:
    """A forecast file or a dataset as a :class:`Cube` in ``unit`` ('mm/h', 'dBZ', 'pixel').

    A forecast file written before forecasts carried their context (times, scale,
    geo-reference) takes it from ``dataset`` (default: the dataset it names).
    """
    from radarcast.data.forecast_file import FORECAST_SCHEMA
    from radarcast.data.schema import SCHEMA

    path = Path(path)
    schema = file_schema(path)
    if schema == SCHEMA:
        return _dataset_cube(path, check_units(unit))
    if schema == FORECAST_SCHEMA:
        return _forecast_cube(path, check_units(unit), dataset)
    raise RadarcastError(
        f"{path} is neither a radarcast dataset nor a forecast file (schema {schema!r})"
    )


def _check_rain(units: Units, unit: str, where) -> None:
    if unit == "mmh" and not units.has_zr:
        raise RadarcastError(f"{where} has no Z-R relation: use --units dBZ")


def _dataset_cube(path: Path, unit: str) -> Cube:
    from radarcast.data.store import open_dataset

    ds = open_dataset(path)
    _check_rain(ds.units, unit, path)
    lut = value_table(ds.units, unit)

    def read(i: int) -> np.ndarray:
        values = lut[ds.frames(i)[0]]
        values[~ds.masks(i)[0]] = np.nan
        return values

    georef = dataset_georef(ds)
    if georef is not None:
        georef.check_shape(ds.shape, str(path))
    attrs = {"source": ds.source, "radarcast_dataset": str(path)}
    return Cube(
        "observation",
        "observations",
        ds.times,
        None,
        None,
        tuple(ds.shape[1:]),
        read,
        georef,
        unit,
        attrs,
        ds.close,
    )


def _forecast_cube(path: Path, unit: str, dataset) -> Cube:
    from radarcast.data.forecast_file import open_forecast

    fc = open_forecast(path)
    times, units, step, georef = fc.analysis_times, fc.units, fc.timestep_s, fc.georef
    if dataset is not None or times is None or units is None or step is None:
        # an explicit --dataset is checked against the forecast even when not needed
        times, units, step, georef = _context_from_dataset(fc, dataset, georef)
    _check_rain(units, unit, path)
    lut = value_table(units, unit)
    members = getattr(fc, "members", None)

    def read(i: int) -> np.ndarray:
        p = fc.pred([i])[0]  # ([M,] L, H, W) float32 pixels, NaN where unknown
        out = lut[np.nan_to_num(p).astype(np.uint8)]
        out[np.isnan(p)] = np.nan
        return out

    if georef is not None:
        georef.check_shape(fc.shape, str(path))
    leads = step * np.arange(1, fc.n_out + 1, dtype=np.int64)
    attrs = {"method": fc.method, "radarcast_dataset": fc.dataset_path, "n_in": fc.n_in}
    grid = tuple(fc.shape[-2:])
    return Cube(
        "forecast", fc.method, times, leads, members, grid, read, georef, unit, attrs, fc.close
    )


def _context_from_dataset(fc, dataset, georef):
    from radarcast.data.store import open_dataset

    name = dataset or fc.dataset_path
    if not Path(name).is_file():
        raise RadarcastError(
            f"{fc.path} carries no times or pixel scale and its dataset {name} is not there; "
            "pass --dataset DATASET.h5"
        )
    with open_dataset(name) as ds:
        fc.check_matches(ds)
        times = ds.times[fc.starts + fc.n_in - 1]
        return times, ds.units, ds.timestep_s, georef or dataset_georef(ds)
