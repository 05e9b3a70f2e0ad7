"""Pixel ↔ reflectivity ↔ rain rate, and thresholds in any of the three.

A dataset stores 0–255 pixels ``p`` with a linear reflectivity scale and a Z–R relation::

    dBZ = gain · p + offset          Z = 10 ** (dBZ / 10)          Z = a · R ** b

with R in mm/h. HKO-7's scale (gain 70/255, offset −10; a 58.53, b 1.56) is the default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from radarcast.errors import RadarcastError

UNIT_NAMES = ("pixel", "dbz", "mmh")


@dataclass(frozen=True)
class Units:
    """A pixel scale and Z–R relation, as stored in a dataset's attributes.

    Parameters
    ----------
    dbz_gain, dbz_offset
        dBZ = dbz_gain · pixel + dbz_offset.
    zr_a, zr_b
        Z = zr_a · R ** zr_b, Z in mm⁶/m³ and R in mm/h. ``None`` when unknown: rain-rate
        conversions then raise.
    nodata
        Raw input values that mean "no data" for the source this scale describes (used by
        readers; a dataset stores validity in its mask instead).
    """

    dbz_gain: float = 70.0 / 255.0
    dbz_offset: float = -10.0
    zr_a: float | None = 58.53
    zr_b: float | None = 1.56
    nodata: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not np.isfinite(self.dbz_gain) or self.dbz_gain <= 0:
            raise RadarcastError(f"dbz_gain must be a positive number, got {self.dbz_gain}")
        if not np.isfinite(self.dbz_offset):
            raise RadarcastError(f"dbz_offset must be a finite number, got {self.dbz_offset}")
        if (self.zr_a is None) != (self.zr_b is None):
            raise RadarcastError("give both zr_a and zr_b, or neither")
        if self.zr_a is not None and not (self.zr_a > 0 and self.zr_b > 0):
            raise RadarcastError(f"Z-R needs a > 0 and b > 0, got a={self.zr_a}, b={self.zr_b}")

    @property
    def has_zr(self) -> bool:
        return self.zr_a is not None

    def _require_zr(self) -> tuple[float, float]:
        if self.zr_a is None or self.zr_b is None:
            raise RadarcastError(
                "this dataset has no Z-R relation (zr_a, zr_b): use dBZ or pixel units"
            )
        return self.zr_a, self.zr_b

    # pixel <-> dBZ ---------------------------------------------------------------------
    def pixel_to_dbz(self, p):
        """Pixel values (any shape) → dBZ, float."""
        return np.asarray(p, dtype=np.float64) * self.dbz_gain + self.dbz_offset

    def dbz_to_pixel(self, dbz):
        """dBZ → pixel values, float and unclipped."""
        return (np.asarray(dbz, dtype=np.float64) - self.dbz_offset) / self.dbz_gain

    # dBZ <-> rain rate -----------------------------------------------------------------
    def dbz_to_rain(self, dbz):
        """dBZ → rain rate in mm/h through R = (Z / a) ** (1 / b)."""
        a, b = self._require_zr()
        z = 10.0 ** (np.asarray(dbz, dtype=np.float64) / 10.0)
        return (z / a) ** (1.0 / b)

    def rain_to_dbz(self, rain):
        """Rain rate in mm/h → dBZ; 0 mm/h gives −inf."""
        a, b = self._require_zr()
        with np.errstate(divide="ignore"):
            return 10.0 * np.log10(a * np.asarray(rain, dtype=np.float64) ** b)

    def pixel_to_rain(self, p):
        """Pixel values → rain rate in mm/h."""
        return self.dbz_to_rain(self.pixel_to_dbz(p))

    def rain_to_pixel(self, rain):
        """Rain rate in mm/h → pixel values, float and unclipped."""
        return self.dbz_to_pixel(self.rain_to_dbz(rain))

    def convert(self, p, unit: str):
        """Pixels → ``unit`` (one of ``pixel``, ``dbz``, ``mmh``)."""
        unit = check_unit(unit)
        if unit == "pixel":
            return np.asarray(p, dtype=np.float64)
        if unit == "dbz":
            return self.pixel_to_dbz(p)
        return self.pixel_to_rain(p)

    def to_pixel(self, value, unit: str):
        """A value in ``unit`` → pixels (float, unclipped): the inverse of :meth:`convert`."""
        unit = check_unit(unit)
        if unit == "pixel":
            return np.asarray(value, dtype=np.float64)
        if unit == "dbz":
            return self.dbz_to_pixel(value)
        return self.rain_to_pixel(value)

    def pixel_lut(self, unit: str) -> np.ndarray:
        """(256,) float64: the value in ``unit`` of each pixel level 0..255."""
        return self.convert(np.arange(256), unit)

    def check_reachable(self, values, unit: str, what: str, where: str = "dataset") -> None:
        """Refuse a threshold no pixel of this scale can reach (above pixel 255's value in
        ``unit``), or a negative rain rate, by ``what`` with the scale's range.

        The one check of event thresholds against the dataset's scale: evaluate's
        --thresholds, animate's --overlay and a study's thresholds all pass through it.
        """
        lut = self.pixel_lut(unit)
        label = UNIT_LABELS[check_unit(unit)]
        for v in np.atleast_1d(np.asarray(values, dtype=np.float64)):
            if not np.isfinite(v) or v > lut[-1] or (unit == "mmh" and v < 0):
                raise RadarcastError(
                    f"{what} {v:g} {label} is beyond {where}'s scale: its pixels cover "
                    f"{lut[0]:.4g}..{lut[-1]:.4g} {label}, so no event could reach it"
                )

    def rescale_lut(self, target: Units) -> np.ndarray:
        """(256,) uint8: this scale's pixel levels mapped onto ``target``'s (rounded, clipped)."""
        p = target.dbz_to_pixel(self.pixel_to_dbz(np.arange(256)))
        return np.clip(np.rint(p), 0, 255).astype(np.uint8)

    def attrs(self) -> dict:
        """The HDF5 attributes that record this scale (NaN for a missing Z–R)."""
        return {
            "dbz_gain": float(self.dbz_gain),
            "dbz_offset": float(self.dbz_offset),
            "zr_a": float("nan") if self.zr_a is None else float(self.zr_a),
            "zr_b": float("nan") if self.zr_b is None else float(self.zr_b),
        }

    @classmethod
    def from_attrs(cls, attrs) -> Units:
        """Rebuild from HDF5 attributes written by :meth:`attrs`."""
        a, b = float(attrs["zr_a"]), float(attrs["zr_b"])
        has_zr = np.isfinite(a) and np.isfinite(b)
        return cls(
            dbz_gain=float(attrs["dbz_gain"]),
            dbz_offset=float(attrs["dbz_offset"]),
            zr_a=a if has_zr else None,
            zr_b=b if has_zr else None,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> Units:
        """A copy with the given fields replaced; ``None`` values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# Each service's scale for its own 8-bit product (see ../shared/data/README.md).
