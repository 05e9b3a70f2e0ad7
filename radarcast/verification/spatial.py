"""Fractions skill score (Roberts & Lean 2008) at many scales and thresholds in one pass.

FSS = 1 − Σ (F − O)² / (Σ F² + Σ O²), F and O the fractions of event pixels (value ≥
threshold) in an n × n window around each pixel, for a deterministic forecast; for an
ensemble F is the window mean of the exceedance probability k/M (the neighbourhood
ensemble probability). Windows follow ``scipy.ndimage.uniform_filter(size=n,
mode='constant')``, as pysteps' ``spatialscores.fss``: rows i − n//2 … i − n//2 + n − 1,
zeros outside the grid, always divided by n². Where the forecast or the observation is
unknown (NaN or masked) both count as non-events (pysteps does this per field, so the two
agree when forecast and observation are unknown at the same pixels). Sums pool over
windows per lead. Every window sum comes from one summed-area table per frame and
threshold, shared by all scales (integer counts, exact).

Reference: Roberts, N. M. & Lean, H. W. (2008), Scale-selective verification of rainfall
accumulations from high-resolution forecasts of convective events, Mon. Wea. Rev. 136,
78–97.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SCALES = (1, 2, 4, 8, 16, 32)


def check_scales(scales, shape: tuple[int, int]) -> tuple[int, ...]:
    """Scales as ascending unique ints ≥ 1 that fit the (H, W) grid; ValueError otherwise."""
    out = sorted({int(s) for s in scales})
    if not out or out[0] < 1 or any(int(s) != s for s in scales):
        raise ValueError(f"FSS scales must be whole numbers of pixels ≥ 1, got {list(scales)}")
    if out[-1] > min(shape):
        raise ValueError(f"FSS scale {out[-1]} px is larger than the {shape[0]}x{shape[1]} grid")
    return tuple(out)


def pixel_km(georef) -> tuple[float, float] | None:
    """(x, y) pixel size in km of a :class:`~radarcast.data.georef.Georef`; None without one."""
    if georef is None:
        return None
    return georef.xpixelsize / 1000.0, georef.ypixelsize / 1000.0


def scales_in_pixels(scales, georef) -> tuple[list[int | float], list[str]]:
    """FSS scales given as numbers (pixels) or text "N" / "Nkm" → pixels, and what was converted.

    A km scale becomes the nearest whole number of pixels (at least 1) of the grid's square
    pixel; it is refused (ValueError) without georef or with non-square pixels. Returns the
    scales in pixels (checked later by :func:`check_scales`) and one note per km scale, e.g.
    "4km = 4 px (1 px = 1 km)".
    """
    out, notes = [], []
    for s in scales:
        text = str(s).strip().lower()
        try:
            value = float(text[:-2] if text.endswith("km") else text)
        except ValueError:
            raise ValueError(f"FSS scales are pixels or km (e.g. 4 or 4km), got {s!r}") from None
        if not text.endswith("km"):
            out.append(value)
            continue
        km = value
        px = pixel_km(georef)
        if px is None:
            raise ValueError(f"scale {s!r} is in km, but the dataset has no georef (pixel size "
                             "unknown); give scales in pixels")
        if not np.isclose(px[0], px[1]):
            raise ValueError(f"scale {s!r} is in km, but the pixels are not square "
                             f"({px[0]:g} x {px[1]:g} km); give scales in pixels")
        if not (np.isfinite(km) and km > 0):
            raise ValueError(f"scale {s!r} must be a positive number of km")
        n = max(1, int(round(km / px[0])))
        out.append(n)
        notes.append(f"{km:g}km = {n} px (1 px = {px[0]:g} km)")
    return out, notes


def _table(events: np.ndarray) -> np.ndarray:
    """Summed-area table (K, H+1, W+1) int64 of integer event counts (K, H, W)."""
    k, h, w = events.shape
    p = np.zeros((k, h + 1, w + 1), dtype=np.int64)
    np.cumsum(events, axis=1, out=p[:, 1:, 1:])
    np.cumsum(p[:, 1:, 1:], axis=2, out=p[:, 1:, 1:])
    return p


def _bounds(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    start = np.arange(n) - size // 2
    return np.clip(start, 0, n), np.clip(start + size, 0, n)


def box_sums(table: np.ndarray, size: int) -> np.ndarray:
    """(K, H, W) float64 sums over size × size windows (uniform_filter's placement).

    The table is edge-padded so that every window's clipped corners become plain slices
    (row i reads rows clip(i − size//2) and clip(i − size//2 + size) of the table); integer
    differences, so exactly :func:`box_sums_reference`'s numbers, without its gathers."""
    k, h1, w1 = table.shape
    h, w = h1 - 1, w1 - 1
    a = size // 2
    pad = ((0, 0), (a, size - 1 - a), (a, size - 1 - a))
    t = np.pad(table, pad, mode="edge") if size > 1 else table
    out = t[:, size : size + h, size : size + w] - t[:, :h, size : size + w]
    out -= t[:, size : size + h, :w]
    out += t[:, :h, :w]
    return out.astype(np.float64)


def box_sums_reference(table: np.ndarray, size: int) -> np.ndarray:
    """:func:`box_sums` written with gathers of the clipped corner indices (for tests)."""
    k, h1, w1 = table.shape
    r0, r1 = _bounds(h1 - 1, size)
    c0, c1 = _bounds(w1 - 1, size)
    rows = np.take(table, r1, axis=1) - np.take(table, r0, axis=1)  # (K, H, W+1)
    out = np.take(rows, c1, axis=2) - np.take(rows, c0, axis=2)
    return out.astype(np.float64)


def _padded_table(events: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """The summed-area table of ``events`` (K, H, W), edge-padded for windows up to ``size``:
    (K, H + size, W + size), and the offset of the plain table's row/column 0 in it. int32
    when every sum fits (the cumulative sums then move half the bytes), else int64."""
    k, h, w = events.shape
    a = size // 2
    top = int(events.max(initial=0)) * h * w
    p = np.zeros((k, h + size, w + size), dtype=np.int32 if top < 2**31 else np.int64)
    inner = p[:, a + 1 : a + 1 + h, a + 1 : a + 1 + w]
    np.cumsum(events, axis=1, out=inner)
    np.cumsum(inner, axis=2, out=inner)
    p[:, a + 1 + h :, a + 1 : a + 1 + w] = inner[:, -1:, :]  # rows past the end: the last
    p[:, :, a + 1 + w :] = p[:, :, a + w : a + w + 1]
    return p, a


def _frame_boxes(events: np.ndarray, scales, divide: int = 1) -> list[np.ndarray]:
    """Per scale, the (K, H, W) float64 window sums of integer ``events`` / ``divide``
    (uniform_filter's placement, as :func:`box_sums`), all from one padded table; scale 1
    is the events themselves."""
    k, h, w = events.shape
    big = max(scales)
    table, a = _padded_table(events, big) if big > 1 else (None, 0)
    out = []
    for n in scales:
        if n == 1:
            box = events.astype(np.float64)
        else:
            o = a - n // 2  # where this scale's padded table starts in the shared one
            lo, hi = slice(o, o + h), slice(o + n, o + n + h)
            left, right = slice(o, o + w), slice(o + n, o + n + w)
            d = table[:, hi, right] - table[:, lo, right]
            d -= table[:, hi, left]
            d += table[:, lo, left]
            box = d.astype(np.float64)
        out.append(box / divide if divide != 1 else box)
    return out


class ObsCache:
    """The observation's part of one frame's FSS (its window sums and Σ O² per scale),
    shared by every method scored on that frame: reused while the valid pixels are the
    same, recomputed (and replaced) otherwise, so the sums never depend on it."""

    def __init__(self):
        self.key = None  # (thresholds bytes, scales)
        self.valid = None
        self.boxes = None
        self.oo = None

    def get(self, obs, valid, thresholds, scales):
        key = (thresholds.tobytes(), tuple(scales))
        if self.key == key and self.valid is not None and np.array_equal(self.valid, valid):
            return self.boxes, self.oo
        thr = thresholds.astype(np.float32)[:, None, None]
        o_ev = ((obs >= thr) & valid).astype(np.int32)
        self.boxes = _frame_boxes(o_ev, scales)
        self.oo = [np.einsum("khw,khw->k", o, o) for o in self.boxes]
        self.key, self.valid = key, valid
        return self.boxes, self.oo


class FSSAccumulator:
    """Streaming FSS sums per lead, threshold and scale.

    Parameters
    ----------
    n_leads
        Lead times.
    thresholds
        (K,) event thresholds in the units of the fields given to :meth:`add`.
    scales
        Window sizes in pixels (checked by :func:`check_scales` against ``shape``).
    shape
        (H, W) grid.
    """

    def __init__(self, n_leads: int, thresholds, scales, shape: tuple[int, int]):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.scales = check_scales(scales, shape)
        self.shape = tuple(shape)
        # (L, K, S, 3): Σ F·O, Σ F², Σ O², with F and O in event counts per window
        self.sums = np.zeros((n_leads, len(self.thresholds), len(self.scales), 3))

    def add(self, lead: int, fct, obs, mask=None, cache: ObsCache | None = None) -> np.ndarray:
        """Add a frame: ``fct`` (H, W) deterministic or (M, H, W) members; ``obs`` (H, W).
        Returns this frame's (K, S, 3) sums (to keep per window for a bootstrap).
        ``cache`` (one per truth frame, shared by the methods scored on it) saves
        recomputing the observation's window sums; the numbers are the same without it."""
        fct = np.asarray(fct, dtype=np.float32)
        members = fct[None] if fct.ndim == 2 else fct
        obs = np.asarray(obs, dtype=np.float32)
        valid = np.isfinite(obs) & np.isfinite(members).all(axis=0)
        if mask is not None:
            valid &= np.asarray(mask, dtype=bool)
        m = members.shape[0]
        thr = self.thresholds.astype(np.float32)[:, None, None]
        f_ev = np.zeros((len(thr), *self.shape), dtype=np.int32)
        for x in members:  # counts of members ≥ t: k in 0 … M
            f_ev += (x >= thr) & valid
        o_boxes, oo = (cache or ObsCache()).get(obs, valid, self.thresholds, self.scales)
        frame = np.zeros(self.sums.shape[1:])  # (K, S, 3)
        for j, f in enumerate(_frame_boxes(f_ev, self.scales, m)):
            o = o_boxes[j]
            frame[:, j, 0] = np.einsum("khw,khw->k", f, o)
            frame[:, j, 1] = np.einsum("khw,khw->k", f, f)
            frame[:, j, 2] = oo[j]
        self.sums[lead] += frame
        return frame

    def merge(self, other: FSSAccumulator) -> FSSAccumulator:
        if other.sums.shape != self.sums.shape or other.scales != self.scales:
            raise ValueError("FSS accumulators of different shapes cannot be merged")
        self.sums += other.sums
        return self

    def fss(self) -> np.ndarray:
        """(L, K, S) FSS; NaN where neither forecast nor observation has an event."""
        return fss_of(self.sums)


def fss_of(sums: np.ndarray) -> np.ndarray:
    """FSS of sums (..., 3) of Σ F·O, Σ F², Σ O² (pooled, or a bootstrap resample's)."""
    fo, ff, oo = sums[..., 0], sums[..., 1], sums[..., 2]
    den = ff + oo
    ratio = np.divide(ff - 2 * fo + oo, den, out=np.full(den.shape, np.nan), where=den > 0)
    return 1.0 - ratio
