"""Trainable forecasters by name: the ``MODELS`` registry, presets and ``build_model``.

A model is an ``nn.Module`` with ``forward(x: (B, T_in, C, H, W), n_out) → (B, n_out, C, H,
W)`` in [0, 1] (pixels / 255), a frozen ``config`` dataclass that rebuilds it, and nothing
else: no loss, data, optimizer or CLI.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from radarcast.config import from_dict
from radarcast.errors import RadarcastError, check_size
from radarcast.models.advection import AdvectionConvLSTM, AdvectionConvLSTMConfig
from radarcast.models.convlstm import ConvLSTM, ConvLSTMConfig
from radarcast.models.lstm import FCLSTM, FCLSTMConfig

MODELS: dict[str, type] = {
    "convlstm": ConvLSTM,
    "fc-lstm": FCLSTM,
    "advection-convlstm": AdvectionConvLSTM,
}
"""Model classes by name; each has ``config_class`` and is built as ``cls(config)``."""

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    # the thesis networks: 1, 2 and 3 ConvLSTM layers with 3×3 kernels
    "convlstm-1": ("convlstm", {"hidden": (128,), "kernel": 3}),
    "convlstm-2": ("convlstm", {"hidden": (64, 64), "kernel": 3}),
    "convlstm-3": ("convlstm", {"hidden": (64, 32, 32), "kernel": 3}),
    # Shi et al. 2015 (arXiv:1506.04214), radar echo experiment: 2 layers × 64, 3×3, 4×4 patches
    "shi2015": ("convlstm", {"hidden": (64, 64), "kernel": 3, "patch": 4}),
    # Shi et al. 2015, best Moving-MNIST network: 3 layers 128-64-64, 5×5 kernels, 4×4 patches
    "shi2015-3layer": ("convlstm", {"hidden": (128, 64, 64), "kernel": 5, "patch": 4}),
    # Shi et al. 2015's FC-LSTM baseline: 2 layers × 2048 units
    "fc-lstm": ("fc-lstm", {"hidden": (2048, 2048), "patch": 16}),
    # convlstm-2's stack with 4×4 patches whose head moves the last frame and adds growth
    # and decay (radarcast.models.advection)
    "advection-convlstm-2": ("advection-convlstm", {"hidden": (64, 64), "kernel": 3, "patch": 4}),
    # the same, correcting ROVER's extrapolation (motion and growth/decay) instead
    "rover-convlstm-2": (
        "advection-convlstm",
        {"hidden": (64, 64), "kernel": 3, "patch": 4, "motion": "rover"},
    ),
    # the real-radar study's best model (docs/results.md): the ROVER correction, 2 × 32
    "rover-convlstm-2-small": (
        "advection-convlstm",
        {"hidden": (32, 32), "kernel": 3, "patch": 4, "motion": "rover"},
    ),
}
"""Named architectures: preset → (model name, config fields)."""


def get_model_class(name: str) -> type:
    """The model class registered as ``name``; the error lists the names."""
    try:
        return MODELS[name]
    except KeyError:
        raise RadarcastError(
            f"unknown model {name!r}; choose one of: {', '.join(MODELS)}"
        ) from None


def resolve_preset(preset: str | None, model: str | None) -> tuple[str, dict[str, Any]]:
    """(model name, preset fields) for ``preset``; a model that contradicts it is refused."""
    if preset is None:
        return model or "convlstm", {}
    try:
        name, fields = PRESETS[preset]
    except KeyError:
        raise RadarcastError(
            f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}"
        ) from None
    if model is not None and model != name:
        raise RadarcastError(
            f"preset {preset!r} is a {name!r} model, but model {model!r} was asked"
        )
    return name, dict(fields)


def model_config(name: str, fields: dict | Any | None = None):
    """Build the config dataclass of model ``name`` from a dict (unknown keys refused)."""
    cls = get_model_class(name).config_class
    if dataclasses.is_dataclass(fields):
        return fields
    return from_dict(cls, dict(fields or {}), section="model_config")


def build_model(name: str, config: dict | Any | None = None):
    """A fresh model ``name`` built from ``config`` (its dataclass or a dict of fields).

    A model too large for this machine's memory is refused before any weight is allocated.
    """
    cls, cfg = get_model_class(name), model_config(name, config)
    check_model_size(cls, cfg, name)
    return cls(cfg)


# float32 weights, their gradients and AdamW's two moment estimates
TRAINING_BYTES_PER_PARAMETER = 16


def check_model_size(cls: type, cfg: Any, name: str) -> int:
    """Count the parameters of ``cls(cfg)`` on PyTorch's meta device (shapes, no memory) and
    refuse a model whose training state would not fit in memory; returns the count."""
    import torch

    with torch.device("meta"):
        probe = cls(cfg)
    n = sum(p.numel() for p in probe.parameters())
    check_size(TRAINING_BYTES_PER_PARAMETER * n, f"model {name} with {n:,} parameters")
    return n


__all__ = [
    "AdvectionConvLSTM",
    "AdvectionConvLSTMConfig",
    "MODELS",
    "PRESETS",
    "ConvLSTM",
    "ConvLSTMConfig",
    "FCLSTM",
    "FCLSTMConfig",
    "build_model",
    "get_model_class",
    "model_config",
    "resolve_preset",
]
