"""Fractions skill score (Roberts & Lean 2008) at many scales and thresholds in one pass.

FSS = 1 − Σ (F − O)² / (Σ F² + Σ O²), F and O the fractions of event pixels (value ≥
threshold) in an n × n window around each pixel, for a deterministic forecast; for an
ensemble F is the window mean of the exceedance probability k/M (the neighbourhood
ensemble probability). Windows follow ``scipy.ndimage.uniform_filter(size=n,
mode='constant')``, as pysteps' ``spatialscores.fss``: rows i − n//2 … i − n//2 + n − 1,
zeros outside the grid, always divided by n². Where the forecast or the observation is
unknown (NaN or masked) both count as non-events (pysteps does this per field, so the two
agree when forecast and observation are unknown at the same pixels). Sums pool over
windows per lead.

Window sums are integer counts of events (an ensemble's member counts k are divided by M,
and their squares by M², only in the frame's sums), so every sum is exact. A window holds
an event only near one, so each field's sums are computed on the box around a threshold's
events grown by the largest window's reach and clipped to the grid (zero padding outside,
as uniform_filter's), and Σ F·O on the overlap of the forecast's and the observation's
boxes: elsewhere the sums are zero. Higher thresholds, with fewer events, cost less.
Windows of a power of two come from doubling the window of half the size; other sizes from
1-D runs of 1, 2, 4, … pixels.

Reference: Roberts, N. M. & Lean, H. W. (2008), Scale-selective verification of rainfall
accumulations from high-resolution forecasts of convective events, Mon. Wea. Rev. 136,
78–97.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SCALES = (1, 2, 4, 8, 16, 32)


def check_scales(scales, shape: tuple[int, int], given=None) -> tuple[int, ...]:
    """Scales as ascending unique ints ≥ 1 that fit the (H, W) grid; ValueError otherwise.
    ``given``: each scale as the user wrote it (e.g. "200km"), named in the refusal."""
    out = sorted({int(s) for s in scales})
    if not out or out[0] < 1 or any(int(s) != s for s in scales):
        raise ValueError(f"FSS scales must be whole numbers of pixels ≥ 1, got {list(scales)}")
    if out[-1] > min(shape):
        labels = dict(zip(scales, given or scales, strict=True))
        text = str(labels[out[-1]]).strip()
        what = f"{out[-1]} px" if text == str(out[-1]) else f"{text} ({out[-1]} px)"
        raise ValueError(f"FSS scale {what} is larger than the {shape[0]}x{shape[1]} grid")
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


def _box_1d(x: np.ndarray, n: int) -> np.ndarray:
    """Sums of ``n`` consecutive values along the last axis, placed at the first: length
    L − n + 1. Built from pieces of 1, 2, 4, … values (each the sum of two of the previous),
    one piece per set bit of ``n``, laid end to end."""
    length = x.shape[-1] - n + 1
    out, piece, size, at = None, x, 1, 0
    while True:
        if n & 1:
            part = piece[..., at : at + length]
            out = part.copy() if out is None else out + part
            at += size
        n >>= 1
        if not n:
            return out
        piece = piece[..., :-size] + piece[..., size:]
        size *= 2


def _uint(top: int):
    """The smallest unsigned integer dtype that holds 0 … top."""
    return next(d for bits, d in ((8, np.uint8), (16, np.uint16), (32, np.uint32), (64, np.uint64))
                if top < 2**bits)


def _anchored_sums(counts: np.ndarray, scales, m: int) -> list[np.ndarray]:
    """Per scale n, the sums of ``counts`` (h, w) of m members over the n × n windows whose
    top-left pixel is (i, j): (h − n + 1, w − n + 1), in the smallest dtype that holds
    n²·m. Windows of a power of two come from the window of half the size (four of them,
    added as two shifted pairs); other sizes from :func:`_box_1d` along columns, then rows."""
    square, n = {1: counts}, 1
    largest = max((s for s in scales if s & (s - 1) == 0), default=1)
    while n < largest:
        s = square[n]
        pair = np.add(s[:, :-n], s[:, n:], dtype=_uint(2 * n * n * m))  # (h − n + 1, w − 2n + 1)
        square[2 * n] = np.add(pair[:-n], pair[n:], dtype=_uint(4 * n * n * m))
        n *= 2
    return [square[n] if n in square else
            _box_1d(_box_1d(counts.astype(_uint(n * n * m)), n).T, n).T for n in scales]


def _dot(a: np.ndarray, b: np.ndarray, top: int) -> int:
    """Σ a·b of non-negative integer (h, w) arrays whose values are at most ``top``, exactly:
    row by row in the narrowest unsigned type that holds a row's sum (einsum runs about
    twice as fast in uint16/uint32 as in uint64, measured), the rows added in uint64; float64 only
    where even uint64 could overflow."""
    row = top * top * a.shape[-1]  # the largest sum of a row
    if row < 2**32:  # values ≤ top: casting a wider type loses nothing
        rows = np.einsum("ij,ij->i", a, b, dtype=_uint(row), casting="unsafe")
        return int(rows.sum(dtype=np.uint64))
    if top * top * a.size < 2**64:
        return int(np.einsum("ij,ij->", a, b, dtype=np.uint64))
    return int(round(float(np.einsum("ij,ij->", a, b, dtype=np.float64))))


class _WindowSums:
    """One field's window sums at one threshold, on one box: per scale j, the integer
    counts of events in the n × n window of each pixel of the grid rows p0:p1, columns
    q0:q1 (``boxes[j]``; every window elsewhere in the box holds none), the largest such
    count (``tops[j]``: n² times the members) and their Σ of squares."""

    def __init__(self, boxes: list, sums: list, tops: list[int]):
        self.boxes, self.sums, self.tops = boxes, sums, tops
        self.squares = [_dot(s, s, top) for s, top in zip(sums, tops, strict=True)]

    def part(self, j: int, box) -> np.ndarray:
        """Scale ``j``'s sums over ``box``, a part of ``boxes[j]``."""
        p0, _, q0, _ = self.boxes[j]
        return self.sums[j][box[0] - p0 : box[1] - p0, box[2] - q0 : box[3] - q0]


