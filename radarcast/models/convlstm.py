"""ConvLSTM encoder–forecaster (Shi et al. 2015, arXiv:1506.04214).

The cell computes its four gates with ONE convolution over ``concat[x, h]`` and then does
the gate arithmetic, so a GPU runs one large convolution per layer and step (and
``torch.compile`` can fuse the element-wise tail). Peephole terms of the paper's eq. (3)
are left out, as in most later implementations.

The network: a stack of encoder cells reads the input frames; forecaster layer ``l``
starts from encoder layer ``l``'s final ``(h, c)``; the forecaster is unrolled ``n_out``
steps with no input at its first layer (no ground truth is ever fed back); a 1×1
convolution over the concatenated forecaster hidden states gives each output frame.
Frames may be cut into ``patch × patch`` patches (space-to-depth) first, as Shi et al.
did with 4×4 patches on 100×100 maps, so that large grids train.

The gate arithmetic and its GPU kernels are :mod:`radarcast.models.gates` (its
``FUSED_KERNEL`` switch lives there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from radarcast.errors import RadarcastError
from radarcast.models.gates import (  # noqa: F401  (re-exported: the old import path)
    _BWD_TILES,
    _TILE,
    FusedGates,
    State,
    _blocks,
    _compiled,
    _layout,
    _triton_fits,
    fused_gate_update,
    gate_update,
    gate_update_nhwc,
)


@dataclass(frozen=True)
class ConvLSTMConfig:
    """Architecture of a ConvLSTM encoder–forecaster.

    Parameters
    ----------
    hidden
        Hidden channels per layer, bottom first, e.g. (64, 64).
    kernel
        Square kernel size of every gate convolution (odd).
    patch
        Space-to-depth patch size; grids are zero-padded to a multiple of it.
    channels
        Channels of each input/output frame (1 for radar reflectivity).
    pad_channels
        Zero-pad the first encoder layer's input so that (input + hidden) channels are a
        multiple of this (16 suits tensor cores); 0 leaves them as they are.
    forget_bias
        Initial bias of the forget gate (1 keeps memory early in training).
    """

    hidden: tuple[int, ...] = (64, 64)
    kernel: int = 3
    patch: int = 1
    channels: int = 1
    pad_channels: int = 0
    forget_bias: float = 1.0

    def __post_init__(self) -> None:
        if not self.hidden or min(self.hidden) < 1:
            raise RadarcastError(f"hidden must be ≥ 1 channels per layer, got {self.hidden}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise RadarcastError(f"kernel must be an odd size ≥ 1, got {self.kernel}")
        if self.patch < 1 or self.channels < 1 or self.pad_channels < 0:
            raise RadarcastError(
                f"patch and channels must be ≥ 1 and pad_channels ≥ 0, got "
                f"{self.patch}, {self.channels}, {self.pad_channels}"
            )


def _cat_channels(parts: list[torch.Tensor], layout: torch.memory_format) -> torch.Tensor:
    """Concatenate (B, C_k, H, W) tensors along channels, the result laid out as ``layout``.

    ``torch.cat`` returns NCHW unless every input is unambiguously channels_last (a
    1-channel input never is), which would cost a second copy per step; channels_last
    is NHWC in memory, so concatenating the NHWC views along their last axis writes it
    directly.
    """
    if len(parts) == 1:
        return parts[0].contiguous(memory_format=layout)
    if layout != torch.channels_last:
        return torch.cat(parts, dim=1)
    nhwc = torch.cat([t.permute(0, 2, 3, 1) for t in parts], dim=3)  # (B, H, W, ΣC)
    return nhwc.permute(0, 3, 1, 2)  # (B, ΣC, H, W), channels_last strides


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer: gates = conv(concat[x, h]); c' = f·c + i·g; h' = o·tanh(c').

    ``in_channels`` may be 0 (a forecaster's first layer): the convolution then sees h only.
    Two run-time speed settings (not part of the architecture, see
    :meth:`EncoderForecaster.set_fast`): ``pad_to`` zero-pads concat[x, h] and the weight to
    a multiple of that many channels (same result; tensor cores want multiples of 8/16) and
    ``fused`` runs the gate arithmetic as one compiled kernel on CUDA.
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int, forget_bias: float = 1.0):
        super().__init__()
        self.in_channels, self.hidden = in_channels, hidden
        self.conv = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)
        self.pad_to, self.fused = 0, False
        with torch.no_grad():
            self.conv.bias.zero_()
            self.conv.bias[hidden : 2 * hidden].fill_(forget_bias)

    def forward(self, x: torch.Tensor | None, state: State) -> State:
        """x (B, C_in, H, W) or None; state (h, c) each (B, C_h, H, W) → new (h, c)."""
        h, c = state
        parts = [h] if x is None else [x.to(h.dtype), h]
        weight = self.conv.weight  # (4 C_h, C_in + C_h, k, k)
        extra = (-weight.shape[1]) % self.pad_to if self.pad_to else 0
        if extra:
            b, _, height, width = h.shape
            parts.append(h.new_zeros(b, extra, height, width))
            weight = F.pad(weight, (0, 0, 0, 0, 0, extra))  # (4 C_h, C_in + C_h + extra, k, k)
        z = _cat_channels(parts, _layout(h))  # (B, C_in + C_h [+ extra], H, W)
        gates = F.conv2d(z, weight, None, padding=self.conv.padding)  # (B, 4 C_h, H, W)
        return (fused_gate_update if self.fused else gate_update)(gates, c, self.conv.bias)


class EncoderForecaster(nn.Module):
    """Stacked recurrent encoder and forecaster with state hand-over per layer.

    ``forward(x: (B, T_in, C, H, W), n_out) → (B, n_out, C, H, W)`` in [0, 1].
    """

    def __init__(self, config: ConvLSTMConfig):
        super().__init__()
        self.arch = config  # the ConvLSTM view of the architecture used by the code below
        self.config = config  # the public config that rebuilds the model (subclasses differ)
        k, p = config.kernel, config.patch
        depth = config.channels * p * p  # channels after space-to-depth
        first = depth + config.hidden[0]
        self.in_pad = (-first) % config.pad_channels if config.pad_channels else 0
        ins = [depth + self.in_pad, *config.hidden[:-1]]
        fb = config.forget_bias
        self.encoder = nn.ModuleList(
            ConvLSTMCell(i, h, k, fb) for i, h in zip(ins, config.hidden, strict=True)
        )
        self.forecaster = nn.ModuleList(
            ConvLSTMCell(i, h, k, fb)
            for i, h in zip([0, *config.hidden[:-1]], config.hidden, strict=True)
        )
        self.head = nn.Conv2d(sum(config.hidden), depth, kernel_size=1)
        self.memory_format = torch.contiguous_format  # training sets channels_last on CUDA

    def set_fast(self, enabled: bool = True, pad_to: int = 16) -> EncoderForecaster:
        """Run-time speed settings for a CUDA device; the architecture and weights stay as
        they are (so checkpoints are unaffected) and the results are the same up to rounding.

        Lays parameters and activations out channels_last, zero-pads every gate
        convolution's input channels to a multiple of ``pad_to`` (a 1-channel radar input
        gives 65 channels with 64 hidden: no tensor-core tile fits) and fuses the gate
        arithmetic into one compiled kernel (CUDA tensors only; CPU keeps the eager code).
        ``enabled=False`` restores the plain settings.
        """
        layout = torch.channels_last if enabled else torch.contiguous_format
        self.to(memory_format=layout)
        self.memory_format = layout
        for cell in [*self.encoder, *self.forecaster]:
            cell.pad_to, cell.fused = (pad_to if enabled else 0), enabled
        return self

    # -- space-to-depth -------------------------------------------------------------------
    def _to_patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) → (B, T, C p² + pad, H', W'), zero-padding H, W to multiples of p."""
        b, t, c, height, width = x.shape
        p = self.arch.patch
        z = x.reshape(b * t, c, height, width)  # (B T, C, H, W)
        ph, pw = (-height) % p, (-width) % p
        if ph or pw:
            z = F.pad(z, (0, pw, 0, ph))  # (B T, C, H + ph, W + pw)
        z = F.pixel_unshuffle(z, p) if p > 1 else z  # (B T, C p², H', W')
        if self.in_pad:
            z = F.pad(z, (0, 0, 0, 0, 0, self.in_pad))  # (B T, C p² + pad, H', W')
        z = z.contiguous(memory_format=self.memory_format)
        return z.reshape(b, t, *z.shape[1:])  # (B, T, C p² + pad, H', W')

    def _from_patches(self, y: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, T, C p², H', W') → (B, T, C, H, W), cropping the padding."""
        b, t = y.shape[:2]
        p = self.arch.patch
        z = y.reshape(b * t, *y.shape[2:])  # (B T, C p², H', W')
        z = F.pixel_shuffle(z, p) if p > 1 else z  # (B T, C, H + ph, W + pw)
        z = z[..., :height, :width]  # (B T, C, H, W)
        return z.reshape(b, t, self.arch.channels, height, width)

    # -- recurrence -----------------------------------------------------------------------
    def _zeros(self, like: torch.Tensor, channels: int) -> State:
        """Zero (h, c): h in the autocast type when autocast is on (bf16 on CUDA), c in
        ``like``'s type, so the cell state keeps full precision."""
        b, _, hp, wp = like.shape
        c = like.new_zeros(b, channels, hp, wp).contiguous(memory_format=self.memory_format)
        kind = like.device.type
        if torch.is_autocast_enabled(kind) and like.is_floating_point():
            return c.to(torch.get_autocast_dtype(kind)), c
        return c.clone(), c

    def encode(self, z: torch.Tensor) -> list[State]:
        """z (B, T_in, C', H', W') patches → each encoder layer's final (h, c)."""
        states = [self._zeros(z[:, 0], n) for n in self.arch.hidden]
        for t in range(z.shape[1]):
            inp = z[:, t]  # (B, C', H', W')
            for layer, cell in enumerate(self.encoder):
                states[layer] = cell(inp, states[layer])
                inp = states[layer][0]  # (B, C_h, H', W')
        return states

    def forecast(self, states: list[State], n_out: int) -> torch.Tensor:
        """Unroll the forecaster ``n_out`` steps from ``states`` → (B, n_out, C', H', W')."""
        states = list(states)
        frames = []
        for _ in range(n_out):
            hs = self.forecast_step(states)  # (B, ΣC_h, H', W')
            frames.append(self.head(hs))  # (B, C p², H', W')
        return torch.stack(frames, dim=1)  # (B, n_out, C p², H', W')

    def forecast_step(self, states: list[State], inp: torch.Tensor | None = None) -> torch.Tensor:
        """Advance every forecaster layer one step, in place in ``states``; ``inp`` (B, C',
        H', W') feeds the first layer (None: no input, Shi et al.'s forecaster). Returns all
        layers' hidden states concatenated, (B, ΣC_h, H', W'), what a head reads."""
        for layer, cell in enumerate(self.forecaster):
            states[layer] = cell(inp, states[layer])
            inp = states[layer][0]
        return _cat_channels([s[0] for s in states], self.memory_format)

    def forward(self, x: torch.Tensor, n_out: int) -> torch.Tensor:
        """x (B, T_in, C, H, W) in [0, 1] → (B, n_out, C, H, W) in [0, 1]."""
        if x.ndim != 5 or x.shape[2] != self.arch.channels:
            raise ValueError(
                f"expected (B, T, {self.arch.channels}, H, W) input, got {tuple(x.shape)}"
            )
        height, width = x.shape[-2:]
        states = self.encode(self._to_patches(x))
        logits = self.forecast(states, n_out)  # (B, n_out, C p², H', W')
        return torch.sigmoid(self._from_patches(logits, height, width).float())


class ConvLSTM(EncoderForecaster):
    """The ConvLSTM encoder–forecaster of Shi et al. (2015)."""

    config_class = ConvLSTMConfig
