"""Command: train."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from radarcast.cli._app import ThreadsOpt, apply_threads, command, console, err_console

Opt = typer.Option


@command()
def train(
    datasets: Annotated[
        list[Path], typer.Argument(help="One or more radarcast datasets (.h5).", show_default=False)
    ],
    model: Annotated[
        str | None, Opt(help="Model name: convlstm, fc-lstm, advection-convlstm.")
    ] = None,
    preset: Annotated[
        str | None,
        Opt(
            help="Named architecture, e.g. convlstm-1/2/3, shi2015, fc-lstm, "
            "advection-convlstm-2, rover-convlstm-2 (default convlstm-2)."
        ),
    ] = None,
    config: Annotated[Path | None, Opt(help="A TOML file of TrainConfig keys; flags win.")] = None,
    out: Annotated[Path | None, Opt(help="Run folder (default runs/DATE-TIME).")] = None,
    steps: Annotated[int | None, Opt(help="Optimizer steps.")] = None,
    epochs: Annotated[
        int | None, Opt(help="Passes over the train windows (replaces --steps).")
    ] = None,
    batch_size: Annotated[int | None, Opt(help="Global batch size.")] = None,
    lr: Annotated[float | None, Opt(help="Peak learning rate (AdamW).")] = None,
    crop: Annotated[int | None, Opt(help="Square random crop in pixels.")] = None,
    loss: Annotated[
        str | None,
        Opt(
            help="mse, mae, bmse (HKO-7 balanced MSE+MAE), csi (soft CSI per lead), "
            "csi-pooled (leads pooled), or a sum such as bmse+csi."
        ),
    ] = None,
    augment: Annotated[
        bool | None, Opt("--augment/--no-augment", help="Random flips and 90° rotations.")
    ] = None,
    reverse_time: Annotated[
        bool | None,
        Opt("--reverse-time/--no-reverse-time", help="Randomly reverse windows in time."),
    ] = None,
    val_every: Annotated[int | None, Opt(help="Validate and write last.pt every N steps.")] = None,
    patience: Annotated[
        int | None, Opt(help="Stop after N validations without gain (0: never).")
    ] = None,
    seed: Annotated[int | None, Opt(help="Random seed.")] = None,
    deterministic: Annotated[
        bool | None, Opt("--deterministic/--no-deterministic", help="Deterministic kernels.")
    ] = None,
    device: Annotated[str | None, Opt(help="auto, cpu or cuda.")] = None,
    compile: Annotated[
        bool | None, Opt("--compile/--no-compile", help="torch.compile the model.")
    ] = None,
    workers: Annotated[int | None, Opt(help="Data loader worker processes.")] = None,
    n_in: Annotated[int | None, Opt(help="Input frames (dataset default).")] = None,
    n_out: Annotated[int | None, Opt(help="Output frames (dataset default).")] = None,
    resume: Annotated[
        bool, Opt("--resume", help="Continue the run in --out from last.pt.")
    ] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Train a ConvLSTM or FC-LSTM encoder–forecaster; writes best.pt, last.pt, metrics.jsonl."""
    apply_threads(threads)
    from radarcast import config as cfgmod
    from radarcast.training import TrainConfig
    from radarcast.training import train as run_training

    toml = cfgmod.load_toml(config) if config else {}
    flags = {
        "datasets": tuple(str(p) for p in datasets),
        "model": model,
        "preset": preset,
        "out": str(out) if out else None,
        "steps": steps,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "crop": crop,
        "loss": loss,
        "augment": augment,
        "reverse_time": reverse_time,
        "val_every": val_every,
        "patience": patience,
        "seed": seed,
        "deterministic": deterministic,
        "device": device,
        "compile": compile,
        "workers": workers,
        "n_in": n_in,
        "n_out": n_out,
    }
    cfg = cfgmod.resolve(TrainConfig, toml, flags, source=config)
    if resume and cfg.out is None:
        from radarcast.errors import RadarcastError

        raise RadarcastError("--resume needs --out RUN_DIR (the run to continue)")
    rank0 = int(os.environ.get("RANK", "0")) == 0
    with _Bar(enabled=rank0) as bar:
        run_dir = run_training(cfg, on_step=bar.update, resume=resume)
    if rank0:
        _summary(run_dir, bar.records)


class _Bar:
    """Rich progress: step, loss, val loss, samples/s."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.records = enabled, []
        self.val = float("nan")

    def __enter__(self) -> _Bar:
        self.bar = None
        return self

    def _start(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=not self.enabled or not err_console.is_terminal,  # no bar lines in logs
        )
        self.bar.__enter__()
        self.task = self.bar.add_task("train", total=None, loss="-", val="-", rate="")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def update(self, rec: dict) -> None:
        """Called by the library with each metrics record (the bar starts on the first)."""
        self.records.append(rec)
        if self.bar is None:
            self._start()
        if rec["event"] == "step":
            self.bar.update(
                self.task,
                completed=rec["step"],
                total=rec["steps"],
                loss=f"{rec['loss']:.4g}",
                rate=f"{rec['samples_per_s']:.1f} samples/s",
            )
        elif rec["event"] == "val":
            self.bar.update(self.task, val=f"{rec['val_loss']:.4g}")


def _summary(run_dir: Path, records: list[dict]) -> None:
    from rich.table import Table

    steps = [r for r in records if r["event"] == "step"]
    vals = [r for r in records if r["event"] == "val"]
    end = next((r for r in records if r["event"] == "end"), {})
    t = Table(title="Training run", title_justify="left", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("run folder", str(run_dir))
    t.add_row("steps", str(end.get("step", "-")))
    t.add_row("stopped by", str(end.get("stopped_by", "-")))
    if steps:
        rates = [r["samples_per_s"] for r in steps[len(steps) // 2 :]]
        t.add_row("last train loss", f"{steps[-1]['loss']:.5g}")
        t.add_row("samples/s (median, 2nd half)", f"{sorted(rates)[len(rates) // 2]:.1f}")
    if vals:
        t.add_row("last val loss", f"{vals[-1]['val_loss']:.5g}")
    t.add_row("best val loss", f"{end.get('best_val', float('nan')):.5g}")
    t.add_row("best checkpoint", str(run_dir / "best.pt"))
    console.print(t)
