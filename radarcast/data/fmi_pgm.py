"""FMI radar composites (8-bit PGM, gzipped or not) read natively, without importing pysteps.

A pixel p is reflectivity (p − 64) / 2 dBZ; the header's maxval marks missing pixels. The
header's comment lines ("# key value ...") carry the grid: a polar stereographic
projection (central longitude/latitude, true latitude), the lon/lat of the bottom-left and
top-right corners and the pixel size; the sphere radius and false easting/northing are the
values FMI's archive uses, which the files omit. This is the product definition pysteps'
``fmi_pgm`` importer applies too; :func:`read_fmi_pgm` gives the same frames and grid
(tests/test_mch_gif.py) without pysteps' ~1.8 s import.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from radarcast.data.images import _PGM_HEADER, read_image
from radarcast.data.inputs import times_from_names
from radarcast.data.pysteps_reader import metadata_georef, table_to_pixels
from radarcast.data.raw import RawFrame, ReadOptions
from radarcast.errors import RadarcastError

SPHERE = "+a=6371288 +x_0=380886.310 +y_0=3395677.920 +no_defs"


def header(path: Path) -> tuple[dict[str, list[str]], int]:
    """The header's comment lines as key → values, and maxval (the missing value)."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(8192)
    except (OSError, EOFError) as e:
        raise RadarcastError(f"{path}: cannot read the FMI PGM header ({e})") from None
    m = _PGM_HEADER.match(head)
    if m is None:
        raise RadarcastError(f"{path}: not an 8-bit binary PGM (P5)")
    keys: dict[str, list[str]] = {}
    for line in head[: m.end()].split(b"\n"):
        if line.startswith(b"#"):
            parts = line[1:].decode("latin-1").split()
            if len(parts) >= 2:
                keys[parts[0]] = parts[1:]
    return keys, int(m.group(3))


def geodata(keys: dict[str, list[str]], name: str) -> dict:
    """pysteps-style grid metadata of a stereographic FMI header; {} for other grids."""
    if keys.get("type", [""])[0] != "stereographic":
        return {}
    import pyproj

    try:
        proj = (
            f"+proj=stere +lon_0={keys['centrallongitude'][0]}E "
            f"+lat_0={keys['centrallatitude'][0]}N +lat_ts={keys['truelatitude'][0]} {SPHERE}"
        )
        to_xy = pyproj.Proj(proj)
        x1, y1 = to_xy(*(float(v) for v in keys["bottomleft"][:2]))
        x2, y2 = to_xy(*(float(v) for v in keys["topright"][:2]))
        sx, sy = float(keys["metersperpixel_x"][0]), float(keys["metersperpixel_y"][0])
    except (KeyError, ValueError, IndexError, pyproj.exceptions.CRSError) as e:
        raise RadarcastError(f"{name}: FMI PGM header lacks a usable grid ({e})") from None
    return {"projection": proj, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "xpixelsize": sx,
            "ypixelsize": sy, "cartesian_unit": "m", "yorigin": "upper"}  # fmt: skip


def read_fmi_pgm(paths: list[Path], opts: ReadOptions) -> Iterator[RawFrame]:
    """FMI PGM composites, one frame each, on ``opts.target``'s scale (as read_pysteps)."""
    times = times_from_names(paths, opts.time_pattern)
    georefs: dict = {}
    for p, t in zip(paths, times, strict=True):
        keys, missing = header(p)
        grid = read_image(p)  # uint8: the header says 8-bit
        dbz = (np.arange(256, dtype=np.float64) - 64.0) / 2.0
        if missing < 256:
            dbz[missing] = np.nan
        metadata = {**geodata(keys, str(p)), "unit": "dBZ", "transform": "dB"}
        frame, valid = table_to_pixels(grid, dbz, metadata, opts.target, str(p))
        georef = metadata_georef(metadata, georefs, str(p))
        yield RawFrame(frame, t, None if valid.all() else valid, False, str(p), georef)
