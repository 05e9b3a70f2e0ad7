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

import numpy as np

from radarcast.errors import RadarcastError
from radarcast.interface import Forecaster
from radarcast.kernels.advect import advect, extrapolate, forecast_torch
from radarcast.kernels.flow import (
    MIN_LEVEL_PX,
    OUTSIDE,
    SOR,
    TRANSFORMS,
    RoverConfig,
    estimate_motion,
    motion_coarse,
    pyramid_depth,
)
from radarcast.kernels.sampling import as_batch, torch_module

__all__ = [
    "MIN_LEVEL_PX",
    "OUTSIDE",
    "SOR",
    "TRANSFORMS",
    "RoverConfig",
    "advect",
    "estimate_motion",
    "extrapolate",
    "forecast",
    "forecast_torch",
    "make_forecaster",
    "motion_coarse",
]


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
    x, batched = as_batch(frames, "frames", 4)
    out = forecast_torch(x, int(n_steps), cfg, units).cpu().numpy()
    return out if batched else out[0]


def make_forecaster(dataset, n_out: int, options: dict | None = None):
    """The 'rover' :class:`~radarcast.forecasters.Forecaster` for ``dataset``.

    ``options`` holds :class:`RoverConfig` fields and optionally ``device``
    ('auto' | 'cpu' | 'cuda' | 'numpy'; 'auto' takes CUDA when present; 'numpy' runs
    :mod:`radarcast.kernels.rover_np` on the CPU without importing torch, one window at
    a time: the quickest start for a single live nowcast).
    """
    from radarcast.config import from_dict, to_dict

    options = dict(options or {})
    name = options.pop("device", "auto")
    cfg = from_dict(RoverConfig, options, "rover")
    units = dataset.units if dataset is not None else None
    if dataset is not None:
        pyramid_depth(dataset.height, dataset.width, cfg)
        pixels = dataset.height * dataset.width * n_out
    else:
        pixels = 1
    if name == "numpy":
        from radarcast.kernels import rover_np
        from radarcast.kernels.flow import pixel_scale

        def predict_np(x: np.ndarray, n: int) -> np.ndarray:
            return rover_np.forecast(x, n, cfg, *pixel_scale(units))

        config = {"method": "rover", **to_dict(cfg), "device": "numpy"}
        return Forecaster("rover", cfg.frames, n_out, predict_np, config, 1)
    torch = torch_module()
    device = _device(name)
    budget = 1.5e8 if device.type == "cuda" else 2e7  # ~16 bytes per output pixel
    batch = int(max(1, min(64, budget // max(pixels, 1))))

    def predict(x: np.ndarray, n: int) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        return forecast_torch(t, n, cfg, units).cpu().numpy()

    config = {"method": "rover", **to_dict(cfg), "device": device.type}
    return Forecaster("rover", cfg.frames, n_out, predict, config, batch)


def _device(name: str):
    torch = torch_module()
    if name not in ("auto", "cpu", "cuda"):
        raise RadarcastError(
            f"rover: unknown device {name!r}; choose one of: auto, cpu, cuda, numpy"
        )
    if name == "cuda" and not torch.cuda.is_available():
        raise RadarcastError("rover: --device cuda asked for, but CUDA is not available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
