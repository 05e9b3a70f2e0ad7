"""Image inputs: decoding one file (PNG, GIF, PGM, TIFF, ...) into a checked 2-D grid."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from radarcast.data.codec import GZIP_ERRORS, gunzip
from radarcast.errors import RadarcastError


# --------------------------------------------------------------------------- grids
def as_grid(a: np.ndarray, name: str) -> np.ndarray:
    """Check that ``a`` holds a 2-D grid of integers 0..255 and return it as uint8.
    Float NaNs are allowed (read as missing) and come back as 0; see :func:`nan_mask`."""
    if a.ndim != 2 or 0 in a.shape:
        raise RadarcastError(f"{name}: expected a non-empty 2-D grid, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind in "iu":
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 255:
            raise RadarcastError(f"{name}: values {lo}..{hi} lie outside the 0–255 range")
        return a.astype(np.uint8)
    if a.dtype.kind == "f":
        finite = a[np.isfinite(a)]
        if finite.size and (
            finite.min() < 0 or finite.max() > 255 or np.any(finite != np.round(finite))
        ):
            raise RadarcastError(
                f"{name}: float values (range {finite.min():g}..{finite.max():g}) where a grid of "
                "integers 0–255 is expected"
            )
        return np.nan_to_num(a, nan=0.0).astype(np.uint8)
    raise RadarcastError(f"{name}: {a.dtype} values where a grid of integers 0–255 is expected")


def nan_mask(a: np.ndarray) -> np.ndarray | None:
    """Validity mask of a float array with NaN for missing; None when all valid."""
    if a.dtype.kind != "f":
        return None
    valid = np.isfinite(a)
    return None if valid.all() else valid


_SEP = rb"(?:\s|#[^\n]*\n)+"  # whitespace and comment lines, one at a time (no backtracking)
_PGM_HEADER = re.compile(rb"P5" + _SEP + rb"(\d+)" + _SEP + rb"(\d+)" + _SEP + rb"(\d+)\s")


def parse_pgm(data: bytes) -> np.ndarray | None:
    """A binary 8-bit PGM (P5, maxval ≤ 255) → (H, W) uint8 view of ``data``; None for
    anything else (ASCII or 16-bit PGM, other formats), which Pillow then reads. Radar
    composites (FMI's among them) come as P5 with comment lines in the header."""
    m = _PGM_HEADER.match(data)
    if m is None:
        return None
    w, h, maxval = (int(g) for g in m.groups())
    if not 0 < maxval < 256 or w == 0 or h == 0 or len(data) - m.end() < w * h:
        return None  # Pillow reads or refuses it, with its own message
    return np.frombuffer(data, np.uint8, w * h, m.end()).reshape(h, w)


def read_image(path: Path) -> np.ndarray:
    """One image file → (H, W) uint8. Palette images give the palette index."""
    from PIL import Image

    try:
        data = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            data = gunzip(data)
        if data[:2] == b"P5" and (grid := parse_pgm(data)) is not None:
            return grid
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except (*GZIP_ERRORS, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise RadarcastError(f"{path}: cannot read the image ({e})") from None
    if im.mode in ("L", "P"):
        return np.asarray(im)
    if im.mode in ("RGB", "RGBA"):
        a = np.asarray(im)
        if np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2]):
            return np.ascontiguousarray(a[..., 0])
        raise RadarcastError(
            f"{path}: a colour ({im.mode}) image; expected one channel of 0–255 values "
            "(grey or palette index)"
        )
    if im.mode == "1":  # bilevel: 0/255 as drawn (numpy would give bool, refused below)
        return np.asarray(im.convert("L"))
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return as_grid(np.asarray(im), str(path))
    raise RadarcastError(f"{path}: image mode {im.mode} is not a single-channel 0–255 grid")
