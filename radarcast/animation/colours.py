"""Colour scales: pixel level → RGB lookups, the no-data hatch and the overlay colours."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from radarcast.data.units import Units, check_unit
from radarcast.errors import RadarcastError

# NWS-style reflectivity palette: one colour per level, 5..70 dBZ in 5 dBZ steps.
RADAR_RGB = np.array([
    (4, 233, 231), (1, 159, 244), (3, 0, 244), (2, 253, 2), (1, 197, 1), (0, 142, 0),
    (253, 248, 2), (229, 188, 0), (253, 149, 0), (253, 0, 0), (212, 0, 0), (188, 0, 0),
    (248, 0, 253), (152, 84, 198),
], dtype=np.uint8)
DBZ_LEVELS = np.arange(5.0, 71.0, 5.0)
MMH_LEVELS = np.array([0.1, 0.2, 0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 100], dtype=float)
WHITE = np.array((255, 255, 255), np.uint8)
# Hatched "no data": light grey with darker stripes, unlike any colour-map level.
NODATA_RGB = {
    "radar": ((225, 225, 225), (175, 175, 175)),
    "grey": ((250, 232, 190), (215, 180, 110)),
}
# Okabe-Ito colours, told apart with the common colour-vision deficiencies.
OVERLAY_RGB = {"hit": (0, 158, 115), "miss": (213, 94, 0), "false alarm": (0, 114, 178)}


@dataclass(frozen=True)
class ColourScale:
    """Discrete levels of one unit and the pixel → RGB lookup that draws them.

    ``levels`` (K,) lower bounds in ``unit``; ``colours`` (K, 3) uint8; ``values`` (256,) the
    value in ``unit`` of each pixel level; ``lut`` (256, 3) uint8, white below ``levels[0]``;
    ``nodata`` (2, 3) uint8 hatch colours for masked pixels.
    """

    unit: str
    levels: np.ndarray
    colours: np.ndarray
    values: np.ndarray
    lut: np.ndarray
    nodata: np.ndarray

    def label(self, i: int) -> str:
        v = self.levels[i]
        return f"{v:.0f}" if self.unit == "pixel" else f"{v:g}"


def _levels(units: Units, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """The standard levels in ``unit`` and the palette index of each."""
    if unit == "mmh":
        return MMH_LEVELS, np.arange(len(MMH_LEVELS))
    if unit == "dbz":
        return DBZ_LEVELS, np.arange(len(DBZ_LEVELS))
    # pixel: the first pixel level at or above each dBZ level, so the picture is the dBZ one
    p = np.ceil(units.dbz_to_pixel(DBZ_LEVELS) - 1e-9)
    keep = np.flatnonzero((p >= 1) & (p <= 255))
    return p[keep], keep


def colour_scale(units: Units, unit: str = "dbz", cmap: str = "radar") -> ColourScale:
    """Build the lookup that colours pixel levels of ``units`` in ``unit`` with ``cmap``."""
    unit = check_unit(unit)
    if cmap not in COLOUR_MAPS:
        choices = ", ".join(COLOUR_MAPS)
        raise RadarcastError(f"unknown colour map {cmap!r}; choose one of: {choices}")
    values = units.pixel_lut(unit)  # raises for mm/h without a Z-R relation
    levels, index = _levels(units, unit)
    colours = COLOUR_MAPS[cmap](index)
    bins = np.searchsorted(levels, values, side="right") - 1  # -1: below the lowest level
    lut = np.where((bins >= 0)[:, None], colours[np.maximum(bins, 0)], WHITE).astype(np.uint8)
    nodata = np.array(NODATA_RGB[cmap], np.uint8)
    return ColourScale(unit, levels, colours, values, lut, nodata)


def _grey(index: np.ndarray) -> np.ndarray:
    shades = np.linspace(200, 20, len(RADAR_RGB)).round().astype(np.uint8)[index]
    return np.repeat(shades[:, None], 3, axis=1)


COLOUR_MAPS = {"radar": lambda index: RADAR_RGB[index], "grey": _grey}


@functools.lru_cache(maxsize=8)
def _stripes(shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint16: 0 on the light, 1 on the dark diagonal stripes of the no-data hatch."""
    yy, xx = np.indices(shape)
    return ((yy + xx) // 2 % 3 == 0).astype(np.uint16)


def _hatch(shape: tuple[int, int], light: tuple, dark: tuple) -> np.ndarray:
    return np.take(np.array([light, dark], np.uint8), _stripes(shape), axis=0)


def _draw(index: np.ndarray, table: np.ndarray, valid: np.ndarray | None,
          nodata: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB of ``table[index]``, hatched with ``nodata`` (2, 3) where not ``valid``.

    ``np.take`` on a small table is ~4× faster than ``table[index]`` for 2-D tables, and
    folding the mask into the index (hatch = two extra rows) avoids a boolean scatter.
    """
    if valid is None or valid.all():
        return np.take(table, index, axis=0)
    n = len(table)
    index = np.where(valid, index, _stripes(index.shape) + n)  # (H, W) uint16
    return np.take(np.concatenate([table, nodata]), index, axis=0)


def colourise(pixels: np.ndarray, valid: np.ndarray | None, scale: ColourScale) -> np.ndarray:
    """(H, W) uint8 pixels (+ bool validity) → (H, W, 3) uint8 RGB; invalid pixels hatched."""
    return _draw(pixels, scale.lut, valid, scale.nodata)


def contingency_rgb(pred, truth, valid, event: np.ndarray, scale: ColourScale) -> np.ndarray:
    """(H, W) RGB of hits, misses and false alarms; ``event`` (256,) bool per pixel level.

    ``pred``, ``truth`` (H, W) uint8; ``valid`` (H, W) bool (both known). Correct negatives
    are white; pixels where either is unknown are hatched like "no data".
    """
    cat = event[pred].astype(np.uint8) + 2 * event[truth]  # 0 none, 1 FA, 2 miss, 3 hit
    table = np.array([WHITE, OVERLAY_RGB["false alarm"], OVERLAY_RGB["miss"], OVERLAY_RGB["hit"]],
                     np.uint8)
    return _draw(cat, table, valid, scale.nodata)


