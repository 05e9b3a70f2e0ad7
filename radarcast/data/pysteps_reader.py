"""Radar composites read through pysteps' importers (optional extra ``radarcast[pysteps]``)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from radarcast.data.inputs import times_from_names
from radarcast.data.raw import PYSTEPS_INSTALL, RawFrame, ReadOptions
from radarcast.data.units import Units
from radarcast.errors import RadarcastError


# --------------------------------------------------------------------------- pysteps
def _importer_kwargs(name: str, path: Path) -> dict:
    """The extra arguments some pysteps importers need, guessed from the file."""
    if name == "fmi_pgm":
        return {"gzipped": path.name.lower().endswith(".gz")}
    if name == "mch_gif":
        # AQC values are 5-minute accumulations (pysteps' own pystepsrc says unit "mm")
        return {"product": path.name[:3].upper(), "unit": "mm", "accutime": 5.0}
    return {}


def pysteps_to_pixels(values: np.ndarray, metadata: dict, target: Units, name: str):
    """A pysteps importer's field → (uint8 pixels on ``target``'s scale, valid mask).

    Rain rate (mm/h), rain depth (mm per ``accutime`` minutes) and reflectivity (dBZ) are
    accepted, also in pysteps' dB transform; NaN is missing.
    """
    values = np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    unit, transform = metadata.get("unit"), (metadata.get("transform") or "").lower()
    if transform == "db" and unit != "dBZ":
        values = 10.0 ** (values / 10.0)
    if unit == "mm":
        values = values * 60.0 / float(metadata.get("accutime") or 5.0)
        unit = "mm/h"
    valid = np.isfinite(values)
    if unit == "mm/h":
        with np.errstate(divide="ignore", invalid="ignore"):
            pixels = target.to_pixel(np.where(valid, values, 0.0), "mmh")
    elif unit == "dBZ":
        pixels = target.to_pixel(np.where(valid, values, target.dbz_offset), "dbz")
    else:
        raise RadarcastError(f"{name}: pysteps returned unit {unit!r}; expected mm/h, mm or dBZ")
    pixels = np.clip(np.rint(np.nan_to_num(pixels, nan=0.0, neginf=0.0)), 0, 255).astype(np.uint8)
    pixels[~valid] = 0
    return pixels, valid


def table_to_pixels(codes: np.ndarray, table: np.ndarray, metadata: dict, target: Units,
                    name: str):
    """:func:`pysteps_to_pixels` of ``table[codes]`` for 8-bit ``codes`` (a palette index, a
    product's byte): the conversion is done once on the 256 values of ``table`` and looked
    up, which gives the same pixels and mask at a fraction of the cost."""
    pixels, known = pysteps_to_pixels(table[None], metadata, target, name)
    return pixels[0][codes], known[0][codes]


def read_pysteps(paths: list[Path], opts: ReadOptions) -> Iterator[RawFrame]:
    """Radar products through a pysteps importer; frames come out on ``opts.target``'s scale."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints its config path
            import pysteps.io
    except ImportError:
        raise RadarcastError(
            f"--format pysteps:{opts.pysteps_importer} needs pysteps: {PYSTEPS_INSTALL}"
        ) from None
    try:
        importer = pysteps.io.get_method(opts.pysteps_importer, "importer")
    except ValueError:
        names = ", ".join(sorted(pysteps.io.interface._importer_methods))
        raise RadarcastError(
            f"unknown pysteps importer {opts.pysteps_importer!r}; choose one of: {names}"
        ) from None
    times = times_from_names(paths, opts.time_pattern)
    georefs: dict = {}  # one Georef per distinct grid (pyproj parses each CRS once)
    for p, t in zip(paths, times, strict=True):
        try:
            values, _, metadata = importer(str(p), **_importer_kwargs(opts.pysteps_importer, p))
        except Exception as e:  # noqa: BLE001 - any importer failure is about this file
            # pysteps importers fail with many types (OSError, KeyError, even NameError
            # when an optional package such as pyproj is missing)
            raise RadarcastError(
                f"{p}: pysteps {opts.pysteps_importer} cannot read it ({type(e).__name__}: {e})"
            ) from None
        frame, valid = pysteps_to_pixels(values, metadata, opts.target, str(p))
        georef = metadata_georef(metadata, georefs, str(p))
        yield RawFrame(frame, t, None if valid.all() else valid, False, str(p), georef)


def metadata_georef(metadata: dict, cache: dict, name: str):
    """The :class:`~radarcast.data.georef.Georef` of a pysteps importer's metadata (None
    when the importer gives no projection or pyproj is missing), cached by grid."""
    from radarcast.data.georef import Georef

    keys = ("projection", "x1", "y1", "x2", "y2", "xpixelsize", "ypixelsize", "yorigin")
    key = tuple(str(metadata.get(k)) for k in keys)
    if key not in cache:
        import importlib.util

        if not metadata.get("projection") or importlib.util.find_spec("pyproj") is None:
            cache[key] = None
        else:
            try:
                cache[key] = Georef.from_pysteps(metadata)
            except RadarcastError as e:
                raise RadarcastError(f"{name}: {e}") from None
    return cache[key]
