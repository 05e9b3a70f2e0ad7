"""A CF-netCDF nowcast written by another tool, read as if it were a radarcast forecast file.

The layouts understood: radarcast's own export (``time`` = analysis times, a ``lead_time``
dimension, optional ``member``); one forecast on a ``lead_time`` (or ``forecast_period``)
dimension with a ``forecast_reference_time``; one forecast over valid times along ``time``
whose analysis time is its ``forecast_reference_time`` or, as pysteps' netCDF exporter
writes it, the reference of the time units ("seconds since ANALYSIS TIME"). Members lie
along ``member``, ``ens_number``, ``realization`` or ``sample``. The data variable is the
one on (y, x) with units mm/h (``mm h-1``, ``mm/hr``, ...), dBZ or pixel. It is matched to a
dataset in :meth:`CFForecast.check_matches`: each forecast answers the window whose last
input frame is at its analysis time; lead times must be the dataset's time steps; the grid
must be the dataset's (where both are geo-referenced: the same pixel-centre x/y, which the
forecast's CRS, if it names one, places where the dataset's does; else the same shape),
unless reprojection is asked for (``CFForecast(path, reproject=True)``, the CLI's
``--reproject``): then a forecast on another grid or projection (its CRS from the
grid-mapping variable: ``crs_wkt``, ``spatial_ref`` or CF projection parameters) is
sampled at each dataset pixel centre, by nearest neighbour through pyproj, NaN where it
does not reach, and says so: its name gains
" (reprojected)" and its config a ``reprojected`` entry (scores.json, animation panels).
A forecast already on the dataset's grid is read as is. Values become pixels of the
dataset's scale, as a forecast file stores them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from radarcast.config import count_or
from radarcast.errors import RadarcastError

UNITS = {
    **dict.fromkeys(("mm h-1", "mm/h", "mm hr-1", "mm/hr", "mm h**-1", "mm hr**-1",
                     "kg m-2 h-1"), "mmh"),
    "dbz": "dbz",
    "1": "pixel",
}  # fmt: skip
MEMBER_DIMS = ("member", "ens_number", "realization", "sample")


class CFForecast:
    """ForecastFile's reading interface over a CF-netCDF file (see the module doc)."""

    def __init__(self, path: str | os.PathLike, reproject: bool = False) -> None:
        try:
            import xarray as xr
        except ImportError:
            raise RadarcastError(
                "reading netCDF forecasts needs xarray: pip install 'radarcast[geo]'"
            ) from None
        self.path = Path(path)
        if not self.path.is_file():
            raise RadarcastError(f"{self.path}: no such forecast file")
        try:
            self._ds = xr.open_dataset(self.path)
        except (OSError, ValueError) as e:
            raise RadarcastError(f"{self.path}: not a readable netCDF file ({e})") from None
        self._var, self.unit = self._data_variable()
        self._name = str(self._ds.attrs.get("source") or self._ds.attrs.get("title") or "cf")
        self.method = self._name  # "NAME (reprojected)" once sampled onto a dataset's grid
        self.config = {"file": str(self.path), "variable": self._var.name}
        self.analysis, self.leads = self._times()
        self.members = next((self._var.sizes[d] for d in MEMBER_DIMS if d in self._var.dims), None)
        self.n_out = len(self.leads)
        self.n_in = None
        self.starts = np.zeros(0, np.int64)
        self._flip = False
        self._units = None
        self.reproject = reproject
        self._take = None  # reprojection: (rows, cols, inside) per dataset pixel

    def _data_variable(self):
        """The variable on (y, x) with a known unit (coordinates such as lon/lat skipped)."""
        seen = []
        for name, v in self._ds.data_vars.items():
            if v.dims[-2:] != ("y", "x"):
                continue
            if v.attrs.get("standard_name") in ("longitude", "latitude"):
                continue
            units = str(v.attrs.get("units", ""))
            unit = UNITS.get(units.strip().lower())
            if unit is not None:
                return v, unit
            seen.append(f"{name} ({units or 'no units'})")
        raise RadarcastError(
            f"{self.path}: no variable on (y, x) in mm/h, dBZ or pixel units; "
            f"found {', '.join(seen) or 'none'}"
        )

    def _coordinate(self, *names: str):
        """The first coordinate or variable called, or with the standard name, ``names``."""
        for name in names:
            if name in self._ds.variables:
                return self._ds[name]
        for v in self._ds.variables.values():
            if v.attrs.get("standard_name") in names:
                return v
        return None

    def _times(self) -> tuple[np.ndarray, np.ndarray]:
        """(N,) analysis times and (L,) lead times, s, of the layouts in the module doc:

        - a ``lead_time`` (or ``forecast_period``) dimension: ``time`` along the forecasts
          is their analysis time (radarcast's export), or there is one forecast whose
          analysis time is ``forecast_reference_time``;
        - ``time`` as the valid times of one forecast: its analysis time from
          ``forecast_reference_time`` or, as pysteps' exporter writes it, the reference of
          the time units ("seconds since ANALYSIS TIME")."""
        self._forecast_dim = None  # the dimension along the forecasts (None: one forecast)
        lead_dim = next((d for d in ("lead_time", "forecast_period") if d in self._var.dims),
                        None)  # fmt: skip
        frt = self._coordinate("forecast_reference_time")
        if lead_dim is not None:
            leads = _seconds(self._ds[lead_dim].values, self.path, lead_dim, delta=True)
            if "time" in self._var.dims:
                self._forecast_dim = "time"
                return _seconds(self._ds["time"].values, self.path, "time"), leads
            if frt is None or frt.size != 1:
                raise RadarcastError(
                    f"{self.path}: cannot tell the analysis time: {lead_dim} without a "
                    "time dimension needs one forecast_reference_time"
                )
            return _seconds(np.ravel(frt.values), self.path, frt.name), leads
        if "time" not in self._var.dims:
            raise RadarcastError(
                f"{self.path}: {self._var.name} has no time or lead_time dimension"
            )
        t = _seconds(self._ds["time"].values, self.path, "time")
        if frt is not None:
            if frt.size != 1:
                raise RadarcastError(f"{self.path}: valid times along time need one "
                                     f"forecast_reference_time, found {frt.size}")  # fmt: skip
            t0 = _seconds(np.ravel(frt.values), self.path, frt.name)[0]
            return np.array([t0], np.int64), t - t0
        units = str(self._ds["time"].encoding.get("units", ""))
        m = re.match(r"\s*(seconds|minutes|hours) since (.+)", units)
        if m is None:
            raise RadarcastError(
                f"{self.path}: cannot tell the analysis time (no forecast_reference_time, and "
                f"time units {units!r}, not 'seconds since ANALYSIS TIME')"
            )
        from radarcast.data.schema import parse_time

        t0 = parse_time(m.group(2).strip().replace(" ", "T", 1))
        return np.array([t0], np.int64), t - t0

    # -------------------------------------------------------------- ForecastFile's interface
    @property
    def shape(self) -> tuple[int, ...]:
        lead = (self.n_out,) if self.members is None else (self.members, self.n_out)
        return (len(self.starts), *lead, *self.grid)

    @property
    def grid(self) -> tuple[int, int]:
        """The grid ``pred`` returns: the dataset's once reprojected, else the file's."""
        if self._take is not None:
            return tuple(self._take[0].shape)
        return tuple(self._var.shape[-2:])

    def check_matches(self, dataset, n_in: int | None = None, n_out: int | None = None) -> None:
        """Match to ``dataset``: lead times, grid, and each analysis time to a window."""
        n_in = count_or(n_in, dataset.n_in, "--n-in")
        if n_out is not None:
            n_out = count_or(n_out, self.n_out, "--n-out")
        step = dataset.timestep_s
        if not np.array_equal(self.leads, step * np.arange(1, self.n_out + 1)):
            raise RadarcastError(
                f"{self.path}: lead times {', '.join(f'{v / 60:g}' for v in self.leads)} min "
                f"are not the dataset's steps ({step / 60:g}, {2 * step / 60:g}, ... min)"
            )
        if n_out is not None and n_out > self.n_out:
            raise RadarcastError(f"{self.path} has {self.n_out} leads, {n_out} were asked for")
        self._check_grid(dataset)
        index = {int(t): i for i, t in enumerate(dataset.times)}
        rows = [index.get(int(t)) for t in self.analysis]
        self.n_in = n_in
        self.starts = np.array([-1 if r is None else r - n_in + 1 for r in rows], np.int64)
        self._units = dataset.units

    def _check_grid(self, dataset) -> None:
        """The dataset's grid as is, or (``reproject``) the sampling onto it; a grid that
        already is the dataset's is not reprojected."""
        problem = self._grid_problem(dataset)
        if problem is None:
            return
        if not self.reproject:
            raise RadarcastError(f"{self.path}: {problem}; --reproject samples it onto the "
                                 "dataset's grid (nearest neighbour)")  # fmt: skip
        self._take = self._sampling(dataset)
        h, w = self._var.shape[-2:]
        self.method = f"{self._name} (reprojected)"
        self.config["reprojected"] = (
            f"nearest neighbour: from its {h}x{w} grid ({self._crs().name}) onto the "
            f"dataset's {dataset.shape[1]}x{dataset.shape[2]} grid; each dataset pixel centre "
            "takes the forecast pixel whose centre is nearest in the forecast's projection "
            "(pyproj), NaN where the forecast's grid does not reach"
        )

    def _grid_problem(self, dataset) -> str | None:
        """Why the forecast's grid is not the dataset's (None: it is)."""
        h, w = dataset.shape[1:]
        grid = tuple(self._var.shape[-2:])
        if grid != (h, w):
            return f"the grid is {grid[0]}x{grid[1]}, the dataset's is {h}x{w}"
        georef = getattr(dataset, "georef", None)
        if georef is None or "x" not in self._ds or "y" not in self._ds:
            return None
        x, y = self._ds["x"].values, self._ds["y"].values
        tol = 1e-3 * georef.xpixelsize
        self._flip = bool(np.allclose(y[::-1], georef.y(h), atol=tol))
        if self._flip:
            y = y[::-1]
        if not (np.allclose(x, georef.x(w), atol=tol) and np.allclose(y, georef.y(h), atol=tol)):
            return "its x/y grid is not the dataset's"
        other = self._other_crs(georef, h, w)
        if other is not None:
            return f"its x/y values are the dataset's but in another CRS ({other})"
        return None

    def _other_crs(self, georef, h: int, w: int) -> str | None:
        """The forecast CRS's name where it places the dataset's pixel centres elsewhere than
        the dataset's CRS does (corners and centre compared, to 1/100 pixel); None where
        they agree or the forecast names no CRS to compare."""
        if not self._grid_mapping():
            return None
        from radarcast.data.georef import _pyproj

        crs, own = self._crs(), georef.crs()
        if crs.equals(own, ignore_axis_order=True):
            return None
        rows, cols = np.array([0, 0, h - 1, h - 1, h // 2]), np.array([0, w - 1, 0, w - 1, w // 2])
        x, y = georef.x(w)[cols], georef.y(h)[rows]
        fx, fy = _pyproj().Transformer.from_crs(own, crs, always_xy=True).transform(x, y)
        tol = 0.01 * min(georef.xpixelsize, georef.ypixelsize)
        with np.errstate(invalid="ignore"):
            same = np.all(np.abs(np.asarray(fx) - x) <= tol) and np.all(
                np.abs(np.asarray(fy) - y) <= tol
            )
        return None if same else crs.name

    def _grid_mapping(self) -> str | None:
        """The name of the data variable's grid-mapping variable (its CRS), if it names one."""
        return self._var.attrs.get("grid_mapping") or self._var.encoding.get("grid_mapping")

    def _crs(self):
        """The forecast's CRS, from the data variable's grid-mapping variable."""
        from radarcast.data.georef import _pyproj

        pyproj = _pyproj()
        name = self._grid_mapping()
        gm = self._ds.get(str(name)) if name else None
        if gm is None:
            raise RadarcastError(
                f"{self.path}: cannot reproject: the data variable names no grid mapping (CRS)"
            )
        attrs = dict(gm.attrs)
        try:
            for key in ("crs_wkt", "spatial_ref"):
                if attrs.get(key):
                    return pyproj.CRS.from_user_input(str(attrs[key]))
            return pyproj.CRS.from_cf(attrs)
        except pyproj.exceptions.CRSError as e:
            raise RadarcastError(f"{self.path}: cannot reproject: its grid mapping {name!r} "
                                 f"is not a CRS pyproj reads ({e})") from None  # fmt: skip

    def _axis(self, name: str) -> np.ndarray:
        """The forecast's 1-D pixel-centre coordinate ``name`` (x or y), in metres."""
        if name not in self._ds or self._ds[name].ndim != 1:
            raise RadarcastError(f"{self.path}: cannot reproject: no 1-D {name} coordinate")
        v = np.asarray(self._ds[name].values, np.float64)
        unit = str(self._ds[name].attrs.get("units", "m")).strip().lower()
        scale = {"m": 1.0, "metre": 1.0, "meter": 1.0, "km": 1000.0, "kilometre": 1000.0}
        if unit not in scale:
            raise RadarcastError(f"{self.path}: cannot reproject: {name} is in {unit!r}, "
                                 "not metres or km")  # fmt: skip
        v = v * scale[unit]
        step = np.diff(v)
        if len(v) < 2 or not (np.all(step > 0) or np.all(step < 0)):
            raise RadarcastError(f"{self.path}: cannot reproject: {name} is not monotonic")
        if not np.allclose(step, step[0], rtol=1e-6, atol=1e-6 * abs(step[0])):
            raise RadarcastError(f"{self.path}: cannot reproject: {name} is not evenly spaced")
        return v

    def _sampling(self, dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each dataset pixel centre: the row and column of the nearest forecast pixel,
        and whether it lies inside the forecast's grid."""
        georef = getattr(dataset, "georef", None)
        if georef is None:
            raise RadarcastError(
                f"{self.path}: cannot reproject onto {dataset.path}: the dataset has no "
                "geo-reference (use --crs/--bounds at preprocess)"
            )
        from radarcast.data.georef import _pyproj

        h, w = dataset.shape[1:]
        xs, ys = self._axis("x"), self._axis("y")
        to_fc = _pyproj().Transformer.from_crs(georef.crs(), self._crs(), always_xy=True)
        xx, yy = np.meshgrid(georef.x(w), georef.y(h))
        fx, fy = (np.asarray(a, np.float64) for a in to_fc.transform(xx, yy))
        col = np.rint((fx - xs[0]) / (xs[1] - xs[0]))
        row = np.rint((fy - ys[0]) / (ys[1] - ys[0]))
        with np.errstate(invalid="ignore"):
            inside = (col >= 0) & (col < len(xs)) & (row >= 0) & (row < len(ys))
        if not inside.any():
            raise RadarcastError(f"{self.path}: cannot reproject: its grid does not cover "
                                 f"any pixel of {dataset.path}")  # fmt: skip
        rows = np.where(inside, row, 0).astype(np.intp)
        cols = np.where(inside, col, 0).astype(np.intp)
        return rows, cols, inside

    def row_of(self, start: int) -> int:
        rows = np.flatnonzero(self.starts == start)
        if not len(rows):
            raise RadarcastError(f"{self.path} holds no forecast for window {start}")
        return int(rows[0])

    def pred(self, rows) -> np.ndarray:
        """(n, [M,] n_out, H, W) float32 pixels of the dataset's scale, NaN where unknown."""
        out = []
        for r in np.atleast_1d(np.asarray(rows, dtype=np.int64)):
            v = self._var if self._forecast_dim is None else self._var.isel(time=int(r))
            dims = [d for d in MEMBER_DIMS if d in v.dims]
            v = v.transpose(*dims, *[d for d in v.dims if d not in dims]).values  # ([M,] L, H, W)
            if self._take is not None:  # nearest forecast pixel of each dataset pixel
                rows_, cols_, inside = self._take
                v = np.where(inside, np.asarray(v, np.float64)[..., rows_, cols_], np.nan)
            elif self._flip:
                v = v[..., ::-1, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                p = self._units.to_pixel(np.asarray(v, np.float64), self.unit)
            # rounded and clipped as forecast_file.stored_pixels stores pixels (that module
            # imports this one, so its function cannot be imported here)
            p = np.clip(np.rint(np.nan_to_num(p, nan=0.0, neginf=0.0, posinf=255.0)), 0, 255)
            out.append(np.where(np.isnan(v), np.nan, p).astype(np.float32))
        return np.stack(out)

    def close(self) -> None:
        self._ds.close()

    def __enter__(self) -> CFForecast:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _seconds(values, path, name: str, delta: bool = False) -> np.ndarray:
    """Datetimes (or, ``delta``, durations) as int64 seconds; RadarcastError for numbers
    xarray could not decode as such."""
    values = np.asarray(values)
    kind = "m" if delta else "M"
    if values.dtype.kind != kind:
        what = "duration" if delta else "time"
        raise RadarcastError(f"{path}: {name} is not a {what} coordinate (CF units such as "
                             "'minutes' or 'seconds since ...')")  # fmt: skip
    unit = "timedelta64[s]" if delta else "datetime64[s]"
    return values.astype(unit).astype(np.int64)