def _event_box(rowmax, colmax, t, big: int, shape) -> tuple[int, int, int, int] | None:
    """Grid rows p0:p1, columns q0:q1 outside of which no window up to ``big`` × ``big``
    holds a value ≥ t (``rowmax``/``colmax``: each row's/column's largest valid value);
    None without one. The window of pixel p spans p − n//2 … p − n//2 + n − 1, so an event
    at e reaches the pixels e − (n − 1 − n//2) … e + n//2."""
    rows, cols = np.flatnonzero(rowmax >= t), np.flatnonzero(colmax >= t)
    if not rows.size:
        return None
    up, down = big - 1 - big // 2, big // 2
    return (max(rows[0] - up, 0), min(rows[-1] + down + 1, shape[0]),
            max(cols[0] - up, 0), min(cols[-1] + down + 1, shape[1]))  # fmt: skip


TILE = 16  # px: events are located tile by tile to split a threshold's box
BOX_COST = 32768  # px: what one more box costs in numpy calls, in pixels of work (16384
# before 2026-12-03: 32768 was 1.2-1.3x faster on MeteoSwiss and FMI fields, one member or 20)


def _maxima(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest value of z (H, W) per row (H,), per column (W,) and per TILE × TILE tile
    (⌈H/TILE⌉, ⌈W/TILE⌉)."""
    by_tile_col = np.maximum.reduceat(z, np.arange(0, z.shape[1], TILE), axis=1)  # (H, ·)
    tiles = np.maximum.reduceat(by_tile_col, np.arange(0, z.shape[0], TILE), axis=0)
    return by_tile_col.max(axis=1), z.max(axis=0), tiles


def _dilate(a: np.ndarray, d: int) -> np.ndarray:
    """Boolean map a with every True spread d cells in each direction (a square)."""
    p = np.pad(a, d)
    rows = np.logical_or.reduce([p[i : i + a.shape[0]] for i in range(2 * d + 1)])
    return np.logical_or.reduce([rows[:, j : j + a.shape[1]] for j in range(2 * d + 1)])


def _best_cut(m: np.ndarray, cost) -> tuple[float, int]:
    """The row r (1 … h − 1) that splits ``m`` (h, w), True in its first and last row and
    column, into m[:r] and m[r:] of the least total ``cost(height, width)`` of their
    bounding boxes, and that cost."""
    h, w = m.shape
    idx = np.arange(h)
    filled = m.any(axis=1)
    left = np.where(filled, m.argmax(axis=1), w)
    right = np.where(filled, w - 1 - m[:, ::-1].argmax(axis=1), -1)
    top_h = np.maximum.accumulate(np.where(filled, idx, -1))[:-1] + 1
    top_w = np.maximum.accumulate(right)[:-1] - np.minimum.accumulate(left)[:-1] + 1
    down = np.minimum.accumulate(np.where(filled, idx, h)[::-1])[::-1][1:]
    low_w = (np.maximum.accumulate(right[::-1])[::-1][1:]
             - np.minimum.accumulate(left[::-1])[::-1][1:] + 1)  # fmt: skip
    total = cost(top_h, top_w) + cost(h - down, low_w)
    r = int(np.argmin(total))
    return float(total[r]), r + 1


def _split(active: np.ndarray, cost) -> list[tuple[int, int, int, int]]:
    """Disjoint boxes (rows a:b, columns c:d) that cover every True of ``active``: its
    bounding box, cut in two at the best row or column (:func:`_best_cut`) and each part
    split again, as long as that lowers the total ``cost(height, width)``."""
    rows, cols = np.flatnonzero(active.any(axis=1)), np.flatnonzero(active.any(axis=0))
    if not rows.size:
        return []
    a, b, c, d = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    m = active[a:b, c:d]
    whole = cost(b - a, d - c)
    if whole < 2 * cost(1, 1):  # two boxes cost more than this one
        return [(a, b, c, d)]
    by_row = _best_cut(m, cost) if b - a > 1 else (whole, 0)
    by_col = _best_cut(m.T, lambda y, x: cost(x, y)) if d - c > 1 else (whole, 0)
    if min(by_row[0], by_col[0]) >= whole:
        return [(a, b, c, d)]
    if by_row[0] <= by_col[0]:
        r = a + by_row[1]
        parts = [(a, r, c, d), (r, b, c, d)]
    else:
        r = c + by_col[1]
        parts = [(a, b, c, r), (a, b, r, d)]
    return [(y0 + p[0], y0 + p[1], x0 + p[2], x0 + p[3])
            for y0, y1, x0, x1 in parts for p in _split(active[y0:y1, x0:x1], cost)]


def _boxes(tiles: np.ndarray, t, box, big: int) -> list[tuple[int, int, int, int]]:
    """Disjoint grid boxes (p0, p1, q0, q1) inside ``box`` outside of which no window holds
    a value ≥ t: the tiles within a window's reach of a tile whose largest value
    (``tiles``) is ≥ t, grouped by :func:`_split`."""
    reach = -(-(big // 2) // TILE)  # in tiles: an event reaches big // 2 px at most

    def cost(h, w):  # pixels of work of a box of h × w tiles, its windows' margin included
        return (h * TILE + big - 1) * (w * TILE + big - 1) + BOX_COST

    out = []
    for a, b, c, d in _split(_dilate(tiles >= t, reach), cost):
        p0, p1 = max(a * TILE, box[0]), min(b * TILE, box[1])
        q0, q1 = max(c * TILE, box[2]), min(d * TILE, box[3])
        if p0 < p1 and q0 < q1:
            out.append((p0, p1, q0, q1))
    return out


def _crop_counts(fields, valid, t, box, big: int, dtype) -> np.ndarray:
    """Per pixel, how many of ``fields`` (M, H, W) are ≥ t where valid, on the pixels the
    windows of ``box`` cover: rows p0 − big//2 … p1 − 2 + big − big//2 (columns alike),
    (p1 − p0 + big − 1, q1 − q0 + big − 1), zeros outside the grid (uniform_filter's
    constant mode)."""
    p0, p1, q0, q1 = box
    y0, x0 = p0 - big // 2, q0 - big // 2  # the grid pixel at the crop's (0, 0)
    counts = np.zeros((p1 - p0 + big - 1, q1 - q0 + big - 1), dtype)
    r0, c0 = max(y0, 0), max(x0, 0)
    r1, c1 = min(y0 + counts.shape[0], valid.shape[0]), min(x0 + counts.shape[1], valid.shape[1])
    inner = counts[r0 - y0 : r1 - y0, c0 - x0 : c1 - x0]
    v = valid[r0:r1, c0:c1]
    for x in fields:
        inner += (x[r0:r1, c0:c1] >= t) & v
    return counts


def _box_sums(fields, valid, t, box, scales) -> _WindowSums | None:
    """:class:`_WindowSums` of the counts of ``fields`` ≥ t on the grid box ``box``, each
    scale's cut to the pixels its windows reach from the events; None without events."""
    big = scales[-1]
    counts = _crop_counts(fields, valid, t, box, big, _uint(len(fields)))
    rows, cols = np.flatnonzero(counts.any(axis=1)), np.flatnonzero(counts.any(axis=0))
    if not rows.size:
        return None
    y0, x0 = box[0] - big // 2, box[2] - big // 2  # the grid pixel at the crop's (0, 0)
    boxes, sums = [], []
    for n, s in zip(scales, _anchored_sums(counts, scales, len(fields)), strict=True):
        up, down = n - 1 - n // 2, n // 2
        p0, p1 = max(box[0], y0 + rows[0] - up), min(box[1], y0 + rows[-1] + down + 1)
        q0, q1 = max(box[2], x0 + cols[0] - up), min(box[3], x0 + cols[-1] + down + 1)
        p1, q1 = max(p0, p1), max(q0, q1)
        a, c = y0 + n // 2, x0 + n // 2  # pixel p's window starts at crop row p − a
        boxes.append((p0, p1, q0, q1))
        sums.append(s[p0 - a : p1 - a, q0 - c : q1 - c])
    return _WindowSums(boxes, sums, [n * n * len(fields) for n in scales])


def _field_sums(fields: np.ndarray, valid, thresholds, scales) -> list[list[_WindowSums]]:
    """Per threshold, the window sums of the counts of ``fields`` (M, H, W) ≥ it at valid
    pixels, on the boxes around them (:func:`_boxes`; none without such a pixel)."""
    big = scales[-1]
    z = np.where(valid, fields.max(axis=0) if len(fields) > 1 else fields[0], -np.inf)
    rowmax, colmax, tiles = _maxima(z)
    out = []
    for t in thresholds:
        box = _event_box(rowmax, colmax, t, big, valid.shape)
        boxes = [] if box is None else _boxes(tiles, t, box, big)
        sums = [_box_sums(fields, valid, t, b, scales) for b in boxes]
        out.append([x for x in sums if x is not None])
    return out


def _cross(fs: list[_WindowSums], os: list[_WindowSums], n_scales: int) -> list[int]:
    """Σ F·O per scale, over the pixels where both can be non-zero (the boxes' overlaps)."""
    out = [0] * n_scales
    for f in fs:
        for o in os:
            for j, (a, b) in enumerate(zip(f.boxes, o.boxes, strict=True)):
                box = (max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]))
                if box[0] < box[1] and box[2] < box[3]:
                    top = max(f.tops[j], o.tops[j])
                    out[j] += _dot(f.part(j, box), o.part(j, box), top)
    return out


