"""The training run's settings (:class:`TrainConfig`), their checks and the learning-rate schedule.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from radarcast.errors import RadarcastError


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved as ``config.toml`` and in every checkpoint.

    ``batch_size`` is the global batch (all processes together). ``steps`` counts optimizer
    steps; ``epochs``, when set, replaces it with that many passes over the train windows.
    ``val_every`` steps a validation runs and ``last.pt`` is written; ``patience`` stops
    after that many validations without improvement (0: never). ``val_windows`` caps the
    validation windows used (0: all). Under torchrun, ``dist_timeout_s`` bounds how long a
    rank waits for the others in a collective (a stuck rank stops the job after it).
    """

    datasets: tuple[str, ...] = ()
    model: str | None = None
    preset: str | None = None
    model_config: dict = field(default_factory=dict)
    n_in: int | None = None
    n_out: int | None = None
    crop: int | None = 64
    augment: bool = True
    reverse_time: bool = False
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    schedule: str = "cosine"
    warmup_steps: int = 100
    grad_clip: float = 1.0
    steps: int = 1000
    epochs: int | None = None
    val_every: int = 100
    val_windows: int = 256
    patience: int = 10
    loss: str = "mse"
    loss_scales: tuple[int, ...] = (1,)
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    compile: bool = False
    workers: int = 2
    out: str | None = None
    log_every: int = 1
    dist_timeout_s: float = 600.0


SCHEDULES = ("cosine", "constant")
DEFAULT_PRESET = "convlstm-2"
# AdamW moves each weight by about lr per step: far beyond any useful value, and 1e308 made
# torch's optimizer fail with its own overflow traceback
MAX_LR = 1e3


def lr_factor(step: int, cfg: TrainConfig, total: int) -> float:
    """Multiplier of ``cfg.lr`` at ``step``: linear warm-up, then cosine decay or constant."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(total - cfg.warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - cfg.warmup_steps, span) / span))


def _check_config(cfg: TrainConfig) -> None:
    if not cfg.datasets:
        raise RadarcastError("no dataset given: pass at least one DATASET.h5")
    if cfg.schedule not in SCHEDULES:
        raise RadarcastError(
            f"unknown schedule {cfg.schedule!r}; choose one of: {', '.join(SCHEDULES)}"
        )
    for name in ("batch_size", "steps", "val_every", "log_every"):
        if getattr(cfg, name) < 1:
            raise RadarcastError(f"{name} must be ≥ 1, got {getattr(cfg, name)}")
    for name in ("n_in", "n_out", "epochs"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            raise RadarcastError(f"{name} must be ≥ 1, got {getattr(cfg, name)}")
    for name in ("warmup_steps", "workers", "val_windows", "patience"):
        if getattr(cfg, name) < 0:
            raise RadarcastError(f"{name} must be ≥ 0, got {getattr(cfg, name)}")
    most = 4 * (os.cpu_count() or 1)
    if cfg.workers > most:  # each is a process: a huge count forks until memory runs out
        raise RadarcastError(f"workers must be at most {most} (4 per CPU), got {cfg.workers}")
    if not 0 <= cfg.seed < 2**63:
        raise RadarcastError(f"seed must be an integer in 0..2^63-1, got {cfg.seed}")
    for name in ("weight_decay", "grad_clip"):
        if not (math.isfinite(getattr(cfg, name)) and getattr(cfg, name) >= 0):
            raise RadarcastError(f"{name} must be a number ≥ 0, got {getattr(cfg, name)}")
    if cfg.crop is not None and cfg.crop < 1:
        raise RadarcastError(f"crop must be ≥ 1 pixel, got {cfg.crop}")
    if not (math.isfinite(cfg.dist_timeout_s) and cfg.dist_timeout_s > 0):
        raise RadarcastError(f"dist_timeout_s must be a positive number, got {cfg.dist_timeout_s}")
    if not 0 < cfg.lr <= MAX_LR:  # NaN fails too
        raise RadarcastError(f"lr must be a positive number ≤ {MAX_LR:g}, got {cfg.lr}")
