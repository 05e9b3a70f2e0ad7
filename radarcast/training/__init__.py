"""Training: ``train(cfg, on_step) → run dir`` with exact resume and DDP under torchrun.

A run folder holds ``config.toml`` (the resolved :class:`TrainConfig`), ``metrics.jsonl``
(one JSON line per logged step and validation), ``last.pt`` (written at every validation
and at the end) and ``best.pt`` (lowest validation loss). Under ``torchrun`` (env RANK and
WORLD_SIZE) the model runs in DistributedDataParallel and rank 0 writes everything;
``batch_size`` is the global batch, split evenly over the processes.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from radarcast.data.loader import (
    EpochStream,
    WindowSampler,
    make_loader,
    to_device,
)
from radarcast.errors import RadarcastError
from radarcast.training.config import (  # noqa: F401  (re-exported: the old import path)
    DEFAULT_PRESET,
    SCHEDULES,
    TrainConfig,
    _check_config,
    lr_factor,
)
from radarcast.training.ddp import (  # noqa: F401  (re-exported: the old import path)
    Dist,
    _nccl,
    setup_dist,
)
from radarcast.training.run import (  # noqa: F401  (re-exported: the old import path)
    StepFn,
    _build,
    _config_dict,
    _log,
    _open_sources,
    _prepare_out,
    _remove_stale_temporaries,
    _restore,
    _Run,
    _save,
    _trim_metrics,
)
from radarcast.training.step import (  # noqa: F401  (re-exported: the old import path)
    TrainStep,
    _make_model,
    _pick_device,
    autocast,
    build_step,
    make_optimizer,
    make_scheduler,
    prepare_model,
)


@torch.no_grad()
def validate(run: _Run) -> float:
    """Mean loss over the (capped) validation windows, pooled over processes."""
    run.net.eval()
    n = len(run.val_set) if run.cfg.val_windows < 1 else min(len(run.val_set), run.cfg.val_windows)
    sampler = WindowSampler(
        n,
        seed=run.cfg.seed,
        shuffle=False,
        rank=run.dist.rank,
        world=run.dist.world,
        drop_last=False,
    )
    loader = make_loader(
        run.val_set, sampler, run.cfg.batch_size // run.dist.world, run.cfg.workers
    )
    total, count = torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    for batch in loader:
        b = to_device(batch, run.device)
        with autocast(run.device):
            pred = run.model(b["x"], run.n_out)
            loss = run.loss_fn(pred, b["y"], b["mask_y"])
        total += float(loss) * len(b["x"])
        count += len(b["x"])
    run.net.train()
    total, count = run.dist.sum(total), run.dist.sum(count)
    return float(total / count)


def _evaluate(run: _Run, on_step: StepFn | None) -> bool:
    """Validate, checkpoint, log; True when early stopping says stop."""
    st, cfg = run.state, run.cfg
    val = validate(run)
    improved = val < st["best_val"]
    if improved:
        st["best_val"], st["bad_evals"] = val, 0
    else:
        st["bad_evals"] += 1
    if improved:
        _save(run, "best.pt")
    _save(run, "last.pt")
    _log(
        run,
        {
            "event": "val",
            "step": st["step"],
            "val_loss": val,
            "best_val": st["best_val"],
            "improved": improved,
        },
        on_step,
    )
    run.dist.barrier()
    return cfg.patience > 0 and st["bad_evals"] >= cfg.patience


def train(cfg: TrainConfig, on_step: StepFn | None = None, resume: bool = False) -> Path:
    """Train the configured model; returns the run folder.

    ``on_step(record)`` receives each ``metrics.jsonl`` record on rank 0: ``{"event":
    "step", "step", "steps", "loss", "lr", "samples_per_s"}``, ``{"event": "val", "step",
    "val_loss", "best_val", "improved"}`` and a final ``{"event": "end", ...}``.
    A non-finite loss stops the run with RadarcastError naming the step; ``last.pt``
    keeps the last good state. Under torchrun, a rank that fails makes the others stop
    within seconds, each with a RadarcastError naming the failed rank (:class:`Dist`).
    """
    _check_config(cfg)
    dist = setup_dist(cfg.device, cfg.dist_timeout_s)
    try:
        run = _build(cfg, resume, dist)
        _loop(run, on_step)
        dist.finish()
    except BaseException as e:
        stop = dist.stop_together(e)
        if stop is e:
            raise
        raise stop from None
    finally:
        dist.close()
    out = run.out
    del run  # with it the DDP model, the last holder of the process group (Dist.finish)
    dist.release()
    return out


def _loop(run: _Run, on_step: StepFn | None) -> None:
    cfg, st = run.cfg, run.state
    per_rank = cfg.batch_size // run.dist.world
    sampler = WindowSampler(
        len(run.train_set),
        seed=cfg.seed,
        shuffle=True,
        global_batch=cfg.batch_size,
        rank=run.dist.rank,
        world=run.dist.world,
    )
    run.net.train()
    stopped = "steps"
    clock = {"tick": time.perf_counter()}
    per_epoch = len(sampler.positions()) // per_rank  # batches per epoch (drop_last)
    if st["batch_in_epoch"] >= per_epoch:  # saved on an epoch's last batch
        st["epoch"], st["batch_in_epoch"] = st["epoch"] + 1, 0
    sampler.set_epoch(st["epoch"], skip=st["batch_in_epoch"] * per_rank)
    if st["step"] < run.total_steps:
        stopped = _steps(run, EpochStream(sampler), per_rank, per_epoch, clock, on_step)
    _log(
        run,
        {
            "event": "end",
            "step": st["step"],
            "best_val": st["best_val"],
            "stopped_by": stopped,
            "out": str(run.out),
            "processes": run.dist.world,
        },
        on_step,
    )


def _steps(run: _Run, stream: EpochStream, per_rank: int, per_epoch: int, clock: dict,
           on_step: StepFn | None) -> str:
    """Optimizer steps until ``total_steps`` or early stopping, from one long-lived loader
    over ``stream``; returns why it stopped."""
    cfg, st = run.cfg, run.state
    loader = make_loader(
        run.train_set, stream, per_rank, cfg.workers, pin_memory=run.device.type == "cuda"
    )
    pending = None  # (step, loss tensor, lr) of the last step, read once the next is queued
    batches = iter(loader)
    try:
        for batch in batches:
            loss = run.step(batch)
            st["step"] += 1
            st["batch_in_epoch"] += 1
            if st["batch_in_epoch"] == per_epoch:
                st["epoch"], st["batch_in_epoch"] = st["epoch"] + 1, 0
            if pending is not None:
                _finish_step(run, *pending, clock, on_step)
            # the step's rate is timed between dispatches: on CUDA a dispatch waits for the
            # previous loss read, so in steady state the interval is one step's time
            pending = (st["step"], loss, run.scheduler.get_last_lr()[0], time.perf_counter())
            done = st["step"] >= run.total_steps
            if st["step"] % cfg.val_every == 0 or done:
                _finish_step(run, *pending, clock, on_step)
                pending = None
                if _evaluate(run, on_step):
                    return "early stopping"
            if done:
                return "steps"
    finally:
        del batches  # stops the workers
    return "steps"


def _finish_step(
    run: _Run,
    step: int,
    loss: torch.Tensor,
    lr: float,
    dispatched: float,
    clock: dict,
    on_step: StepFn | None,
) -> None:
    """Read step ``step``'s loss (the host's one wait per step, made while the next step is
    already queued), stop on a non-finite value, log it."""
    value = float(loss)
    if not math.isfinite(value):
        raise RadarcastError(
            f"loss became {value} at step {step}; stopped, "
            f"{run.out / 'last.pt'} keeps the last good state (try a lower --lr)"
        )
    if step % run.cfg.log_every == 0:
        _log(
            run,
            {
                "event": "step",
                "step": step,
                "steps": run.total_steps,
                "loss": value,
                "lr": lr,
                "samples_per_s": run.cfg.batch_size / max(dispatched - clock["tick"], 1e-9),
            },
            on_step,
        )
    clock["tick"] = dispatched