class ObsCache:
    """The observation's part of one frame's FSS (its window sums per threshold and scale),
    shared by every method scored on that frame: reused while the valid pixels are the
    same, recomputed (and replaced) otherwise, so the sums never depend on it."""

    def __init__(self):
        self.key = None  # (thresholds bytes, scales)
        self.valid = None
        self.sums = None

    def get(self, obs, valid, thresholds, scales) -> list[list[_WindowSums]]:
        key = (thresholds.tobytes(), tuple(scales))
        if self.key == key and self.valid is not None and np.array_equal(self.valid, valid):
            return self.sums
        self.sums = _field_sums(obs[None], valid, thresholds, scales)
        self.key, self.valid = key, valid
        return self.sums


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
        thr = self.thresholds.astype(np.float32)  # compared as pysteps does, in float32
        o_sums = (cache or ObsCache()).get(obs, valid, thr, self.scales)
        f_sums = _field_sums(members, valid, thr, self.scales)
        frame = np.zeros(self.sums.shape[1:])  # (K, S, 3)
        for k, (f, o) in enumerate(zip(f_sums, o_sums, strict=True)):
            # member counts k of M: F = k/M, so Σ F² = Σ k² / M² and Σ F·O = Σ k·O / M
            frame[k, :, 0] = np.array(_cross(f, o, len(self.scales)), dtype=np.float64) / m
            frame[k, :, 1] = np.sum([x.squares for x in f], axis=0, dtype=np.float64) / (m * m)
            frame[k, :, 2] = np.sum([x.squares for x in o], axis=0, dtype=np.float64)
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
