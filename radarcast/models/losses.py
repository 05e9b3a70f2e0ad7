"""Training losses on [0, 1] pixels (pixel / 255), masked: invalid pixels count nowhere.

``LOSSES[name](units)`` builds ``loss(pred, target, mask=None) → scalar``; ``pred`` and
``target`` are (B, T, C, H, W) floats in [0, 1] and ``mask`` a bool tensor of the same
shape, True where the truth is valid.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from radarcast.errors import RadarcastError

LossFn = Callable[..., torch.Tensor]

HKO7_THRESHOLDS_MMH = (0.5, 2.0, 5.0, 10.0, 30.0)
"""HKO-7 rain-rate edges (mm/h) of the balanced loss (Shi et al. 2017, arXiv:1706.03458)."""
HKO7_WEIGHTS = (1.0, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Weight of a pixel whose truth lies below the first edge, between edges, above the last."""


def _masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``err`` over valid pixels (0 when none is valid)."""
    if mask is None:
        return err.mean()
    m = mask.to(err.dtype)
    return (err * m).sum() / m.sum().clamp_min(1.0)


def mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over valid pixels, in (pixel/255)²."""
    return _masked_mean((pred.float() - target.float()) ** 2, mask)


def mae(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error over valid pixels, in pixel/255."""
    return _masked_mean((pred.float() - target.float()).abs(), mask)


class BalancedLoss:
    """HKO-7's balanced MSE + MAE: each pixel weighted by the truth's rain rate.

    Weights 1, 1, 2, 5, 10, 30 apply below 0.5 mm/h, in [0.5, 2), [2, 5), [5, 10), [10, 30)
    and from 30 mm/h up. The rain-rate edges are converted once to pixel/255 with the
    dataset's units. loss = mean(w (p − t)²) + mean(w |p − t|) over valid pixels.
    """

    def __init__(self, units, thresholds=HKO7_THRESHOLDS_MMH, weights=HKO7_WEIGHTS):
        if not units.has_zr:
            raise RadarcastError(
                "loss 'bmse' needs rain rates, but the dataset has no Z-R relation"
            )
        edges = [float(units.to_pixel(t, "mmh")) / 255.0 for t in thresholds]
        self.edges = torch.tensor(edges, dtype=torch.float32)  # (K,) in pixel/255
        self.table = torch.tensor(weights, dtype=torch.float32)  # (K + 1,)
        self._on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def weights(self, target: torch.Tensor) -> torch.Tensor:
        """Per-pixel weight, same shape as ``target`` (one bucketize, no loop over pixels)."""
        if target.device not in self._on:
            self._on[target.device] = (self.edges.to(target.device), self.table.to(target.device))
        edges, table = self._on[target.device]
        band = torch.bucketize(target.float().contiguous(), edges, right=True)  # ≥ edge → next band
        return table[band]

    def __call__(self, pred, target, mask=None) -> torch.Tensor:
        w = self.weights(target)
        d = pred.float() - target.float()
        return _masked_mean(w * d * d, mask) + _masked_mean(w * d.abs(), mask)


LOSSES: dict[str, Callable[..., LossFn]] = {
    "mse": lambda units=None: mse,
    "mae": lambda units=None: mae,
    "bmse": BalancedLoss,
}
"""Loss builders by name: ``LOSSES[name](units) → loss(pred, target, mask)``."""


def get_loss(name: str, units=None) -> LossFn:
    """The loss ``name`` for a dataset's ``units``; the error lists the names."""
    try:
        builder = LOSSES[name]
    except KeyError:
        raise RadarcastError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}") from None
    return builder(units)
