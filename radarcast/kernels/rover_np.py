"""ROVER's motion estimate and advection in plain numpy (float32, CPU, no torch import).

The same arithmetic as :func:`radarcast.kernels.flow.motion_coarse` and
:func:`radarcast.kernels.advect.advect`, written out for one window at a time: torch's
``grid_sample`` (bilinear and bicubic, align_corners=False), ``interpolate`` (bilinear),
``avg_pool2d`` and replicate padding are reproduced here, so both paths agree to float32
rounding (tests/test_rover_np.py). The torch path batches many windows and runs on CUDA;
this one serves a single live nowcast, where importing torch (~1.5 s) costs more than the
whole forecast.
"""

from __future__ import annotations

import numpy as np

from radarcast.kernels.flow import SOR, RoverConfig, pyramid_depth

CUBIC_A = -0.75  # torch's bicubic kernel (Keys' convolution with a = -0.75)


def _intensity(x: np.ndarray, cfg: RoverConfig, gain: float, offset: float) -> np.ndarray:
    """As flow._intensity: pixels (T, H, W), NaN = missing → working intensity ≥ 0."""
    dbz = np.maximum(x * np.float32(gain) + np.float32(offset), np.float32(cfg.dbz_floor))
    if cfg.transform == "arctan":
        out = np.arctan((dbz - 33.0) / 4.0) - np.float32(np.arctan((cfg.dbz_floor - 33.0) / 4.0))
        out = out / np.float32(np.pi)
    else:
        out = (dbz - np.float32(cfg.dbz_floor)) / np.float32(50.0)
    return np.nan_to_num(out.astype(np.float32), nan=0.0)


def _pool(a: np.ndarray, k: int) -> np.ndarray:
    """avg_pool2d of (C, h, w) by k (h, w multiples of k)."""
    c, h, w = a.shape
    return a.reshape(c, h // k, k, w // k, k).mean(axis=(2, 4), dtype=np.float32)


def _edge(a: np.ndarray) -> np.ndarray:
    """(C, h, w) → (C, h + 2, w + 2), edge values repeated: np.pad(mode='edge') by slices
    (np.pad's own bookkeeping cost more than the copy on these small pyramid grids)."""
    c, h, w = a.shape
    p = np.empty((c, h + 2, w + 2), a.dtype)
    p[:, 1:-1, 1:-1] = a
    p[:, 0, 1:-1], p[:, -1, 1:-1] = a[:, 0], a[:, -1]
    p[:, :, 0], p[:, :, -1] = p[:, :, 1], p[:, :, -2]
    return p


def _neighbour_mean(f: np.ndarray) -> np.ndarray:
    p = _edge(f)
    return np.float32(0.25) * (p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:])


