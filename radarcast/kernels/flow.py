"""Variational optical flow on radar echoes (ROVER's motion estimate).

A coarse-to-fine Horn–Schunck solver with a robust (Charbonnier) data term and image
warping (Horn & Schunck 1981; Brox et al. 2004; Bruhn et al. 2005), run in torch so that
one code path works batched on CPU and CUDA. :mod:`radarcast.baselines.rover` documents the
method; :mod:`radarcast.kernels.advect` moves the frames along the field found here.

Motion is (u, v) = (x, y) = (column, row) displacement in pixels per time step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from radarcast.config import check_finite
from radarcast.errors import RadarcastError
from radarcast.kernels.sampling import as_batch, base_grid, sample, torch_module

TRANSFORMS = ("arctan", "linear")
OUTSIDE = ("zero", "nan")
SOR = 1.8  # over-relaxation of the red-black Gauss-Seidel sweeps
MAX_DBZ = 100  # |dbz_floor|: radar reflectivities lie within about -30..90 dBZ
MAX_WEIGHT = 1e6  # smoothness, robust: 1e7 times the defaults; 1e308 overflowed the solver
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
        for name in ("dbz_floor", "smoothness", "robust"):  # named as the CLI's flags
            check_finite(getattr(self, name), f"--{name.replace('_', '-')}")
        if self.robust < 0:
            raise RadarcastError(f"--robust must be ≥ 0, got {self.robust:g}")
        # beyond these no radar echo is meant, and float32 overflows (--dbz-floor 1e308)
        if abs(self.dbz_floor) > MAX_DBZ:
            raise RadarcastError(f"--dbz-floor must be in -{MAX_DBZ}..{MAX_DBZ} dBZ, "
                                 f"got {self.dbz_floor:g}")  # fmt: skip
        for name in ("smoothness", "robust"):
            if getattr(self, name) > MAX_WEIGHT:
                raise RadarcastError(
                    f"--{name} must be ≤ {MAX_WEIGHT:g}, got {getattr(self, name):g}"
                )
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


def _intensity(x, cfg: RoverConfig, gain: float, offset: float):
    """Pixels (B, T, H, W), NaN = missing → working intensity ≥ 0, dry and missing = 0."""
    torch = torch_module()
    dbz = torch.clamp(x * gain + offset, min=cfg.dbz_floor)
    if cfg.transform == "arctan":
        out = torch.atan((dbz - 33.0) / 4.0) - math.atan((cfg.dbz_floor - 33.0) / 4.0)
        out = out / math.pi
    else:
        out = (dbz - cfg.dbz_floor) / 50.0
    return torch.nan_to_num(out, nan=0.0)


def pyramid_depth(h: int, w: int, cfg: RoverConfig) -> int:
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


def _neighbour_mean(f):
    """4-neighbour mean of (B, C, h, w) with mirrored borders (the smoothness operator)."""
    torch = torch_module()
    p = torch.nn.functional.pad(f, (1, 1, 1, 1), mode="replicate")
    return 0.25 * (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:])


def _gradients(img):
    """Central differences of (B, K, h, w) in x and y, per pixel."""
    torch = torch_module()
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
    torch = torch_module()
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
    torch = torch_module()
    prev, nxt = seq[:, :-1], seq[:, 1:]  # (B, K, h, w) each
    k = prev.shape[1]
    gx, gy = _gradients(prev)
    stack = torch.cat([prev, gx, gy], dim=1)  # (B, 3K, h, w)
    h, w = seq.shape[-2:]
    base = base_grid(h, w, seq.device)
    lam = cfg.smoothness**2
    red = (
        (torch.arange(h, device=seq.device)[:, None] + torch.arange(w, device=seq.device)) % 2
    ) == 0
    black = ~red
    for _ in range(cfg.warps):
        # bicubic: bilinear warping is biased at peaks, where the gradient vanishes
        warped = sample(stack, base - flow.permute(0, 2, 3, 1), (h, w), mode="bicubic")
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
    torch = torch_module()
    fn = torch.nn.functional
    n_frames, (hh, ww) = x.shape[1], x.shape[-2:]
    if n_frames < cfg.frames:
        raise RadarcastError(f"rover: needs {cfg.frames} input frames, got {n_frames}")
    depth = pyramid_depth(hh, ww, cfg)
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
    torch = torch_module()
    cfg = config or RoverConfig()
    x, batched = as_batch(frames, "frames", 4)
    with torch.no_grad():
        coarse = motion_coarse(x, cfg, *pixel_scale(units))
        h, w = x.shape[-2:]
        pos = base_grid(h, w, x.device).expand(x.shape[0], -1, -1, -1)
        extent = (coarse.shape[-2] * cfg.downsample, coarse.shape[-1] * cfg.downsample)
        full = sample(coarse, pos, extent, padding="border")
    out = full.cpu().numpy()
    return out if batched else out[0]


def pixel_scale(units) -> tuple[float, float]:
    """(dBZ gain, dBZ offset) of ``units``; HKO-7's scale when None."""
    if units is None:
        return 70 / 255, -10.0
    return float(units.dbz_gain), float(units.dbz_offset)
