"""A run's state and its folder: build from a config, resume, save checkpoints, log metrics."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from radarcast.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from radarcast.config import count_or, to_dict, write_toml
from radarcast.data.loader import (
    Augment,
    WindowDataset,
)
from radarcast.data.store import open_dataset
from radarcast.errors import RadarcastError
from radarcast.models import model_config, resolve_preset
from radarcast.models.losses import get_loss
from radarcast.training.config import DEFAULT_PRESET, TrainConfig, _check_config
from radarcast.training.ddp import Dist, setup_dist
from radarcast.training.step import TrainStep, _make_model, _pick_device, build_step

StepFn = Callable[[dict], None]


@dataclass
class _Run:
    """Live objects of a run (not a config)."""

    cfg: TrainConfig
    dist: Dist
    device: torch.device
    model_name: str
    model: torch.nn.Module
    net: torch.nn.Module  # what is called: maybe compiled, maybe DDP-wrapped
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loss_fn: Callable
    train_set: WindowDataset
    val_set: WindowDataset
    units: object
    n_in: int
    n_out: int
    total_steps: int
    out: Path
    state: dict
    step: TrainStep


def _open_sources(cfg: TrainConfig):
    sources = [open_dataset(p) for p in cfg.datasets]
    units = sources[0].units
    for ds in sources[1:]:
        if ds.units.attrs() != units.attrs():
            raise RadarcastError(f"{ds.path} uses a different pixel scale from {sources[0].path}")
    n_in = count_or(cfg.n_in, sources[0].n_in, "n_in")
    n_out = count_or(cfg.n_out, sources[0].n_out, "n_out")
    aug = Augment(
        crop=cfg.crop, flips=cfg.augment, rotations=cfg.augment, reverse_time=cfg.reverse_time
    )
    raw = _pick_device(cfg, Dist()).type == "cuda"  # uint8 through the queues; floats on GPU
    train_set = WindowDataset(sources, "train", n_in, n_out, aug, raw=raw)
    val_aug = Augment(crop=cfg.crop, random_crop=False)
    val_set = WindowDataset(sources, "val", n_in, n_out, val_aug, raw=raw)
    names = ", ".join(str(ds.path) for ds in sources)
    for split, ds in (("train", train_set), ("val", val_set)):
        if len(ds) == 0:
            raise RadarcastError(
                f"{names}: the {split} split has no window of {n_in}+{n_out} frames "
                f"(its segments are shorter, or the split is empty)"
            )
    return sources, units, n_in, n_out, train_set, val_set


def _build(cfg: TrainConfig, resume: bool, dist: Dist | None = None) -> _Run:
    _check_config(cfg)
    dist = dist or setup_dist(cfg.device, cfg.dist_timeout_s)
    device = _pick_device(cfg, dist)
    if cfg.batch_size % dist.world:
        raise RadarcastError(
            f"batch_size {cfg.batch_size} does not split over {dist.world} processes"
        )
    preset = cfg.preset or (None if cfg.model else DEFAULT_PRESET)
    name, fields = resolve_preset(preset, cfg.model)
    mcfg = model_config(name, {**fields, **cfg.model_config})
    sources, units, n_in, n_out, train_set, val_set = _open_sources(cfg)
    loss_fn = get_loss(cfg.loss, units, cfg.loss_scales)
    model = _make_model(cfg, name, mcfg, device)
    per_epoch = len(train_set) // cfg.batch_size
    if per_epoch < 1:
        raise RadarcastError(
            f"only {len(train_set)} train windows, fewer than one batch of {cfg.batch_size}"
        )
    total = cfg.epochs * per_epoch if cfg.epochs else cfg.steps
    step = build_step(model, cfg, device, loss_fn, n_out, total, dist)
    optimizer, scheduler, net = step.optimizer, step.scheduler, step.net
    out = Path(cfg.out) if cfg.out else dist.same(Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_val": math.inf, "bad_evals": 0}
    # fmt: off
    run = _Run(cfg, dist, device, name, model, net, optimizer, scheduler, loss_fn, train_set,
               val_set, units, n_in, n_out, total, out, state, step)
    # fmt: on
    _prepare_out(run, resume)
    return run


def _prepare_out(run: _Run, resume: bool) -> None:
    out, last = run.out, run.out / "last.pt"
    if resume:
        if not last.is_file():
            raise RadarcastError(f"{out}: nothing to resume (no last.pt)")
        _restore(run, load_checkpoint(last, map_location=run.device))
        if run.dist.rank == 0:
            _trim_metrics(out / "metrics.jsonl", run.state["step"])
            _remove_stale_temporaries(out)
    elif last.exists():  # best.pt alone: a run killed inside its first checkpoint save
        raise RadarcastError(f"{out} already holds a run; pass --resume or choose another --out")
    if run.dist.rank == 0:
        if out.exists() and not out.is_dir():
            raise RadarcastError(f"{out} is a file, expected a run folder")
        out.mkdir(parents=True, exist_ok=True)  # --out runs/NAME makes runs/ as needed
        if not resume:
            _set_dead_log_aside(out)
        write_toml(_config_dict(run), out / "config.toml")
    run.dist.barrier()


def _set_dead_log_aside(out: Path) -> None:
    """A new run in the folder of a run killed before its first last.pt starts its log
    afresh: the dead run's metrics.jsonl becomes metrics.dead.jsonl (replacing an older
    one), so one log never mixes two runs and the dead run's records are not lost."""
    log = out / "metrics.jsonl"
    if log.exists():
        os.replace(log, out / "metrics.dead.jsonl")


def _remove_stale_temporaries(out: Path) -> None:
    """Delete the hidden ``.NAME.PID.tmp`` files that a killed run left in ``out`` (a
    SIGKILL inside a checkpoint save cannot clean up); files of live processes stay."""
    for tmp in out.glob(".*.*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:  # alive, someone else's
            pass


def _trim_metrics(path: Path, step: int) -> None:
    """Drop records after the resumed step (they will be written again), atomically."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:  # a line cut by a kill
            continue
        if rec.get("step", 0) <= step and rec.get("event") != "end":
            keep.append(line)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(k + "\n" for k in keep))
    os.replace(tmp, path)


def _config_dict(run: _Run) -> dict:
    d = to_dict(run.cfg)
    d["model"] = run.model_name
    d["model_config"] = to_dict(run.model.config)
    d["n_in"], d["n_out"] = run.n_in, run.n_out
    d["preset"] = run.cfg.preset
    return d


def _restore(run: _Run, data: dict) -> None:
    if data["model"] != run.model_name or data["model_config"] != to_dict(run.model.config):
        raise RadarcastError(f"{run.out}/last.pt holds a different model from the one configured")
    run.model.load_state_dict(data["state_dict"])
    run.optimizer.load_state_dict(data["optimizer"])
    run.scheduler.load_state_dict(data["scheduler"])
    for k in run.state:
        run.state[k] = data[k]
    set_rng_state(data["rng"])


def _save(run: _Run, name: str) -> None:
    if run.dist.rank != 0:
        return
    save_checkpoint(
        run.out / name,
        model=run.model_name,
        model_config=to_dict(run.model.config),
        state_dict=run.model.state_dict(),
        units=run.units.to_dict(),
        n_in=run.n_in,
        n_out=run.n_out,
        train_config=_config_dict(run),
        optimizer=run.optimizer.state_dict(),
        scheduler=run.scheduler.state_dict(),
        rng=rng_state(),
        **run.state,
    )


def _log(run: _Run, record: dict, on_step: StepFn | None) -> None:
    if run.dist.rank != 0:
        return
    with open(run.out / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")
    if on_step is not None:
        on_step(record)