def _gradients(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = _edge(img)
    half = np.float32(0.5)
    return half * (p[:, 1:-1, 2:] - p[:, 1:-1, :-2]), half * (p[:, 2:, 1:-1] - p[:, :-2, 1:-1])


def _resize_bilinear(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """interpolate(mode='bilinear', align_corners=False) of (C, h, w) to ``size``."""
    out = a
    for axis, n_out in ((1, size[0]), (2, size[1])):
        n_in = out.shape[axis]
        src = np.maximum((np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5, 0)
        i0 = src.astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        lam = (src - i0).astype(np.float32)
        shape = [1, 1, 1]
        shape[axis] = n_out
        lam = lam.reshape(shape)
        out = np.take(out, i0, axis=axis) * (1 - lam) + np.take(out, i1, axis=axis) * lam
    return out.astype(np.float32)


def _flat(img: np.ndarray, before: int, after: int, edge: bool = False):
    """img (C, h, w) padded by ``before``/``after`` pixels (zeros, or edge values) and
    flattened per channel → ((C, N) array, padded width)."""
    if edge:
        p = np.pad(img, ((0, 0), (before, after), (before, after)), mode="edge")
        return p.reshape(p.shape[0], -1), p.shape[-1]
    c, h, w = img.shape
    p = np.zeros((c, h + before + after, w + before + after), img.dtype)
    p[:, before : before + h, before : before + w] = img
    return p.reshape(c, -1), p.shape[-1]


def _origin(x: np.ndarray, y: np.ndarray, lo: float, hi_x: float, hi_y: float):
    """Clipped coordinates → (integer corner x0, y0, fractions tx, ty)."""
    x, y = np.clip(x, lo, hi_x), np.clip(y, lo, hi_y)
    x0f, y0f = np.floor(x), np.floor(y)
    tx, ty = (x - x0f).astype(np.float32), (y - y0f).astype(np.float32)
    return x0f.astype(np.int64), y0f.astype(np.int64), tx, ty


def sample_bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray, border: bool = False):
    """grid_sample(bilinear) of img (C, h, w) at pixel coordinates (x, y) (0 = first pixel
    centre); 0 outside, or the nearest edge value with ``border``.

    Positions are clipped into a padded frame, so that no tap needs a bounds test: with
    zeros padding, a position beyond the first padding pixel reads only zeros anyway."""
    _, h, w = img.shape
    if border:  # torch clips the position into the grid
        flat, wp = _flat(img, 0, 1, edge=True)
        x0, y0, tx, ty = _origin(x, y, 0, w - 1, h - 1)
    else:
        flat, wp = _flat(img, 1, 2)
        x0, y0, tx, ty = _origin(x, y, -1, w, h)
        x0, y0 = x0 + 1, y0 + 1
    i = y0 * wp + x0
    top = flat[:, i] * (1 - tx) + flat[:, i + 1] * tx
    bottom = flat[:, i + wp] * (1 - tx) + flat[:, i + wp + 1] * tx
    return top * (1 - ty) + bottom * ty


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    a = np.float32(CUBIC_A)

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    def near(d):  # |d| ≤ 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def sample_bicubic(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grid_sample(bicubic, zeros padding) of img (C, h, w) at pixel coordinates (x, y).

    Taps x0 − 1 … x0 + 2; positions clipped to [−2, w + 1], where every non-zero weight
    falls on padding."""
    _, h, w = img.shape
    flat, wp = _flat(img, 3, 4)
    x0, y0, tx, ty = _origin(x, y, -2, w + 1, h + 1)
    wx, wy = _cubic_weights(tx), _cubic_weights(ty)
    corner = (y0 + 2) * wp + (x0 + 2)  # tap (x0 - 1, y0 - 1) in the padded frame
    out = None
    for j in range(4):
        row = None
        for i in range(4):
            term = flat[:, corner + (j * wp + i)] * wx[i]
            row = term if row is None else row + term
        out = row * wy[j] if out is None else out + row * wy[j]
    return out


def _refine(seq: np.ndarray, flow: np.ndarray, cfg: RoverConfig) -> np.ndarray:
    """As flow._refine for one window: seq (T, h, w), flow (2, h, w) → (2, h, w)."""
    prev, nxt = seq[:-1], seq[1:]
    k = prev.shape[0]
    gx, gy = _gradients(prev)
    stack = np.concatenate([prev, gx, gy])
    h, w = seq.shape[-2:]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    lam = np.float32(cfg.smoothness**2)
    red = (np.add.outer(np.arange(h), np.arange(w)) % 2) == 0
    sor = np.float32(SOR)
    for _ in range(cfg.warps):
        warped = sample_bicubic(stack, xs - flow[0], ys - flow[1])
        wp, wx, wy = warped[:k], warped[k : 2 * k], warped[2 * k :]
        u, v = flow[:1], flow[1:]
        a = nxt - wp - wx * u - wy * v
        for _ in range(cfg.iterations):
            jxx, jxy, jyy, bx, by, inv = _normal_equations(a, wx, wy, u, v, lam, cfg.robust)
            for colour in red, ~red:
                rx = lam * _neighbour_mean(u) - bx
                ry = lam * _neighbour_mean(v) - by
                u = np.where(colour, u + sor * ((jyy * rx - jxy * ry) * inv - u), u)
                v = np.where(colour, v + sor * ((jxx * ry - jxy * rx) * inv - v), v)
        flow = np.concatenate([u, v])
    return flow


def _normal_equations(a, wx, wy, u, v, lam, robust: float):
    if robust > 0:
        r = (a + wx * u + wy * v) / np.float32(robust)
        c = 1 / np.sqrt(1 + r * r)
        cx, cy = c * wx, c * wy
    else:
        cx, cy = wx, wy
    jxx = (cx * wx).sum(0, keepdims=True) + lam
    jxy = (cx * wy).sum(0, keepdims=True)
    jyy = (cy * wy).sum(0, keepdims=True) + lam
    bx = (cx * a).sum(0, keepdims=True)
    by = (cy * a).sum(0, keepdims=True)
    return jxx, jxy, jyy, bx, by, 1 / (jxx * jyy - jxy * jxy)


def motion_coarse(x: np.ndarray, cfg: RoverConfig, gain: float, offset: float) -> np.ndarray:
    """As :func:`radarcast.kernels.flow.motion_coarse` for one window x (T, H, W) float32
    (NaN = missing) → (2, h, w) (u, v) in full-resolution pixels per time step."""
    from radarcast.errors import RadarcastError

    n_frames, (hh, ww) = x.shape[0], x.shape[-2:]
    if n_frames < cfg.frames:
        raise RadarcastError(f"rover: needs {cfg.frames} input frames, got {n_frames}")
    depth = pyramid_depth(hh, ww, cfg)
    mult = cfg.downsample * 2 ** (depth - 1)
    seq = _intensity(np.asarray(x[-cfg.frames :], np.float32), cfg, gain, offset)
    seq = np.pad(seq, ((0, 0), (0, -hh % mult), (0, -ww % mult)))
    seq = _pool(seq, cfg.downsample) if cfg.downsample > 1 else seq
    levels = [seq]
    for _ in range(depth - 1):
        levels.append(_pool(levels[-1], 2))
    flow = np.zeros((2, *levels[-1].shape[-2:]), np.float32)
    for i, level in enumerate(reversed(levels)):
        if i:
            flow = np.float32(2) * _resize_bilinear(flow, level.shape[-2:])
        flow = _refine(level, flow, cfg)
    return flow * np.float32(cfg.downsample)


def _departures(flow: np.ndarray, n_steps: int, step_scale: int) -> np.ndarray:
    """Displacements (2·n, h, w) of the departure points of the coarse cell centres, traced
    back along ``flow`` (2, h, w) one time step at a time (in full-resolution pixels)."""
    fh, fw = flow.shape[-2:]
    s = np.float32(step_scale)
    cy, cx = (np.mgrid[0:fh, 0:fw].astype(np.float32) + np.float32(0.5)) * s - np.float32(0.5)
    px, py = cx.copy(), cy.copy()
    disp = np.empty((2 * n_steps, fh, fw), np.float32)
    for step in range(n_steps):
        vel = sample_bilinear(flow, (px + 0.5) / s - 0.5, (py + 0.5) / s - 0.5, border=True)
        px, py = px - vel[0], py - vel[1]
        disp[2 * step], disp[2 * step + 1] = px - cx, py - cy
    return disp


def _axis_weights(n_in: int, n_out: int, keep: int):
    """The first ``keep`` of interpolate(bilinear, align_corners=False)'s ``n_out`` source
    indices (i0, i1) and weights (lam, 1 - lam) along one axis of length ``n_in``."""
    src = np.maximum((np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5, 0)
    src = src[:keep]
    i0 = src.astype(np.int64)
    lam = (src - i0).astype(np.float32)
    return i0, np.minimum(i0 + 1, n_in - 1), lam, (1 - lam).astype(np.float32)


class _LeadWarp:
    """One thread's work on the full-resolution grid: upsample a lead's coarse displacement,
    sample the last frame (and its validity) there. The same float32 operations in the same
    order as ``_resize_bilinear`` then ``sample_bilinear``, so the numbers are those two
    give, but into buffers allocated once per thread: a fresh array for every intermediate
    of every lead cost more in page faults than the arithmetic (~100 k faults a nowcast)."""

    def __init__(self, shape: tuple[int, int], coarse: tuple[int, int], step_scale: int):
        (h, w), (fh, fw) = shape, coarse
        iy0, iy1, ly, my = _axis_weights(fh, fh * step_scale, h)
        ix0, ix1, lx, mx = _axis_weights(fw, fw * step_scale, w)
        self.rows = iy0, iy1, ly[:, None], my[:, None]
        self.cols = ix0, ix1, lx, mx
        self.xs, self.ys = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)[:, None]
        self.h, self.w = h, w
        f32 = np.float32
        self.r0, self.r1 = np.empty((2, h, fw), f32), np.empty((2, h, fw), f32)
        self.pos, self.low, self.tmp = (np.empty((2, h, w), f32) for _ in range(3))
        self.index = np.empty((h, w), np.intp)

    def positions(self, d: np.ndarray) -> None:
        """Departure points of every pixel for one lead's coarse displacement d (2, fh, fw):
        self.index = flat corner index in the padded frame, self.pos = fractions (tx, ty)."""
        iy0, iy1, ly, my = self.rows
        ix0, ix1, lx, mx = self.cols
        r0, r1, pos, low = self.r0, self.r1, self.pos, self.low
        np.take(d, iy0, axis=1, out=r0)
        np.take(d, iy1, axis=1, out=r1)
        r0 *= my
        r1 *= ly
        r0 += r1
        np.take(r0, ix0, axis=2, out=pos)
        np.take(r0, ix1, axis=2, out=low)
        pos *= mx
        low *= lx
        pos += low  # the displacement (dx, dy) of every pixel
        pos[0] += self.xs
        pos[1] += self.ys
        np.clip(pos[0], -1, self.w, out=pos[0])  # zeros padding: see sample_bilinear
        np.clip(pos[1], -1, self.h, out=pos[1])
        np.floor(pos, out=low)
        pos -= low  # (tx, ty)
        wp = self.w + 3  # the padded frame of _flat(img, 1, 2)
        i = self.index
        np.copyto(i, low[1], casting="unsafe")  # y0 (whole numbers ≥ -1: exact)
        i += 1
        i *= wp
        np.add(i, low[0], out=i, casting="unsafe")  # + x0, through float64: exact
        i += 1

    def sample(self, flat: np.ndarray, wp: int, out: np.ndarray) -> None:
        """Bilinear sample of one padded, flattened channel at the current positions."""
        tx, ty = self.pos
        a, b = self.low
        c, one_minus = self.tmp
        i = self.index
        np.take(flat, i, out=a, mode="clip")  # indices are in range: no bounds check
        np.take(flat[1:], i, out=b, mode="clip")
        np.subtract(1, tx, out=one_minus)
        a *= one_minus
        b *= tx
        a += b  # top
        np.take(flat[wp:], i, out=b, mode="clip")
        np.take(flat[wp + 1 :], i, out=c, mode="clip")
        b *= one_minus
        c *= tx
        b += c  # bottom
        np.subtract(1, ty, out=one_minus)
        a *= one_minus
        b *= ty
        np.add(a, b, out=out)


def advect(last: np.ndarray, flow: np.ndarray, n_steps: int, step_scale: int, outside: str):
    """As :func:`radarcast.kernels.advect.advect` for one frame ``last`` (H, W) and its
    coarse ``flow`` (2, h, w) covering (h·step_scale, w·step_scale) pixels → (n, H, W)."""
    h, w = last.shape
    valid = np.isfinite(last)
    img = np.where(valid, last, np.float32(0)).astype(np.float32)[None]
    if outside == "nan":
        img = np.concatenate([img, valid.astype(np.float32)[None]])
    flat, wp = _flat(img, 1, 2)  # (C, N) zero-padded once for every lead
    disp = _departures(flow, n_steps, step_scale)
    pred = np.empty((n_steps, h, w), np.float32)
    workers = min(n_steps, _threads())

    def leads(first: int) -> None:  # numpy releases the GIL: leads run in parallel threads
        warp = _LeadWarp((h, w), flow.shape[-2:], step_scale)
        known = np.empty((h, w), np.float32) if outside == "nan" else None
        for step in range(first, n_steps, workers):
            warp.positions(disp[2 * step : 2 * step + 2])
            warp.sample(flat[0], wp, pred[step])
            if known is not None:
                warp.sample(flat[1], wp, known)
                pred[step][known <= 0.999] = np.nan

    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(leads, range(workers)))
    else:
        leads(0)
    return pred


def _threads() -> int:
    """Threads for the per-lead work: OMP_NUM_THREADS when set (--threads), else the
    usable cores."""
    import os

    from radarcast.threads import usable_cores

    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return usable_cores()


def forecast(x: np.ndarray, n_steps: int, cfg: RoverConfig, gain: float, offset: float):
    """ROVER for windows x (B, T, H, W) float32 → (B, n_steps, H, W), one window at a time."""
    out = [
        advect(w[-1], motion_coarse(w, cfg, gain, offset), n_steps, cfg.downsample, cfg.outside)
        for w in np.asarray(x, np.float32)
    ]
    return np.stack(out)
