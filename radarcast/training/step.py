"""One optimisation step: the device, the model (DDP-wrapped), optimiser, schedule, autocast
and the compiled-or-eager :class:`TrainStep`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from radarcast.data.loader import (
    to_device,
)
from radarcast.errors import RadarcastError
from radarcast.models import build_model
from radarcast.training.config import TrainConfig, lr_factor
from radarcast.training.ddp import Dist


def _pick_device(cfg: TrainConfig, dist: Dist) -> torch.device:
    dev = cfg.device
    if dev not in ("auto", "cpu", "cuda"):
        raise RadarcastError(f"unknown device {dev!r}; choose one of: auto, cpu, cuda")
    if dev == "cuda" and not torch.cuda.is_available():
        raise RadarcastError("device 'cuda' asked for, but CUDA is not available")
    if dev == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", dist.local_rank)


def _make_model(cfg: TrainConfig, name: str, mcfg, device: torch.device) -> torch.nn.Module:
    """Seed, build and place the model (channels_last on CUDA)."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)  # saved in last.pt: two same-seed runs save the same state
    np.random.seed(cfg.seed % 2**32)  # noqa: NPY002 - for third-party code using it
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=device.type == "cuda")
    return prepare_model(build_model(name, mcfg), device, benchmark=not cfg.deterministic)


def prepare_model(
    model: torch.nn.Module, device: torch.device, benchmark: bool = True
) -> torch.nn.Module:
    """Move ``model`` to ``device``; on CUDA switch on its speed settings (``set_fast``:
    channels_last, padded channels, fused gate arithmetic) where the model has them, and
    with ``benchmark`` let cuDNN time its convolution algorithms once per shape (training
    shapes are fixed, so this pays after the first steps)."""
    model = model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = benchmark
        if hasattr(model, "set_fast"):
            model.set_fast(True)
    return model


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW over ``model``'s parameters (PyTorch's multi-tensor update on CUDA: a ConvLSTM
    has a few dozen parameter tensors, so a fused kernel would gain little)."""
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total: int):
    """Warm-up then cosine (or constant) learning-rate schedule over ``total`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg, total))


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op context elsewhere."""
    return torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda")


@dataclass
class TrainStep:
    """One optimizer step, exactly as :func:`train` runs it (benchmarks call this too).

    ``step(batch) → loss`` takes a batch dict (``x`` (B, n_in, 1, h, w), ``y`` and
    ``mask_y`` (B, n_out, 1, h, w)) on any device and returns the loss averaged over
    processes as a 0-d tensor on the device, without waiting for the GPU: the caller
    reads it later, so the host queues the next step while this one runs.
    """

    net: torch.nn.Module  # what is called: maybe compiled, maybe DDP-wrapped
    model: torch.nn.Module  # the bare model (gradient clipping, checkpoints)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loss_fn: Callable
    n_out: int
    grad_clip: float
    device: torch.device
    dist: Dist = field(default_factory=Dist)

    def __call__(self, batch: dict) -> torch.Tensor:
        b = to_device(batch, self.device)
        with autocast(self.device):
            pred = self.net(b["x"], self.n_out)  # (B, n_out, 1, h, w)
            loss = self.loss_fn(pred, b["y"], b["mask_y"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return self.dist.mean(loss.detach())


def build_step(
    model: torch.nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    loss_fn: Callable,
    n_out: int,
    total: int,
    dist: Dist | None = None,
) -> TrainStep:
    """The optimizer, schedule and (DDP/compile) wrapping of :func:`train` around ``model``
    (already placed by :func:`prepare_model`)."""
    dist = dist or Dist()
    optimizer = make_optimizer(model, cfg, device)
    scheduler = make_scheduler(optimizer, cfg, total)
    net = dist.wrap(model, device) if dist.world > 1 else model
    if cfg.compile:
        net = torch.compile(net)  # after DDP, so that DDP's bucketing sees the graph breaks
    # fmt: off
    return TrainStep(net, model, optimizer, scheduler, loss_fn, n_out, cfg.grad_clip, device,
                     dist)
    # fmt: on
