"""ROVER: variational optical flow on radar echoes, then semi-Lagrangian extrapolation.

ROVER ("Real-time Optical flow by Variational methods for Echoes of Radar") is the Hong
Kong Observatory's operational nowcast (Woo & Wong 2017, "Operational application of
optical flow techniques to radar-based rainfall nowcasting", Atmosphere 8(3), 48) and the
classical baseline of Shi et al. 2015 (ConvLSTM) and the HKO-7 benchmark (Shi et al. 2017).

This implementation, written in torch so that one code path runs batched on CPU and CUDA:

1. turns the last ``frames`` inputs into a working intensity (optionally HKO-7's
   T = arctan((dBZ − 33) / 4)), with missing pixels and everything below ``dbz_floor`` dry;
2. averages it down by ``downsample`` and estimates one motion field shared by all
   consecutive frame pairs with a coarse-to-fine Horn–Schunck solver with a robust
   (Charbonnier) data term and image warping (Horn & Schunck 1981; Brox et al. 2004; the
   coarse-to-fine variational scheme that Bruhn et al. 2005 accelerate by multigrid);
3. traces every pixel back along the (bilinearly interpolated) field, one time step at a
   time, and samples the last frame there bilinearly (semi-Lagrangian backward advection).

Motion is (u, v) = (x, y) = (column, row) displacement in pixels per time step: an echo at
(x, y) at time t is at (x + u, y + v) at t + 1. Whatever enters from outside the domain (or
from a missing pixel of the last frame) is dry (pixel 0) with ``outside='zero'``, unknown
(NaN) with ``outside='nan'``. The method moves echoes; it cannot grow or decay them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from radarcast.errors import RadarcastError

TRANSFORMS = ("arctan", "linear")
OUTSIDE = ("zero", "nan")
SOR = 1.8  # over-relaxation of the red-black Gauss-Seidel sweeps
MIN_LEVEL_PX = 8  # the coarsest pyramid level keeps at least this many pixels a side


@dataclass(frozen=True)
class RoverConfig:
    """ROVER's settings; the defaults are tuned on MeteoSwiss and FMI data (docs/rover.md).

    Attributes
    ----------
    frames
        Most recent input frames the motion is estimated from (≥ 2; 3 → two frame pairs).
    transform
        'arctan': HKO-7's T = arctan((dBZ − 33) / 4), which weights the 25–40 dBZ echoes;
        'linear': intensity linear in dBZ above ``dbz_floor``.
    dbz_floor
        Reflectivity (dBZ) below which a pixel counts as dry for the motion estimate.
    smoothness
        Weight α of the smoothness term (quadratic, Horn–Schunck) against the data term on
        intensities in [0, 1]; larger → smoother, more uniform motion.
    robust
        Charbonnier scale ε of the data term (intensity units): residuals much larger than
        ε are down-weighted; 0 → the quadratic data term of classical Horn–Schunck.
    levels
        Most pyramid levels (each halves the grid); fewer are used where the working grid
        would fall below 8 pixels a side.
    downsample
        Working resolution: the flow is computed on a grid ``downsample`` times coarser
        than the input and interpolated back.
    warps
        Re-linearisations (image warps) per pyramid level.
    iterations
        Red-black SOR sweeps (relaxation 1.8) of the linearised equations per warp.
    outside
        What enters from outside the domain or from missing pixels: 'zero' (dry) or 'nan'.
    """

    frames: int = 3
    transform: str = "linear"
    dbz_floor: float = 5.0
    smoothness: float = 0.4
    robust: float = 0.05
    levels: int = 5
    downsample: int = 2
    warps: int = 2
    iterations: int = 10
    outside: str = "zero"

    def __post_init__(self) -> None:
        if self.frames < 2:
            raise RadarcastError(f"rover: frames must be ≥ 2, got {self.frames}")
        if self.transform not in TRANSFORMS:
            raise RadarcastError(
                f"rover: unknown transform {self.transform!r}; "
                f"choose one of: {', '.join(TRANSFORMS)}"
            )
        if self.outside not in OUTSIDE:
            raise RadarcastError(
                f"rover: unknown outside {self.outside!r}; choose one of: {', '.join(OUTSIDE)}"
            )
        for name in ("levels", "downsample", "warps", "iterations"):
            if getattr(self, name) < 1:
                raise RadarcastError(f"rover: {name} must be ≥ 1, got {getattr(self, name)}")
        if not self.smoothness > 0 or self.robust < 0:
            raise RadarcastError(
                f"rover: need smoothness > 0 and robust ≥ 0, got {self.smoothness}, {self.robust}"
            )


# --------------------------------------------------------------------------- helpers
def _torch():
    import torch

    return torch


def _as_batch(frames, what: str, ndim: int):
    """numpy/torch (..., H, W) → float32 torch with a leading batch axis; was it batched?"""
    torch = _torch()
    t = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.asarray(frames))
    t = t.float()
    if t.ndim == ndim - 1:
        return t.unsqueeze(0), False
    if t.ndim != ndim:
        raise RadarcastError(
            f"rover: {what} must have {ndim - 1} or {ndim} axes, got shape {tuple(t.shape)}"
        )
    return t, True


def _intensity(x, cfg: RoverConfig, gain: float, offset: float):
    """Pixels (B, T, H, W), NaN = missing → working intensity ≥ 0, dry and missing = 0."""
    torch = _torch()
    dbz = torch.clamp(x * gain + offset, min=cfg.dbz_floor)
    if cfg.transform == "arctan":
        out = torch.atan((dbz - 33.0) / 4.0) - math.atan((cfg.dbz_floor - 33.0) / 4.0)
        out = out / math.pi
    else:
        out = (dbz - cfg.dbz_floor) / 50.0
    return torch.nan_to_num(out, nan=0.0)


def _pyramid_depth(h: int, w: int, cfg: RoverConfig) -> int:
    """Levels that fit the grid; RadarcastError when not even the working grid fits."""
    hw, ww = h // cfg.downsample, w // cfg.downsample
    if min(hw, ww) < MIN_LEVEL_PX:
        need = MIN_LEVEL_PX * cfg.downsample
        raise RadarcastError(
            f"rover: grid {h}x{w} is too small for downsample={cfg.downsample}: "
            f"needs at least {need}x{need} pixels"
        )
    depth = 1
    while depth < cfg.levels and min(hw, ww) >> depth >= MIN_LEVEL_PX:
        depth += 1
    return depth


def _sample(img, pos, extent: tuple[int, int], padding: str = "zeros", mode: str = "bilinear"):
    """Bilinear sample of img (B, C, h, w) at full-res pixel positions pos (B, Ho, Wo, 2)
    (x, y); the image covers ``extent`` = (H, W) full-res pixels."""
    torch = _torch()
    scale = torch.tensor([2.0 / extent[1], 2.0 / extent[0]], dtype=pos.dtype, device=pos.device)
    grid = (pos + 0.5) * scale - 1.0
    return torch.nn.functional.grid_sample(
        img, grid, mode=mode, padding_mode=padding, align_corners=False
    )


def _base_grid(h: int, w: int, device):
    torch = _torch()
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=device),
        torch.arange(w, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1).unsqueeze(0)  # (1, h, w, 2)


def _neighbour_mean(f):
    """4-neighbour mean of (B, C, h, w) with mirrored borders (the smoothness operator)."""
    torch = _torch()
    p = torch.nn.functional.pad(f, (1, 1, 1, 1), mode="replicate")
    return 0.25 * (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:])


def _gradients(img):
    """Central differences of (B, K, h, w) in x and y, per pixel."""
    torch = _torch()
    p = torch.nn.functional.pad(img, (1, 1, 1, 1), mode="replicate")
    gx = 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
    gy = 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    return gx, gy


# --------------------------------------------------------------------------- motion
def _normal_equations(a, wx, wy, u, v, lam: float, robust: float):
    """Per-pixel 2x2 system of Σ_k c_k (a_k + wx_k·u + wy_k·v)² + λ ((u − ū)² + (v − v̄)²).

    c_k is the Charbonnier weight of the current residual (1 when ``robust`` is 0). Returns
    (jxx, jxy, jyy, bx, by, 1/det), each (B, 1, h, w), for (J + λI)(u, v) = λ(ū, v̄) − b.
    """
    torch = _torch()
    if robust > 0:
        r = (a + wx * u + wy * v) / robust
        c = torch.rsqrt(1.0 + r * r)  # Charbonnier weight in (0, 1]
        cx, cy = c * wx, c * wy
    else:
        cx, cy = wx, wy
    jxx = (cx * wx).sum(1, keepdim=True) + lam
    jxy = (cx * wy).sum(1, keepdim=True)
    jyy = (cy * wy).sum(1, keepdim=True) + lam
    bx = (cx * a).sum(1, keepdim=True)
    by = (cy * a).sum(1, keepdim=True)
    return jxx, jxy, jyy, bx, by, 1.0 / (jxx * jyy - jxy * jxy)


def _refine(seq, flow, cfg: RoverConfig):
    """Warps × red-black SOR sweeps of the linearised robust Horn–Schunck equations.

    seq (B, T, h, w) intensities; flow (B, 2, h, w) initial (u, v) in pixels of this level.
    Data term: Σ_k ψ(I_{k+1}(x) − I_k(x − u)); smoothness α² |∇u|².
    """
    torch = _torch()
    prev, nxt = seq[:, :-1], seq[:, 1:]  # (B, K, h, w) each
    k = prev.shape[1]
    gx, gy = _gradients(prev)
    stack = torch.cat([prev, gx, gy], dim=1)  # (B, 3K, h, w)
    h, w = seq.shape[-2:]
    base = _base_grid(h, w, seq.device)
    lam = cfg.smoothness**2
    red = (
        (torch.arange(h, device=seq.device)[:, None] + torch.arange(w, device=seq.device)) % 2
    ) == 0
    black = ~red
    for _ in range(cfg.warps):
        # bicubic: bilinear warping is biased at peaks, where the gradient vanishes
        warped = _sample(stack, base - flow.permute(0, 2, 3, 1), (h, w), mode="bicubic")
        wp, wx, wy = warped[:, :k], warped[:, k : 2 * k], warped[:, 2 * k :]
        u0, v0 = flow[:, :1], flow[:, 1:]
        a = nxt - wp - wx * u0 - wy * v0  # residual r = a + wx·u + wy·v
        u, v = u0, v0
        for _ in range(cfg.iterations):
            # robust weights lagged by one sweep; red-black SOR: one colour, then the other
            jxx, jxy, jyy, bx, by, inv = _normal_equations(a, wx, wy, u, v, lam, cfg.robust)
            for colour in red, black:
                rx = lam * _neighbour_mean(u) - bx
                ry = lam * _neighbour_mean(v) - by
                u = torch.where(colour, u + SOR * ((jyy * rx - jxy * ry) * inv - u), u)
                v = torch.where(colour, v + SOR * ((jxx * ry - jxy * rx) * inv - v), v)
        flow = torch.cat([u, v], dim=1)
    return flow


def motion_coarse(x, cfg: RoverConfig, gain: float = 70 / 255, offset: float = -10.0):
    """Motion on the working grid from pixels x (B, T, H, W) torch float (NaN = missing).

    Returns (B, 2, h, w) (u, v) in full-resolution pixels per time step, where
    h = ceil(H / m)·m / downsample for the padding multiple m; the field covers
    (h·downsample, w·downsample) input pixels from the top-left corner.
    """
    torch = _torch()
    fn = torch.nn.functional
    n_frames, (hh, ww) = x.shape[1], x.shape[-2:]
    if n_frames < cfg.frames:
        raise RadarcastError(f"rover: needs {cfg.frames} input frames, got {n_frames}")
    depth = _pyramid_depth(hh, ww, cfg)
    mult = cfg.downsample * 2 ** (depth - 1)
    seq = _intensity(x[:, -cfg.frames :], cfg, gain, offset)
    seq = fn.pad(seq, (0, -ww % mult, 0, -hh % mult))  # dry beyond the border
    seq = fn.avg_pool2d(seq, cfg.downsample) if cfg.downsample > 1 else seq
    levels = [seq]
    for _ in range(depth - 1):
        levels.append(fn.avg_pool2d(levels[-1], 2))
    flow = torch.zeros((x.shape[0], 2, *levels[-1].shape[-2:]), device=x.device)
    for i, level in enumerate(reversed(levels)):
        if i:
            flow = 2.0 * fn.interpolate(
                flow, size=level.shape[-2:], mode="bilinear", align_corners=False
            )
        flow = _refine(level, flow, cfg)
    return flow * cfg.downsample


def estimate_motion(frames, config: RoverConfig | None = None, units=None) -> np.ndarray:
    """Estimate one motion field from the most recent frames.

    Parameters
    ----------
    frames
        (T, H, W) or (B, T, H, W) pixels, oldest first; NaN marks missing pixels, which
        count as dry (they never spread NaN into the field).
    config
        :class:`RoverConfig`; the defaults when None.
    units
        :class:`~radarcast.data.units.Units` of the pixels (dBZ scale for the intensity
        transform); HKO-7's scale when None.

    Returns
    -------
    (2, H, W) or (B, 2, H, W) float32 (u, v) = (x, y) displacement in pixels per time step.

    References
    ----------
    Woo & Wong 2017, Atmosphere 8(3) 48; Horn & Schunck 1981; Bruhn et al. 2005, IJCV 61.
    """
    torch = _torch()
    cfg = config or RoverConfig()
    x, batched = _as_batch(frames, "frames", 4)
    with torch.no_grad():
        coarse = motion_coarse(x, cfg, *_scale(units))
        h, w = x.shape[-2:]
        pos = _base_grid(h, w, x.device).expand(x.shape[0], -1, -1, -1)
        extent = (coarse.shape[-2] * cfg.downsample, coarse.shape[-1] * cfg.downsample)
        full = _sample(coarse, pos, extent, padding="border")
    out = full.cpu().numpy()
    return out if batched else out[0]


def _scale(units) -> tuple[float, float]:
    if units is None:
        return 70 / 255, -10.0
    return float(units.dbz_gain), float(units.dbz_offset)


# --------------------------------------------------------------------------- extrapolation
def advect(last, flow, n_steps: int, step_scale: int = 1, outside: str = "zero"):
    """Semi-Lagrangian backward advection of ``last`` (B, H, W) torch along ``flow``.

    ``flow`` (B, 2, h, w) covers (h·step_scale, w·step_scale) pixels of ``last``. The
    departure point of every flow-grid cell is traced back one time step at a time
    (velocity interpolated bilinearly at the current departure point); the displacements
    are interpolated bilinearly to every pixel and ``last`` is sampled once per lead, so
    repeated interpolation does not blur the field. Returns (B, n_steps, H, W).
    """
    torch = _torch()
    b, h, w = last.shape
    valid = torch.isfinite(last)
    img = torch.where(valid, last, torch.zeros_like(last)).unsqueeze(1)  # (B, 1, H, W)
    if outside == "nan":
        img = torch.cat([img, valid.float().unsqueeze(1)], dim=1)  # (B, 2, H, W)
    extent = (flow.shape[-2] * step_scale, flow.shape[-1] * step_scale)
    if extent[0] < h or extent[1] < w:
        raise AssertionError(f"flow {tuple(flow.shape)} x{step_scale} does not cover {h}x{w}")
    centres = (_base_grid(*flow.shape[-2:], last.device) + 0.5) * step_scale - 0.5
    pos = centres.expand(b, -1, -1, -1)  # (B, h, w, 2) in input pixels
    disp = []
    for _ in range(n_steps):
        vel = _sample(flow, pos, extent, padding="border")  # (B, 2, h, w)
        pos = pos - vel.permute(0, 2, 3, 1)
        disp.append(pos - centres)
    to_norm = torch.tensor([2.0 / extent[1], 2.0 / extent[0]], device=last.device)
    disp = torch.cat(disp, dim=-1) * to_norm.repeat(n_steps)  # (B, h, w, 2n), grid units
    if step_scale > 1:  # same geometry as sampling at every pixel, but faster
        disp = torch.nn.functional.interpolate(
            disp.permute(0, 3, 1, 2),
            scale_factor=step_scale,
            mode="bilinear",
            align_corners=False,
        ).permute(0, 2, 3, 1)  # (B, H', W', 2n), channels stay innermost in memory
    hp, wp = extent  # the flow grid's extent, ≥ (H, W): pad the frame rather than crop
    img = torch.nn.functional.pad(img, (0, wp - w, 0, hp - h))
    grid = disp.contiguous().view(b, hp, wp, n_steps, 2)
    grid.add_((_base_grid(hp, wp, last.device) + 0.5).mul_(to_norm).sub_(1.0).unsqueeze(3))
    # leads side by side along x: (B, H, W·n, 2) needs no transposed copy of the grid
    out = torch.nn.functional.grid_sample(
        img,
        grid.view(b, hp, wp * n_steps, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    out = out.view(b, img.shape[1], hp, wp, n_steps).permute(0, 1, 4, 2, 3)[..., :h, :w]
    pred = out[:, 0]
    if outside == "nan":
        pred = torch.where(out[:, 1] > 0.999, pred, torch.full_like(pred, float("nan")))
    return pred.contiguous()


def extrapolate(frame, motion, n_steps: int, outside: str = "zero") -> np.ndarray:
    """Move ``frame`` along ``motion`` for ``n_steps`` time steps.

    Parameters
    ----------
    frame
        (H, W) or (B, H, W) pixels (any linear unit); NaN = missing.
    motion
        (2, H, W) or (B, 2, H, W) (u, v) = (x, y) in pixels per time step, as returned by
        :func:`estimate_motion`.
    n_steps
        Lead times to produce.
    outside
        'zero': what enters from outside the domain or from a missing pixel is 0 (dry);
        'nan': it is NaN (unknown).

    Returns
    -------
    (n_steps, H, W) or (B, n_steps, H, W) float32: semi-Lagrangian backward advection with
    bilinear interpolation (trajectories traced step by step, frame sampled once per lead).
    """
    torch = _torch()
    if outside not in OUTSIDE:
        raise RadarcastError(
            f"rover: unknown outside {outside!r}; choose one of: {', '.join(OUTSIDE)}"
        )
    f, batched = _as_batch(frame, "frame", 3)
    m, _ = _as_batch(motion, "motion", 4)
    if m.shape[0] != f.shape[0] or m.shape[1] != 2 or m.shape[-2:] != f.shape[-2:]:
        raise RadarcastError(f"rover: motion {tuple(m.shape)} does not fit frame {tuple(f.shape)}")
    with torch.no_grad():
        out = advect(f, m, int(n_steps), 1, outside).cpu().numpy()
    return out if batched else out[0]


def forecast_torch(x, n_steps: int, cfg: RoverConfig, units=None):
    """Batched ROVER on torch pixels x (B, T, H, W) → (B, n_steps, H, W), same device."""
    torch = _torch()
    with torch.no_grad():
        flow = motion_coarse(x, cfg, *_scale(units))
        return advect(x[:, -1], flow, n_steps, cfg.downsample, cfg.outside)


def forecast(frames, n_steps: int, config: RoverConfig | None = None, units=None) -> np.ndarray:
    """ROVER nowcast: :func:`estimate_motion` then :func:`extrapolate` of the last frame.

    Parameters
    ----------
    frames
        (T, H, W) or (B, T, H, W) pixels, oldest first, T ≥ ``config.frames``; NaN = missing.
    n_steps
        Lead times, one per input time step.
    config, units
        As for :func:`estimate_motion`.

    Returns
    -------
    (n_steps, H, W) or (B, n_steps, H, W) float32 pixels.
    """
    cfg = config or RoverConfig()
    x, batched = _as_batch(frames, "frames", 4)
    out = forecast_torch(x, int(n_steps), cfg, units).cpu().numpy()
    return out if batched else out[0]


def make_forecaster(dataset, n_out: int, options: dict | None = None):
    """The 'rover' :class:`~radarcast.forecasters.Forecaster` for ``dataset``.

    ``options`` holds :class:`RoverConfig` fields and optionally ``device``
    ('auto' | 'cpu' | 'cuda'; 'auto' takes CUDA when present).
    """
    from radarcast.config import from_dict, to_dict
    from radarcast.forecasters import Forecaster

    torch = _torch()
    options = dict(options or {})
    device = _device(options.pop("device", "auto"))
    cfg = from_dict(RoverConfig, options, "rover")
    units = dataset.units if dataset is not None else None
    if dataset is not None:
        _pyramid_depth(dataset.height, dataset.width, cfg)
        pixels = dataset.height * dataset.width * n_out
    else:
        pixels = 1
    budget = 1.5e8 if device.type == "cuda" else 2e7  # ~16 bytes per output pixel
    batch = int(max(1, min(64, budget // max(pixels, 1))))

    def predict(x: np.ndarray, n: int) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        return forecast_torch(t, n, cfg, units).cpu().numpy()

    config = {"method": "rover", **to_dict(cfg), "device": device.type}
    return Forecaster("rover", cfg.frames, n_out, predict, config, batch)


def _device(name: str):
    torch = _torch()
    if name not in ("auto", "cpu", "cuda"):
        raise RadarcastError(f"rover: unknown device {name!r}; choose one of: auto, cpu, cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise RadarcastError("rover: --device cuda asked for, but CUDA is not available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
