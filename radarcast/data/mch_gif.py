"""MeteoSwiss AQC/CPC composites (GIF) read natively, without importing pysteps.

The GIF's palette index is a reflectivity class: dBZ = (index − 71.5) / 2, turned into a
5-minute rain depth with Z = 316·R^1.5; indices 0–1 and 251–254 are dry, 255 is missing.
The grid is the Swiss CCS4 domain (710 × 640 km, 1 km, Swiss oblique Mercator), which the
files do not carry. This is the documented product definition that pysteps' ``mch_gif``
importer also applies; :func:`read_mch_gif` gives the same frames and grid as that importer
(tests/test_mch_gif.py) in a fraction of the start-up time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from radarcast.data.images import read_image
from radarcast.data.inputs import times_from_names
from radarcast.data.pysteps_reader import metadata_georef, table_to_pixels
from radarcast.data.raw import RawFrame, ReadOptions

PRODUCTS = ("AQC", "CPC")
"""Products whose palette index is the reflectivity class (others go through pysteps)."""

CCS4 = {
    "projection": "+proj=somerc +lon_0=7.43958333333333 +lat_0=46.9524055555556 +k_0=1 "
    "+x_0=600000 +y_0=200000 +ellps=bessel +towgs84=674.374,15.056,405.346,0,0,0,0 "
    "+units=m +no_defs",
    "x1": 255000.0,
    "y1": -160000.0,
    "x2": 965000.0,
    "y2": 480000.0,
    "xpixelsize": 1000.0,
    "ypixelsize": 1000.0,
    "cartesian_unit": "m",
    "yorigin": "upper",
}
"""The CCS4 grid: corners (m, Swiss LV03 with false easting/northing), row 0 north."""


def depth_table(a: float = 316.0, b: float = 1.5) -> np.ndarray:
    """(256,) 5-minute rain depth (mm) of each palette index; NaN for 255 (missing)."""
    i = np.arange(256, dtype=np.float64)
    depth = (10.0 ** ((i - 71.5) / 20.0) / a) ** (1.0 / b)
    depth[(i < 2) | ((i > 250) & (i < 255))] = 0.0
    depth[255] = np.nan
    return depth


def is_native(paths: list[Path]) -> bool:
    """Whether every file is a product read here (by the file name's first letters)."""
    return all(p.name[:3].upper() in PRODUCTS for p in paths)


def read_mch_gif(paths: list[Path], opts: ReadOptions) -> Iterator[RawFrame]:
    """AQC/CPC GIFs, one frame each, on ``opts.target``'s scale (as read_pysteps would)."""
    table = depth_table()
    metadata = {**CCS4, "unit": "mm", "accutime": 5.0}
    times = times_from_names(paths, opts.time_pattern)
    georefs: dict = {}
    for p, t in zip(paths, times, strict=True):
        frame, valid = table_to_pixels(read_image(p), table, metadata, opts.target, str(p))
        georef = metadata_georef(metadata, georefs, str(p))
        yield RawFrame(frame, t, None if valid.all() else valid, False, str(p), georef)
