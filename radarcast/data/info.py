"""A dataset's summary, as plain data for the ``info`` command to render."""

from __future__ import annotations

import os

import numpy as np

from radarcast.config import count_or
from radarcast.data.georef import dataset_georef
from radarcast.data.store import SPLITS, format_time, open_dataset
from radarcast.data.units import describe_zr

RAIN_MMH = 0.5  # what counts as a rainy pixel in the summary
MAX_SAMPLED_FRAMES = 256  # rainy fraction estimated from at most this many frames per split


def rainy_fraction(ds, indices: np.ndarray) -> float:
    """Fraction of valid pixels ≥ 0.5 mm/h (pixel > 0 without Z–R) over a sample of frames."""
    if len(indices) == 0:
        return float("nan")
    if len(indices) > MAX_SAMPLED_FRAMES:
        indices = indices[np.linspace(0, len(indices) - 1, MAX_SAMPLED_FRAMES).astype(int)]
    level = np.ceil(ds.units.rain_to_pixel(RAIN_MMH)) if ds.units.has_zr else 1
    rainy = valid = 0
    for i in indices:
        frame, mask = ds.frames(int(i))[0], ds.masks(int(i))[0]
        rainy += int(np.count_nonzero((frame >= level) & mask))
        valid += int(np.count_nonzero(mask))
    return rainy / valid if valid else float("nan")


def plural(n: int, noun: str) -> str:
    """'1 segment', '3 segments'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def describe_segments(ds) -> str:
    """'3 segments', or '1 unbroken run, cut into 3 segments by the split' when the split's
    cuts are what made the extra segments (a border inside a run of consecutive times)."""
    seg, split = ds.segments, ds.splits
    n = int(len(np.unique(seg)))
    borders = np.flatnonzero(np.diff(seg)) + 1
    cut = (split[borders] != split[borders - 1]) & (np.diff(ds.times)[borders - 1] == ds.timestep_s)
    runs = n - int(cut.sum())
    if runs == n:
        return plural(n, "segment")
    return f"{plural(runs, 'unbroken run')}, cut into {n:,} segments by the split"


def zr_line(units, origin: str | None = None) -> str:
    """'Z = 316 R^1.5 (from --input-scale mch); 0.5 mm/h = 20.5 dBZ' for the info table."""
    if not units.has_zr:
        return "none recorded"
    where = ""
    if origin and " from " in str(origin):
        where = f" (from {str(origin).split(' from ', 1)[1]})"
    dbz = float(units.rain_to_dbz(RAIN_MMH))
    return f"{describe_zr(units)}{where}; {RAIN_MMH:g} mm/h = {dbz:.1f} dBZ"


def summarize(path: str | os.PathLike, n_in: int | None = None, n_out: int | None = None) -> dict:
    """Grid, time span, segments, windows per split, units, rainy fraction and provenance."""
    with open_dataset(path) as ds:
        n_in = count_or(n_in, ds.n_in, "--n-in")
        n_out = count_or(n_out, ds.n_out, "--n-out")
        t, h, w = ds.shape
        u = ds.units
        zr = zr_line(u, ds.attrs.get("zr_source"))
        n_masked = "static" if ds.static_mask is not None else "per frame"
        rows = [
            ("file", str(ds.path)),
            ("frames", f"{t:,} of {h}×{w} px"),
            ("time", f"{format_time(ds.times[0])} → {format_time(ds.times[-1])}"),
            ("time step", f"{ds.timestep_s / 60:g} min"),
            ("segments", describe_segments(ds)),
            ("scale", f"dBZ = {u.dbz_gain:.6g}·pixel {u.dbz_offset:+g}"),
            ("Z–R", zr),
            ("mask", f"{n_masked}; {_valid_fraction(ds):.1%} of pixels valid"),
            ("grid", _georef_line(ds)),
            ("source", ds.source or "—"),
            ("created by", str(ds.attrs.get("created_by", "—"))),
            ("created at", str(ds.attrs.get("created_at", "—"))),
        ]
        counts = ds.split_counts(n_in, n_out)
        for name, code in SPLITS.items():
            frac = rainy_fraction(ds, np.flatnonzero(ds.splits == code))
            counts[name]["rainy"] = "—" if np.isnan(frac) else f"{frac:.1%}"
        return {"rows": rows, "splits": counts, "n_in": n_in, "n_out": n_out, "shape": (t, h, w)}


def _georef_line(ds) -> str:
    georef = dataset_georef(ds)
    if georef is None:
        return "no geo-reference (pixel coordinates; --crs/--bounds at preprocess add one)"
    return georef.describe()


def _valid_fraction(ds) -> float:
    if ds.static_mask is not None:
        return float(ds.static_mask.mean())
    idx = np.linspace(0, ds.n_frames - 1, min(ds.n_frames, MAX_SAMPLED_FRAMES)).astype(int)
    return float(np.mean([ds.masks(int(i))[0].mean() for i in idx]))
