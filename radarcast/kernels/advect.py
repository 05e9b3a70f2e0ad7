"""Semi-Lagrangian advection: move frames along a motion field (ROVER's extrapolation).

Trajectories are traced back one time step at a time through the bilinearly interpolated
field and the frame is sampled once per lead, so repeated interpolation does not blur it.
"""

from __future__ import annotations

import numpy as np

from radarcast.errors import RadarcastError
from radarcast.kernels.flow import OUTSIDE, RoverConfig, motion_coarse, pixel_scale
from radarcast.kernels.sampling import as_batch, base_grid, sample, torch_module


def advect(last, flow, n_steps: int, step_scale: int = 1, outside: str = "zero"):
    """Semi-Lagrangian backward advection of ``last`` (B, H, W) torch along ``flow``.

    ``flow`` (B, 2, h, w) covers (h·step_scale, w·step_scale) pixels of ``last``. The
    departure point of every flow-grid cell is traced back one time step at a time
    (velocity interpolated bilinearly at the current departure point); the displacements
    are interpolated bilinearly to every pixel and ``last`` is sampled once per lead, so
    repeated interpolation does not blur the field. Returns (B, n_steps, H, W).
    """
    torch = torch_module()
    b, h, w = last.shape
    valid = torch.isfinite(last)
    img = torch.where(valid, last, torch.zeros_like(last)).unsqueeze(1)  # (B, 1, H, W)
    if outside == "nan":
        img = torch.cat([img, valid.float().unsqueeze(1)], dim=1)  # (B, 2, H, W)
    extent = (flow.shape[-2] * step_scale, flow.shape[-1] * step_scale)
    if extent[0] < h or extent[1] < w:
        raise AssertionError(f"flow {tuple(flow.shape)} x{step_scale} does not cover {h}x{w}")
    centres = (base_grid(*flow.shape[-2:], last.device) + 0.5) * step_scale - 0.5
    pos = centres.expand(b, -1, -1, -1)  # (B, h, w, 2) in input pixels
    disp = []
    for _ in range(n_steps):
        vel = sample(flow, pos, extent, padding="border")  # (B, 2, h, w)
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
    grid.add_((base_grid(hp, wp, last.device) + 0.5).mul_(to_norm).sub_(1.0).unsqueeze(3))
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
    torch = torch_module()
    if outside not in OUTSIDE:
        raise RadarcastError(
            f"rover: unknown outside {outside!r}; choose one of: {', '.join(OUTSIDE)}"
        )
    f, batched = as_batch(frame, "frame", 3)
    m, _ = as_batch(motion, "motion", 4)
    if m.shape[0] != f.shape[0] or m.shape[1] != 2 or m.shape[-2:] != f.shape[-2:]:
        raise RadarcastError(f"rover: motion {tuple(m.shape)} does not fit frame {tuple(f.shape)}")
    with torch.no_grad():
        out = advect(f, m, int(n_steps), 1, outside).cpu().numpy()
    return out if batched else out[0]


def forecast_torch(x, n_steps: int, cfg: RoverConfig, units=None):
    """Batched ROVER on torch pixels x (B, T, H, W) → (B, n_steps, H, W), same device."""
    torch = torch_module()
    with torch.no_grad():
        flow = motion_coarse(x, cfg, *pixel_scale(units))
        return advect(x[:, -1], flow, n_steps, cfg.downsample, cfg.outside)


def sample_back(frame, disp):
    """``frame`` (B, C, H, W) looked up at x − ``disp``(x): each output pixel takes the value
    found ``disp`` pixels upstream (bilinear; zero outside the grid).

    ``disp`` (B, 2, H, W) holds (dx, dy) in pixels: +dx moves echo towards larger column
    indices. Both are computed in float32, also under autocast.
    """
    torch = torch_module()
    b, _, h, w = frame.shape
    ys = torch.arange(h, device=frame.device, dtype=torch.float32)
    xs = torch.arange(w, device=frame.device, dtype=torch.float32)
    d = disp.float()
    # normalised coordinates of the departure points (align_corners=False: pixel centres)
    gx = (2 * (xs[None, None, :] - d[:, 0] + 0.5) / w) - 1  # (B, H, W)
    gy = (2 * (ys[None, :, None] - d[:, 1] + 0.5) / h) - 1  # (B, H, W)
    grid = torch.stack([gx, gy], dim=-1)  # (B, H, W, 2)
    return torch.nn.functional.grid_sample(
        frame.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
