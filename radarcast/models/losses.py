"""Training losses on [0, 1] pixels (pixel / 255), masked: invalid pixels count nowhere.

``LOSSES[name](units)`` builds ``loss(pred, target, mask=None) → scalar``; ``pred`` and
``target`` are (B, T, C, H, W) floats in [0, 1] and ``mask`` a bool tensor of the same
shape, True where the truth is valid.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

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


CSI_THRESHOLDS_MMH = (0.5, 2.0, 5.0, 10.0)
"""Rain rates (mm/h) whose soft CSI the ``csi`` loss raises: the study's thresholds."""


class SoftCSILoss:
    """1 − a differentiable critical success index, per lead, averaged over leads and
    thresholds: the evaluation's convention (counts pooled over windows for each lead, the
    mean over leads derived from the per-lead scores).

    A prediction ``p`` counts as an event to the degree σ((p − thr) / τ); the truth is an
    event when it is ≥ thr, as in scoring. Hits, misses and false alarms are these soft
    indicators summed over every valid pixel of the batch for each lead (dimension 1 of
    (B, T, C, H, W)), and CSI = H / (H + M + F). A pixel-wise loss rewards a forecast close
    in value; this one rewards one on the right side of the thresholds, which is what CSI
    scores (Lagerquist & Ebert-Uphoff 2022, Mon. Wea. Rev. 150: CSI and FSS as losses).
    ``pool_leads`` pools the leads too (loss ``csi-pooled``, the first version, kept so that
    the study's GPU run 3 can be reproduced): then the many hits of the early leads outweigh
    the late ones, and removing a wet pixel raises the pooled CSI whenever its chance of
    being a hit is below CSI / (1 + CSI); models trained so removed rain at +40 to +60 min
    (docs/results.md). ``temperature`` τ is in pixel/255 (4/255 ≈ 1.1 dB on the HKO scale).
    """

    def __init__(
        self,
        units,
        thresholds=CSI_THRESHOLDS_MMH,
        temperature: float = 4 / 255,
        pool_leads: bool = False,
    ):
        if not units.has_zr:
            raise RadarcastError("loss 'csi' needs rain rates, but the dataset has no Z-R relation")
        edges = [float(units.to_pixel(t, "mmh")) / 255.0 for t in thresholds]
        self.edges = torch.tensor(edges, dtype=torch.float32)  # (K,) in pixel/255
        self.temperature = float(temperature)
        self.pool_leads = pool_leads

    def __call__(self, pred, target, mask=None) -> torch.Tensor:
        edges = self.edges.to(pred.device).view(-1, *([1] * pred.ndim))  # (K, 1, ...)
        p = torch.sigmoid((pred.float()[None] - edges) / self.temperature)  # (K, B, T, C, H, W)
        t = (target.float()[None] >= edges).float()
        if mask is not None:
            m = mask[None].float()
            p, t = p * m, t * m
        # pool windows and pixels; keep thresholds and leads (or pool the leads too)
        dims = (1, 2, 3, 4, 5) if self.pool_leads else (1, 3, 4, 5)
        hits = (p * t).sum(dims)  # (K, T) or (K,)
        wrong = (p * (1 - t)).sum(dims) + ((1 - p) * t).sum(dims)  # false alarms + misses
        csi = hits / (hits + wrong).clamp_min(1.0)  # (K, T) or (K,)
        return 1.0 - csi.mean()


class Sum:
    """The sum of several losses (``"bmse+csi"``)."""

    def __init__(self, parts: list[LossFn]):
        self.parts = parts

    def __call__(self, pred, target, mask=None) -> torch.Tensor:
        return sum(f(pred, target, mask) for f in self.parts)


class MultiScale:
    """``loss`` averaged over the frames and their block means at coarser ``scales``.

    At scale s, prediction and truth are averaged over s × s blocks of valid truth pixels
    (a block counts when at least half of it is valid) before ``loss`` compares them. A
    forecast that puts a storm 10 pixels off gets no gradient from a pixel-wise loss where
    the two do not overlap, but does from the 8× and 16× means: this is what lets a model
    that moves the last frame (:mod:`radarcast.models.advection`) learn motions larger than
    a pixel or two, as in coarse-to-fine optical flow.
    """

    def __init__(self, loss: LossFn, scales: tuple[int, ...]):
        self.loss, self.scales = loss, tuple(scales)

    def __call__(self, pred, target, mask=None) -> torch.Tensor:
        total = 0.0
        for s in self.scales:
            if s == 1:
                total = total + self.loss(pred, target, mask)
            else:
                total = total + self.loss(*block_means(pred, target, mask, s))
        return total / len(self.scales)


def block_means(pred, target, mask, s: int):
    """(B, T, C, H, W) prediction and truth → their means over s × s blocks of valid truth
    pixels, (B, T, C, ⌈H/s⌉, ⌈W/s⌉), and the blocks' validity (at least half valid)."""
    shape = pred.shape
    flat = [t.float().reshape(-1, 1, *shape[-2:]) for t in (pred, target)]  # (B T C, 1, H, W)
    m = torch.ones_like(flat[1]) if mask is None else mask.float().reshape(flat[1].shape)
    valid = F.avg_pool2d(m, s, s, ceil_mode=True)  # valid fraction of each block
    den = valid.clamp_min(1e-6)
    p, t = (F.avg_pool2d(x * m, s, s, ceil_mode=True) / den for x in flat)
    back = lambda x: x.reshape(*shape[:3], *x.shape[-2:])  # noqa: E731
    return back(p), back(t), back(valid >= 0.5)


LOSSES: dict[str, Callable[..., LossFn]] = {
    "mse": lambda units=None: mse,
    "mae": lambda units=None: mae,
    "bmse": BalancedLoss,
    "csi": SoftCSILoss,
    "csi-pooled": lambda units: SoftCSILoss(units, pool_leads=True),
}
"""Loss builders by name: ``LOSSES[name](units) → loss(pred, target, mask)``; names joined
by ``+`` (``"bmse+csi"``) give the sum of those losses."""


def get_loss(name: str, units=None, scales: tuple[int, ...] = (1,)) -> LossFn:
    """The loss ``name`` for a dataset's ``units``, averaged over ``scales`` (block sizes in
    pixels, see :class:`MultiScale`; (1,) is the plain loss); the error lists the names."""
    parts = []
    for part in name.split("+"):
        try:
            parts.append(LOSSES[part.strip()](units))
        except KeyError:
            raise RadarcastError(
                f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}, or several "
                "joined by '+' (e.g. bmse+csi)"
            ) from None
    if not scales or any(int(s) != s or not 1 <= s <= 1024 for s in scales):
        raise RadarcastError(f"loss_scales must be integers 1..1024, got {tuple(scales)}")
    loss = parts[0] if len(parts) == 1 else Sum(parts)
    return loss if tuple(scales) == (1,) else MultiScale(loss, tuple(int(s) for s in scales))
