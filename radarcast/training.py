"""Training: ``train(cfg, on_step) → run dir`` with exact resume and DDP under torchrun.

A run folder holds ``config.toml`` (the resolved :class:`TrainConfig`), ``metrics.jsonl``
(one JSON line per logged step and validation), ``last.pt`` (written at every validation
and at the end) and ``best.pt`` (lowest validation loss). Under ``torchrun`` (env RANK and
WORLD_SIZE) the model runs in DistributedDataParallel and rank 0 writes everything;
``batch_size`` is the global batch, split evenly over the processes.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from radarcast.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from radarcast.config import to_dict, write_toml
from radarcast.data.loader import (
    Augment,
    EpochStream,
    WindowDataset,
    WindowSampler,
    make_loader,
    to_device,
)
from radarcast.data.store import open_dataset
from radarcast.errors import RadarcastError
from radarcast.models import build_model, model_config, resolve_preset
from radarcast.models.losses import get_loss

StepFn = Callable[[dict], None]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved as ``config.toml`` and in every checkpoint.

    ``batch_size`` is the global batch (all processes together). ``steps`` counts optimizer
    steps; ``epochs``, when set, replaces it with that many passes over the train windows.
    ``val_every`` steps a validation runs and ``last.pt`` is written; ``patience`` stops
    after that many validations without improvement (0: never). ``val_windows`` caps the
    validation windows used (0: all).
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


SCHEDULES = ("cosine", "constant")
DEFAULT_PRESET = "convlstm-2"


def lr_factor(step: int, cfg: TrainConfig, total: int) -> float:
    """Multiplier of ``cfg.lr`` at ``step``: linear warm-up, then cosine decay or constant."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(total - cfg.warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - cfg.warmup_steps, span) / span))


# --------------------------------------------------------------------------- processes
@dataclass
class Dist:
    """This process's place under torchrun (rank 0 of 1 otherwise) and the collectives."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    def wrap(self, net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def _reduce(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            import torch.distributed as td

            t = t.clone()
            td.all_reduce(t)
        return t

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        dev = torch.device("cuda", self.local_rank) if _nccl() else torch.device("cpu")
        return self._reduce(t.to(dev)).cpu()

    def mean(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss averaged over processes, a 0-d tensor on its device (no host sync)."""
        return self._reduce(loss.float()) / self.world

    def same(self, value):
        """Rank 0's ``value`` on every rank (e.g. a run name made from the clock)."""
        if self.world == 1:
            return value
        import torch.distributed as td

        box = [value]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            td.barrier()

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def _nccl() -> bool:
    import torch.distributed as td

    return td.is_available() and td.is_initialized() and td.get_backend() == "nccl"


def setup_dist(device: str) -> Dist:
    """Join the process group when started by torchrun (NCCL on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as td

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    if not td.is_initialized():
        td.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(rank, world, local)


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
    if cfg.lr <= 0 or not math.isfinite(cfg.lr):
        raise RadarcastError(f"lr must be a positive number, got {cfg.lr}")


def _open_sources(cfg: TrainConfig):
    sources = [open_dataset(p) for p in cfg.datasets]
    units = sources[0].units
    for ds in sources[1:]:
        if ds.units.attrs() != units.attrs():
            raise RadarcastError(f"{ds.path} uses a different pixel scale from {sources[0].path}")
    n_in = cfg.n_in or sources[0].n_in
    n_out = cfg.n_out or sources[0].n_out
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


def _build(cfg: TrainConfig, resume: bool) -> _Run:
    _check_config(cfg)
    dist = setup_dist(cfg.device)
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
        write_toml(_config_dict(run), out / "config.toml")
    run.dist.barrier()


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
    keeps the last good state.
    """
    run = _build(cfg, resume)
    try:
        _loop(run, on_step)
    finally:
        run.dist.close()
    return run.out


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