PRESETS: dict[str, Units] = {
    # HKO-7: dBZ = 70 p / 255 - 10, Z = 58.53 R^1.56
    "hko": Units(),
    # FMI lowest-CAPPI composite PGM: dBZ = 0.5 DN - 32, DN 255 missing, Z = 223 R^1.53
    "fmi": Units(dbz_gain=0.5, dbz_offset=-32.0, zr_a=223.0, zr_b=1.53, nodata=(255,)),
    # MeteoSwiss AQC GIF palette index DN, DN 255 missing. The product is a 5-minute
    # accumulation: pysteps' mch_gif decodes R5 = (10^((DN - 71.5)/20) / 316)^(1/1.5) mm per
    # 5 min. As a rate (12 R5 mm/h) with MeteoSwiss' Z = 316 R^1.5 that is a reflectivity of
    # dBZ = 0.5 DN - 35.75 + 15 log10(12), so rain rates here come out in mm/h.
    "mch": Units(
        dbz_gain=0.5,
        dbz_offset=-35.75 + 15.0 * float(np.log10(12.0)),
        zr_a=316.0,
        zr_b=1.5,
        nodata=(255,),
    ),
    # Marshall-Palmer Z-R on the HKO pixel scale
    "marshall-palmer": Units(zr_a=200.0, zr_b=1.6),
}


# The service behind each pysteps importer whose Z–R the importer's metadata names
# (pysteps.io.importers: zr_a, zr_b); its preset carries that Z–R.
PYSTEPS_SERVICES: dict[str, str] = {
    "fmi_pgm": "fmi",  # Z = 223 R^1.53
    "fmi_geotiff": "fmi",
    "mch_gif": "mch",  # Z = 316 R^1.5
    "mch_hdf5": "mch",
    "mch_metranet": "mch",
    "knmi_hdf5": "marshall-palmer",  # Z = 200 R^1.6
}


def describe_zr(units: Units) -> str:
    """'Z = 316 R^1.5', or 'none' without a Z–R relation."""
    return f"Z = {units.zr_a:g} R^{units.zr_b:g}" if units.has_zr else "none"


def get_preset(name: str) -> Units:
    """A named pixel scale; the error lists the names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise RadarcastError(
            f"unknown unit preset {name!r}; choose one of: {', '.join(PRESETS)}"
        ) from None


def check_unit(unit: str) -> str:
    """Validate a unit name (``pixel``, ``dbz`` or ``mmh``)."""
    if unit not in UNIT_NAMES:
        raise RadarcastError(f"unknown units {unit!r}; choose one of: {', '.join(UNIT_NAMES)}")
    return unit


UNIT_LABELS = {"pixel": "pixel", "dbz": "dBZ", "mmh": "mm/h"}
