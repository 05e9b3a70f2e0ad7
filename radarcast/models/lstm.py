"""Fully connected LSTM encoder–forecaster (the FC-LSTM baseline of Shi et al. 2015).

Each frame is cut into ``patch × patch`` patches and every patch is flattened into a vector
of ``C · patch²`` values; a stack of fully connected LSTM layers reads each patch position's
sequence of vectors, and its forecaster (started from the encoder's final states, layer by
layer, with no input) emits the patch vectors of the future frames through a linear layer
over all forecaster hidden states. Weights are shared between patch positions, so a model
trained on crops runs on any grid; with ``patch`` equal to the grid size it is exactly
Shi et al.'s whole-frame FC-LSTM (2 layers × 2048 units).

A fully connected LSTM over a flattened patch is the same computation as a ConvLSTM with
1×1 kernels over the space-to-depth tensor, so this module reuses that machinery (one fused
matrix product for the four gates) with ``kernel = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

from radarcast.errors import RadarcastError
from radarcast.models.convlstm import ConvLSTMConfig, EncoderForecaster


@dataclass(frozen=True)
class FCLSTMConfig:
    """Architecture of an FC-LSTM encoder–forecaster.

    Parameters
    ----------
    hidden
        Units per layer, bottom first; Shi et al. used (2048, 2048).
    patch
        Side of the square patch flattened into one input vector of ``channels · patch²``.
    channels
        Channels of each frame.
    forget_bias
        Initial bias of the forget gate.
    """

    hidden: tuple[int, ...] = (2048, 2048)
    patch: int = 16
    channels: int = 1
    forget_bias: float = 1.0

    def __post_init__(self) -> None:
        if not self.hidden or min(self.hidden) < 1:
            raise RadarcastError(f"hidden must be ≥ 1 units per layer, got {self.hidden}")
        if self.patch < 1 or self.channels < 1:
            raise RadarcastError(
                f"patch and channels must be ≥ 1, got {self.patch}, {self.channels}"
            )


class FCLSTM(EncoderForecaster):
    """``forward(x: (B, T_in, C, H, W), n_out) → (B, n_out, C, H, W)`` in [0, 1]."""

    config_class = FCLSTMConfig

    def __init__(self, config: FCLSTMConfig):
        inner = ConvLSTMConfig(
            hidden=config.hidden,
            kernel=1,
            patch=config.patch,
            channels=config.channels,
            forget_bias=config.forget_bias,
        )
        super().__init__(inner)
        self.config = config
