"""Geo-referencing of a radar grid: its projection and where its pixels lie.

A :class:`Georef` says which projected coordinate reference system (CRS) a grid is on and
where its outer edges lie, in the terms pysteps' importers use (``projection``, ``x1``,
``y1``, ``x2``, ``y2``, ``xpixelsize``, ``ypixelsize``, ``yorigin``): ``x1, y1`` is the
lower-left corner and ``x2, y2`` the upper-right corner of the grid's outer edges, in
metres of the projection; ``yorigin`` says whether row 0 is the northern ('upper') or the
southern ('lower') row. Pixel centres are half a pixel inside the edges.

It comes from pysteps' metadata (:meth:`Georef.from_pysteps`), from an ODIM/OPERA HDF5
``where`` group (:meth:`Georef.from_odim`) or from flags for plain images
(:meth:`Georef.from_bounds`); :meth:`Georef.crop`, :meth:`Georef.downsample` and
:meth:`Georef.resize` follow preprocess' grid operations. It is stored as ``geo_*``
attributes of a dataset or forecast file (:meth:`Georef.attrs`,
:func:`georef_from_attrs`). pyproj (an optional extra) is needed to build one from a CRS
name and for longitudes/latitudes, not to read or store one.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from radarcast.errors import RadarcastError

PREFIX = "geo_"
FIELDS = ("crs_wkt", "proj4", "x1", "y1", "x2", "y2", "xpixelsize", "ypixelsize", "yorigin")
GEO_INSTALL = "pip install 'radarcast[geo]'"
_TOL = 1e-3  # grid sizes implied by edges and pixel sizes agree to this many pixels


def _pyproj():
    try:
        import pyproj
    except ImportError:
        raise RadarcastError(f"geo-referencing needs pyproj: {GEO_INSTALL}") from None
    return pyproj


def parse_crs(text: str):
    """'EPSG:21781', a PROJ string or WKT → pyproj.CRS; RadarcastError naming the text."""
    pyproj = _pyproj()
    try:
        return pyproj.CRS.from_user_input(text.strip())
    except pyproj.exceptions.CRSError as e:
        raise RadarcastError(f"--crs {text!r}: not a CRS pyproj knows ({e})") from None


def _check_metres(crs) -> None:
    """RadarcastError unless ``crs`` is projected with both axes in metres: a grid's edges,
    pixel sizes, x/y coordinates and km scales are all metres."""
    name = crs.name if crs.name and crs.name != "unknown" else crs.to_string()
    if crs.is_geographic:
        raise RadarcastError(
            f"CRS {name!r} is geographic (degrees); radarcast grids are in projected metres: "
            "give the product's projection (EPSG code or PROJ string) and --bounds in metres"
        )
    units = sorted({a.unit_name for a in crs.axis_info} - {"metre"})
    if not crs.is_projected or units:
        raise RadarcastError(
            f"CRS {name!r} is not a projection in metres (axis units: "
            f"{', '.join(units) or 'none'}); give one whose x and y are metres"
        )


@dataclass(frozen=True)
class Georef:
    """Where a (H, W) grid lies: CRS and outer edges in projected metres.

    Attributes
    ----------
    crs_wkt, proj4
        The CRS as WKT2 (what CF's ``crs_wkt`` and GDAL read) and as a PROJ string.
    x1, y1, x2, y2
        Outer edges of the grid: lower-left (x1, y1) and upper-right (x2, y2) corners, m.
    xpixelsize, ypixelsize
        Pixel width and height, m (positive).
    yorigin
        'upper': row 0 is the northern edge (images); 'lower': row 0 is the southern edge.
    """

    crs_wkt: str
    proj4: str
    x1: float
    y1: float
    x2: float
    y2: float
    xpixelsize: float
    ypixelsize: float
    yorigin: str = "upper"

    def __post_init__(self) -> None:
        if self.yorigin not in ("upper", "lower"):
            raise RadarcastError(f"yorigin must be 'upper' or 'lower', got {self.yorigin!r}")
        numbers = (self.x1, self.y1, self.x2, self.y2, self.xpixelsize, self.ypixelsize)
        if not all(math.isfinite(v) for v in numbers):
            raise RadarcastError(f"grid edges and pixel sizes must be finite, got {numbers}")
        if not (self.xpixelsize > 0 and self.ypixelsize > 0):
            raise RadarcastError(
                f"pixel sizes must be positive, got {self.xpixelsize} x {self.ypixelsize}"
            )
        if not (self.x2 > self.x1 and self.y2 > self.y1):
            raise RadarcastError(
                f"grid edges must have x2 > x1 and y2 > y1, got x {self.x1}..{self.x2}, "
                f"y {self.y1}..{self.y2}"
            )
        if not self.crs_wkt:
            raise RadarcastError("a geo-reference needs a CRS (crs_wkt is empty)")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_crs(
        cls, crs, x1, y1, x2, y2, xpixelsize, ypixelsize, yorigin="upper", proj4=None
    ) -> Georef:
        """From a pyproj CRS (or anything :func:`parse_crs` reads) and the grid's edges;
        ``proj4`` keeps a PROJ string as the source gave it."""
        if isinstance(crs, str):
            crs = parse_crs(crs)
        _check_metres(crs)
        if proj4:
            return cls(
                crs.to_wkt(),
                " ".join(proj4.split()),
                *(float(v) for v in (x1, y1, x2, y2, xpixelsize, ypixelsize)),
                str(yorigin),
            )
        with warnings.catch_warnings():  # "you will likely lose information": WKT is kept
            warnings.simplefilter("ignore", UserWarning)
            proj4 = crs.to_proj4() or ""
        return cls(
            crs.to_wkt(),
            proj4,
            float(x1),
            float(y1),
            float(x2),
            float(y2),
            float(xpixelsize),
            float(ypixelsize),
            str(yorigin),
        )

    @classmethod
    def from_pysteps(cls, metadata: Mapping) -> Georef:
        """From a pysteps importer's metadata (projection, x1, y1, x2, y2, xpixelsize,
        ypixelsize, yorigin; cartesian_unit must be metres)."""
        missing = [k for k in ("projection", "x1", "y1", "x2", "y2") if metadata.get(k) is None]
        if missing:
            raise RadarcastError(f"pysteps metadata lacks {', '.join(missing)}")
        unit = metadata.get("cartesian_unit", "m")
        if unit not in ("m", "metres", "meters"):
            raise RadarcastError(f"pysteps metadata has cartesian_unit {unit!r}; expected m")
        return cls.from_crs(
            parse_crs(str(metadata["projection"])),
            *(float(metadata[k]) for k in ("x1", "y1", "x2", "y2")),
            float(metadata["xpixelsize"]),
            float(metadata["ypixelsize"]),
            str(metadata.get("yorigin", "upper")),
            proj4=str(metadata["projection"]),
        )

    @classmethod
    def from_bounds(cls, crs: str, bounds: tuple[float, float, float, float], shape) -> Georef:
        """From ``--crs`` and ``--bounds x0,y0,x1,y1`` (outer edges, CRS units) for a grid of
        ``shape`` (H, W) whose row 0 is the northern edge."""
        x0, y0, x1, y1 = (float(v) for v in bounds)
        if not (x1 > x0 and y1 > y0):
            raise RadarcastError(
                f"--bounds wants x0,y0,x1,y1 with x1 > x0 and y1 > y0, got {bounds}"
            )
        h, w = shape
        return cls.from_crs(parse_crs(crs), x0, y0, x1, y1, (x1 - x0) / w, (y1 - y0) / h)

    @classmethod
    def from_odim(cls, where: Mapping) -> Georef:
        """From an ODIM HDF5 composite's ``where`` attributes (projdef, xsize, ysize,
        xscale, yscale, LL_lon/LL_lat, UR_lon/UR_lat); row 0 is the northern row (ODIM)."""
        w = {k: _scalar(v) for k, v in where.items()}
        need = ("projdef", "xsize", "ysize", "xscale", "yscale", "LL_lon", "LL_lat")
        missing = [k for k in need if k not in w]
        if missing:
            raise RadarcastError(f"ODIM 'where' lacks {', '.join(missing)}")
        crs = parse_crs(str(w["projdef"]))
        to_xy = _pyproj().Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
        x1, y1 = to_xy.transform(float(w["LL_lon"]), float(w["LL_lat"]))
        xs, ys = float(w["xscale"]), float(w["yscale"])
        x2, y2 = x1 + int(w["xsize"]) * xs, y1 + int(w["ysize"]) * ys
        return cls.from_crs(crs, x1, y1, x2, y2, xs, ys, "upper")

    # ------------------------------------------------------------------ grid
    def grid_shape(self) -> tuple[int, int]:
        """(H, W) implied by the edges and pixel sizes."""
        return (
            int(round((self.y2 - self.y1) / self.ypixelsize)),
            int(round((self.x2 - self.x1) / self.xpixelsize)),
        )

    def check_shape(self, shape, where: str = "") -> None:
        """RadarcastError unless the edges and pixel sizes describe a grid of ``shape``."""
        h, w = shape[-2:]
        ny, nx = (self.y2 - self.y1) / self.ypixelsize, (self.x2 - self.x1) / self.xpixelsize
        if abs(ny - h) > _TOL * max(h, 1) or abs(nx - w) > _TOL * max(w, 1):
            raise RadarcastError(
                f"{where + ': ' if where else ''}the geo-reference describes a "
                f"{ny:.6g}x{nx:.6g} grid, the data are {h}x{w}"
            )

    def on_shape(self, shape) -> Georef:
        """The same extent cut into a (H, W) grid of other pixels (a panel drawn larger or
        smaller than the data): edges kept, pixel sizes (x2 − x1) / W and (y2 − y1) / H."""
        h, w = shape[-2:]
        return replace(self, xpixelsize=(self.x2 - self.x1) / w,
                       ypixelsize=(self.y2 - self.y1) / h)  # fmt: skip

    def x(self, width: int | None = None) -> np.ndarray:
        """(W,) float64 projected x of the pixel centres, west to east, m."""
        w = self.grid_shape()[1] if width is None else width
        return self.x1 + (np.arange(w) + 0.5) * self.xpixelsize

    def y(self, height: int | None = None) -> np.ndarray:
        """(H,) float64 projected y of the pixel centres in row order, m (north to south
        for yorigin 'upper')."""
        h = self.grid_shape()[0] if height is None else height
        centres = (np.arange(h) + 0.5) * self.ypixelsize
        return self.y2 - centres if self.yorigin == "upper" else self.y1 + centres

    def transform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL geotransform (x0, dx, 0, y0, 0, dy) of the grid in row order."""
        if self.yorigin == "upper":
            return (self.x1, self.xpixelsize, 0.0, self.y2, 0.0, -self.ypixelsize)
        return (self.x1, self.xpixelsize, 0.0, self.y1, 0.0, self.ypixelsize)

    def crs(self):
        """The pyproj CRS."""
        return _pyproj().CRS.from_wkt(self.crs_wkt)

    def lonlat(self, shape=None) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) float64 WGS 84 longitude and latitude (degrees) of the pixel centres."""
        h, w = self.grid_shape() if shape is None else shape[-2:]
        xx, yy = np.meshgrid(self.x(w), self.y(h))
        to_ll = _pyproj().Transformer.from_crs(self.crs(), "EPSG:4326", always_xy=True)
        lon, lat = to_ll.transform(xx, yy)
        return np.asarray(lon), np.asarray(lat)

    # ------------------------------------------------------------------ grid operations
    def crop(self, y0: int, y1: int, x0: int, x1: int) -> Georef:
        """The grid of rows y0..y1-1 and columns x0..x1-1 (row 0 as ``yorigin`` says)."""
        left, right = self.x1 + x0 * self.xpixelsize, self.x1 + x1 * self.xpixelsize
        if self.yorigin == "upper":
            top, bottom = self.y2 - y0 * self.ypixelsize, self.y2 - y1 * self.ypixelsize
        else:
            bottom, top = self.y1 + y0 * self.ypixelsize, self.y1 + y1 * self.ypixelsize
        return replace(self, x1=left, x2=right, y1=bottom, y2=top)

    def downsample(self, k: int, shape) -> Georef:
        """The grid of preprocess' K×K block means of a ``shape`` (H, W) grid: rows and
        columns beyond a multiple of K (the last ones in row order) are dropped."""
        h, w = shape[-2:]
        g = self.crop(0, (h // k) * k, 0, (w // k) * k)
        return replace(g, xpixelsize=g.xpixelsize * k, ypixelsize=g.ypixelsize * k)

    def resize(self, shape, new_shape) -> Georef:
        """The same extent resampled from ``shape`` to ``new_shape`` (H, W)."""
        (h, w), (nh, nw) = shape[-2:], new_shape[-2:]
        return replace(
            self, xpixelsize=self.xpixelsize * w / nw, ypixelsize=self.ypixelsize * h / nh
        )

    # ------------------------------------------------------------------ storage
    def attrs(self) -> dict:
        """``geo_*`` attributes for an HDF5 file."""
        return {PREFIX + k: getattr(self, k) for k in FIELDS}

    def crs_name(self) -> str:
        """'CRS ETRS89-extended / LAEA Europe (+proj=laea ...)', or for a CRS without a name
        'CRS +proj=somerc ... (unnamed)': pyproj calls those "unknown", which reads as no
        grid."""
        m = re.search(r'"([^"]*)"', self.crs_wkt)
        name = m.group(1) if m else ""
        if name.lower() in ("", "unknown", "unnamed"):
            return f"CRS {self.proj4} (unnamed)" if self.proj4 else "CRS (unnamed; WKT only)"
        return f"CRS {name} ({self.proj4})" if self.proj4 else f"CRS {name}"

    def describe(self) -> str:
        """One line for ``radarcast info``."""
        return (
            f"{self.crs_name()}; x {self.x1:.6g}..{self.x2:.6g} m, "
            f"y {self.y1:.6g}..{self.y2:.6g} m; "
            f"pixels {self.xpixelsize:.6g} x {self.ypixelsize:.6g} m; row 0 {self.yorigin}"
        )


def georef_from_attrs(attrs: Mapping, where: str = "") -> Georef | None:
    """The :class:`Georef` stored in ``geo_*`` attributes; None when the file has none."""
    present = [k for k in FIELDS if PREFIX + k in attrs]
    if not present:
        return None
    missing = [PREFIX + k for k in FIELDS if k not in present]
    if missing:
        raise RadarcastError(f"{where}: geo-reference attributes missing: {', '.join(missing)}")
    values = {k: _scalar(attrs[PREFIX + k]) for k in FIELDS}
    try:
        for k in ("x1", "y1", "x2", "y2", "xpixelsize", "ypixelsize"):
            values[k] = float(values[k])
        for k in ("crs_wkt", "proj4", "yorigin"):
            values[k] = str(values[k])
        return Georef(**values)
    except (TypeError, ValueError) as e:
        raise RadarcastError(f"{where}: bad geo-reference attributes ({e})") from None


def dataset_georef(dataset) -> Georef | None:
    """A dataset's (or any object with ``georef`` or ``attrs``) geo-reference, or None."""
    georef = getattr(dataset, "georef", None)
    if isinstance(georef, Georef):
        return georef
    attrs = getattr(dataset, "attrs", None)
    return georef_from_attrs(attrs, str(getattr(dataset, "path", ""))) if attrs else None


def _scalar(v):
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.reshape(()).item()
    return v.item() if isinstance(v, np.generic) else v


def read_odim_georef(path) -> Georef:
    """The geo-reference of an ODIM HDF5 composite file (its root ``where`` group)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            where = f.get("where")
            if where is None:
                raise RadarcastError(f"{path}: no ODIM 'where' group")
            return Georef.from_odim(dict(where.attrs))
    except OSError as e:
        raise RadarcastError(f"{path}: not a readable HDF5 file ({e})") from None

