"""Advection ConvLSTM: a ConvLSTM encoder–forecaster whose head moves a frame.

The encoder and forecaster are the ConvLSTM stack of :mod:`radarcast.models.convlstm`
(Shi et al. 2015). Where the plain network paints each future frame from its hidden
states, this one's head emits, at every lead ``k``:

- an increment of a displacement field, summed over the leads into ``D_k`` (B, 2, H', W'),
  in pixels;
- a source term ``S_k`` (B, C, H, W): growth (> 0) and decay (< 0) in pixel/255.

and the forecast is a base frame ``b_k`` carried back along ``D_k`` (one bilinear lookup,
as a semi-Lagrangian scheme samples the departure point) plus the source::

    y_k(x) = clamp(b_k(x − D_k(x)) + S_k(x), 0, 1)

Two choices of base (``motion``):

- ``"learned"``: ``b_k`` is the last input frame; the network learns the whole motion.
  It starts as persistence.
- ``"rover"``: ``b_k`` is ROVER's extrapolation to lead ``k`` (variational optical flow of
  the inputs + semi-Lagrangian advection, :mod:`radarcast.kernels.flow` and
  :mod:`radarcast.kernels.advect`, no gradient),
  which is also the forecaster's input at that lead; ``D_k`` corrects its motion and
  ``S_k`` adds what advection cannot: growth and decay. It starts as ROVER.

Either way the forecast keeps the structure of a real frame instead of redrawing it (no
blur from averaging over possible futures). Echo that would enter from outside the grid is
dry, as in ROVER's default. This is the Lagrangian idea of TrajGRU (Shi et al. 2017,
learned warps inside the recurrence) and of L-CNN (Ritvanen et al. 2023: optical-flow
extrapolation, and a network that learns growth and decay in its frame), applied to the
output of the ConvLSTM encoder–forecaster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from radarcast.errors import RadarcastError
from radarcast.kernels.advect import sample_back
from radarcast.models.convlstm import ConvLSTMCell, ConvLSTMConfig, EncoderForecaster, State

MOTIONS = ("learned", "rover")


@dataclass(frozen=True)
class AdvectionConvLSTMConfig(ConvLSTMConfig):
    """Architecture of an advection ConvLSTM: the fields of
    :class:`~radarcast.models.convlstm.ConvLSTMConfig` (4×4 patches by default), and

    Parameters
    ----------
    max_step
        Largest displacement increment per lead, in pixels of the input grid (the head's
        output goes through ``max_step · tanh``): 6 px per 5 min on a 2-km grid is 144 km/h.
    source
        Learn the growth/decay term ``S_k``; False gives a pure advection.
    motion
        ``"learned"`` (move the last frame) or ``"rover"`` (correct ROVER's extrapolation).
    rover
        :class:`~radarcast.kernels.flow.RoverConfig` fields for ``motion="rover"``.
    dbz_gain, dbz_offset
        The pixel scale of the data (dBZ = gain · pixel + offset), which ROVER's intensity
        transform needs; HKO-7's by default.
    """

    patch: int = 4
    max_step: float = 6.0
    source: bool = True
    motion: str = "learned"
    rover: dict = field(default_factory=dict)
    dbz_gain: float = 70.0 / 255.0
    dbz_offset: float = -10.0

    def __post_init__(self) -> None:
        super().__post_init__()  # the stack's checks
        if not 0 < self.max_step <= 1e4:
            raise RadarcastError(f"max_step must be in (0, 1e4] pixels, got {self.max_step}")
        if self.motion not in MOTIONS:
            raise RadarcastError(
                f"unknown motion {self.motion!r}; choose one of: {', '.join(MOTIONS)}"
            )
        if self.motion == "rover":
            if self.channels != 1:
                raise RadarcastError("motion 'rover' needs one channel (reflectivity)")
            self.rover_config()  # ROVER's own checks

    def rover_config(self):
        """The :class:`~radarcast.kernels.flow.RoverConfig` of ``motion="rover"``."""
        from radarcast.config import from_dict
        from radarcast.kernels.flow import RoverConfig

        return from_dict(RoverConfig, dict(self.rover), "model_config.rover")


class AdvectionConvLSTM(EncoderForecaster):
    """``forward(x: (B, T_in, C, H, W), n_out) → (B, n_out, C, H, W)`` in [0, 1]."""

    config_class = AdvectionConvLSTMConfig

    def __init__(self, config: AdvectionConvLSTMConfig):
        super().__init__(config)
        total = sum(config.hidden)
        self.motion = nn.Conv2d(total, 2, kernel_size=1)  # displacement increment per lead
        if not config.source:
            self.head = None  # the stack's frame head is the source head here
        self.rover = None
        if config.motion == "rover":  # the forecaster reads ROVER's frame at each lead
            depth = config.channels * config.patch**2 + self.in_pad
            k, h0 = config.kernel, config.hidden[0]
            self.forecaster[0] = ConvLSTMCell(depth, h0, k, config.forget_bias)
            self.rover = config.rover_config()
        # The heads start small, so that the model starts as its base (persistence or
        # ROVER); small, not zero, so that every parameter gets a gradient from the first
        # step. A learned motion gets a larger motion head than that: it has to come from
        # the hidden states, and tiny weights starve them of its gradient (on synthetic
        # advection, 300 CPU steps learned no motion with weights × 0.01, a third of it
        # with the default size, which however starts with random displacements).
        with torch.no_grad():
            self.motion.bias.zero_()
            self.motion.weight.mul_(0.01 if config.motion == "rover" else 0.1)
            if self.head is not None:
                self.head.weight.mul_(0.01)
                self.head.bias.zero_()

    def _upsample(self, disp: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, 2, H', W') patch-grid displacement → (B, 2, H, W), bilinear, cropped."""
        p = self.arch.patch
        if p > 1:
            disp = F.interpolate(disp.float(), scale_factor=p, mode="bilinear",
                                 align_corners=False)  # fmt: skip
        return disp[..., :height, :width]

    def extrapolate(self, x: torch.Tensor, n_out: int) -> torch.Tensor:
        """ROVER's forecast of x (B, T_in, 1, H, W) in [0, 1] → (B, n_out, 1, H, W) in
        [0, 1], in float32 and without gradient (the base of ``motion="rover"``)."""
        from radarcast.data.units import Units
        from radarcast.kernels.advect import forecast_torch

        units = Units(dbz_gain=self.config.dbz_gain, dbz_offset=self.config.dbz_offset)
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            pixels = x[:, :, 0].float() * 255.0  # (B, T_in, H, W)
            out = forecast_torch(pixels, n_out, self.rover, units)  # (B, n_out, H, W)
        return (out / 255.0).unsqueeze(2)  # (B, n_out, 1, H, W)

    def forward(self, x: torch.Tensor, n_out: int) -> torch.Tensor:
        """x (B, T_in, C, H, W) in [0, 1] → (B, n_out, C, H, W) in [0, 1]."""
        if x.ndim != 5 or x.shape[2] != self.arch.channels:
            raise ValueError(
                f"expected (B, T, {self.arch.channels}, H, W) input, got {tuple(x.shape)}"
            )
        height, width = x.shape[-2:]
        if self.rover is None:
            base = x[:, -1:].float().expand(-1, n_out, -1, -1, -1)  # (B, n_out, C, H, W)
            leads = None
        else:
            base = self.extrapolate(x, n_out)  # (B, n_out, 1, H, W)
            leads = self._to_patches(base)  # (B, n_out, p² + pad, H', W')
        states: list[State] = self.encode(self._to_patches(x))
        disp = None  # (B, 2, H', W') pixels moved since the last input frame
        frames = []
        for k in range(n_out):
            hs = self.forecast_step(states, None if leads is None else leads[:, k])
            step = self.config.max_step * torch.tanh(self.motion(hs).float())  # (B, 2, H', W')
            disp = step if disp is None else disp + step
            y = sample_back(base[:, k], self._upsample(disp, height, width))  # (B, C, H, W)
            if self.config.source:
                src = self.head(hs).float()[:, None]  # (B, 1, C p², H', W')
                y = y + self._from_patches(src, height, width)[:, 0]  # (B, C, H, W)
            frames.append(y.clamp(0.0, 1.0))
        return torch.stack(frames, dim=1)  # (B, n_out, C, H, W)
