"""Torch plumbing shared by the flow and advection kernels: batching and bilinear sampling.

Torch is imported on first use, so that importing these modules stays cheap for the CLI.
"""

from __future__ import annotations

import numpy as np

from radarcast.errors import RadarcastError


def torch_module():
    import torch

    return torch


def as_batch(frames, what: str, ndim: int):
    """numpy/torch (..., H, W) → float32 torch with a leading batch axis; was it batched?

    ``what`` names the argument in the error message (prefixed ``rover:``)."""
    torch = torch_module()
    t = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.asarray(frames))
    t = t.float()
    if t.ndim == ndim - 1:
        return t.unsqueeze(0), False
    if t.ndim != ndim:
        raise RadarcastError(
            f"rover: {what} must have {ndim - 1} or {ndim} axes, got shape {tuple(t.shape)}"
        )
    return t, True


def sample(img, pos, extent: tuple[int, int], padding: str = "zeros", mode: str = "bilinear"):
    """Bilinear sample of img (B, C, h, w) at full-res pixel positions pos (B, Ho, Wo, 2)
    (x, y); the image covers ``extent`` = (H, W) full-res pixels."""
    torch = torch_module()
    scale = torch.tensor([2.0 / extent[1], 2.0 / extent[0]], dtype=pos.dtype, device=pos.device)
    grid = (pos + 0.5) * scale - 1.0
    return torch.nn.functional.grid_sample(
        img, grid, mode=mode, padding_mode=padding, align_corners=False
    )


def base_grid(h: int, w: int, device):
    torch = torch_module()
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=device),
        torch.arange(w, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1).unsqueeze(0)  # (1, h, w, 2)
