"""Command: demo — the whole workflow on built-in synthetic data, step by step."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from radarcast.cli._app import ThreadsOpt, apply_threads, command, console, err_console


class DeviceChoice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@command()
def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for every output; refused if not empty (see --overwrite).")
    ] = Path("demo-out"),
    device: Annotated[
        DeviceChoice, typer.Option(help="Where the ConvLSTM and ROVER run: auto, cpu, cuda.")
    ] = DeviceChoice.auto,
    quick: Annotated[
        bool, typer.Option(help="A seconds-long toy run (tiny grid, few training steps).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data and the training.")] = 0,
    overwrite: Annotated[
        bool, typer.Option(help="Replace the demo's outputs in a non-empty --out.")
    ] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Synth → preprocess → train a small ConvLSTM → persistence, ROVER → evaluate → animate.

    Runs in a few minutes on a 2-core CPU (seconds with --quick) and says where every
    output is.
    """
    apply_threads(threads)
    from radarcast.cli.data import check_seed
    from radarcast.demo import DemoConfig, check_device, prepare_out_dir, run_demo

    check_seed(seed)
    config = DemoConfig.quick if quick else DemoConfig
    cfg = config(seed=seed, device=device.value)
    cfg.check()
    check_device(cfg.device)
    prepare_out_dir(out, overwrite)  # refuse before any work; one line, exit 1
    console.print(
        f"[bold]radarcast demo[/bold]{' --quick' if quick else ''}: {cfg.sequences} synthetic "
        f"sequences of {cfg.frames} frames, {cfg.size}×{cfg.size} px; ConvLSTM "
        f"{'×'.join(map(str, cfg.hidden))} channels, {cfg.steps} steps; device {cfg.device}"
    )
    with _Reporter() as report:
        result = run_demo(out, cfg, on_event=report, overwrite=overwrite)
    from radarcast.cli.evaluate import render_scores

    console.print()
    render_scores(result.scores)
    _print_outputs(result)


class _Reporter:
    """Turns the demo's events into one line per step and a live bar on a terminal."""

    def __init__(self) -> None:
        self.bar = None
        self.task = None
        self.index = 0

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        )
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "start":
            self.index += 1
            console.print(f"[bold cyan]{self.index}/6 {event['step']}[/]: {event['what']}")
            self.task = self.bar.add_task(event["step"], total=None)
        elif kind == "progress" and self.task is not None:
            self.bar.update(self.task, completed=event["done"], total=event["total"])
        elif kind == "train" and event["record"].get("event") == "val":
            r = event["record"]
            console.print(
                f"    step {r['step']}: validation loss {r['val_loss']:.4g}"
                f"{' (best)' if r['improved'] else ''}"
            )
        elif kind == "end":
            if self.task is not None:
                self.bar.remove_task(self.task)
                self.task = None
            console.print(f"    done in {event['seconds']:.1f} s: {event['summary']}")


def _print_outputs(result) -> None:
    out = result.out_dir
    console.print(f"[bold]outputs[/bold] in {out} ({result.seconds:.0f} s in all):")
    for step in result.steps:
        for name, path in step.outputs.items():
            where = Path(path).relative_to(out) if Path(path).is_relative_to(out) else path
            # soft_wrap: a path is never broken over two lines
            console.print(f"  {step.name:<11}{name:<14}{where}", soft_wrap=True)
    console.print(
        f"next: open {out / 'animation.gif'}, or score again with: radarcast evaluate "
        f"{out / 'dataset.h5'} -m rover -m {out / 'convlstm' / 'best.pt'}",
        soft_wrap=True,
    )
