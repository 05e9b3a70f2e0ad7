"""Commands: forecast (any forecaster → forecast file) and rover (ROVER with its options)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from radarcast.cli._app import ThreadsOpt, apply_threads, at_least, command, console, progress
from radarcast.cli._parallel import SchedulerOpt, WorkersOpt, lazy_bar, sharded

DatasetArg = Annotated[Path, typer.Argument(help="A radarcast dataset (.h5).", show_default=False)]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Forecast file to write (.h5).")]
SplitOpt = Annotated[str, typer.Option(help="Windows of this split: train, val, test or all.")]
LimitOpt = Annotated[int | None, typer.Option(help="Forecast only the first N windows.")]
StrideOpt = Annotated[
    int, typer.Option(help="Every K-th window start of each segment (1: every window).")
]
BatchOpt = Annotated[int | None, typer.Option(help="Windows per call (method default).")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda (ROVER and checkpoints).")]
NInOpt = Annotated[int | None, typer.Option(help="Input frames per window (dataset default).")]
NOutOpt = Annotated[int | None, typer.Option(help="Lead times per window (dataset default).")]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace an existing output file.")]
MembersOpt = Annotated[
    int | None,
    typer.Option(
        help="Ensemble members (rover, pysteps:steps); an ensemble file (docs/ensembles.md)."
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option(help="Seed of the ensemble's random draws (default 0).", show_default=False),
]
SpaceCheckOpt = Annotated[
    bool,
    typer.Option(
        help="Refuse an ensemble file that, uncompressed, exceeds the free disk space.",
    ),
]
CentreOpt = Annotated[
    Path | None,
    typer.Option(help="Checkpoint RUN/best.pt whose forecast the rover ensemble perturbs."),
]


def ensemble_options(
    method: str, members: int | None, seed: int | None, centre: Path | None
) -> dict:
    """--members/--seed/--centre as method options; refused where the method has none."""
    from radarcast.cli.data import check_seed
    from radarcast.forecasters import ensemble_options as options

    if seed is not None:
        check_seed(seed)
    return options(method, members, seed, None if centre is None else str(centre))


def _run(dataset_path: Path, spec: str, options: dict, output: Path, **kw) -> None:
    """Open the dataset, resolve the forecaster, write the file, print a summary."""
    from radarcast.data.store import check_output, open_dataset
    from radarcast.forecasters import plan_windows, resolve, write_forecast

    for name in ("n_in", "n_out", "limit", "batch_size"):  # 0 must not mean "default"
        at_least(kw[name], 1, "--" + name.replace("_", "-"))
    check_output(output, kw["overwrite"])
    if sharded(kw["workers"], kw["scheduler"]):
        if kw["space_check"] and (
            options.get("members") or "centre" in options or spec == "pysteps:steps"
        ):
            with open_dataset(dataset_path) as ds:  # the ensemble's size, before any worker
                check_space(ds, resolve(spec, ds, n_in=kw["n_in"], n_out=kw["n_out"],
                                        options=options), output, kw)  # fmt: skip
        _run_sharded(dataset_path, spec, options, output, **kw)
        return
    with open_dataset(dataset_path) as ds:
        fc = resolve(spec, ds, n_in=kw["n_in"], n_out=kw["n_out"], options=options)
        plan_windows(ds, fc, kw["split"], kw["n_in"], kw["limit"], kw["stride"])  # fail early
        if kw["space_check"]:
            check_space(ds, fc, output, kw)
        t0 = time.perf_counter()
        with progress(f"{fc.name} forecast") as bar:
            path = write_forecast(
                ds,
                fc,
                output,
                split=kw["split"],
                n_in=kw["n_in"],
                limit=kw["limit"],
                stride=kw["stride"],
                batch_size=kw["batch_size"],
                overwrite=kw["overwrite"],
                progress=bar,
            )
        seconds = time.perf_counter() - t0
    from radarcast.data.forecast_file import open_forecast

    with open_forecast(path) as f:
        n = len(f.starts)
    console.print(
        f"[bold]{fc.name}[/]: {n} windows × {fc.n_out} leads of split {kw['split']} "
        f"in {seconds:.1f} s ({n / max(seconds, 1e-9):.1f} windows/s) → {path}"
    )


def check_space(ds, fc, output: Path, kw: dict) -> None:
    """An ensemble file that cannot fit on the disk is refused before it is created."""
    from radarcast.baselines.ensemble_forecaster import check_file_fits
    from radarcast.forecasters import plan_windows

    if fc.members:
        starts, _ = plan_windows(ds, fc, kw["split"], kw["n_in"], kw["limit"], kw["stride"])
        check_file_fits(output, len(starts), fc.members, fc.n_out, ds.height, ds.width)


def _run_sharded(dataset_path: Path, spec: str, options: dict, output: Path, **kw) -> None:
    """The same forecast file, its windows spread over worker processes or a Dask cluster."""
    from contextlib import ExitStack

    from radarcast.data.forecast_file import open_forecast
    from radarcast.parallel import open_runner
    from radarcast.parallel.forecast import write_forecast_sharded

    t0 = time.perf_counter()
    with open_runner(kw["workers"], kw["scheduler"]) as runner, ExitStack() as stack:
        path = write_forecast_sharded(
            dataset_path,
            spec,
            output,
            runner,
            options=options,
            split=kw["split"],
            n_in=kw["n_in"],
            n_out=kw["n_out"],
            limit=kw["limit"],
            batch_size=kw["batch_size"],
            overwrite=kw["overwrite"],
            stride=kw["stride"],
            progress=lazy_bar(stack, f"{spec} forecast"),
        )
        where = runner.where
    seconds = time.perf_counter() - t0
    with open_forecast(path) as f:
        n, name, n_out = len(f.starts), f.method, f.n_out
    console.print(
        f"[bold]{name}[/]: {n} windows × {n_out} leads of split {kw['split']} on {where} "
        f"in {seconds:.1f} s ({n / max(seconds, 1e-9):.1f} windows/s) → {path}"
    )


@command()
def forecast(
    dataset: DatasetArg,
    output: OutputOpt,
    method: Annotated[
        str,
        typer.Option(
            help="persistence, rover, pysteps:extrapolation|sprog|steps|anvil, "
            "or a checkpoint RUN/best.pt."
        ),
    ] = "persistence",
    split: SplitOpt = "test",
    limit: LimitOpt = None,
    stride: StrideOpt = 1,
    batch_size: BatchOpt = None,
    device: DeviceOpt = "auto",
    n_in: NInOpt = None,
    n_out: NOutOpt = None,
    overwrite: OverwriteOpt = False,
    threads: ThreadsOpt = None,
    members: MembersOpt = None,
    seed: SeedOpt = None,
    centre: CentreOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    space_check: SpaceCheckOpt = True,
) -> None:
    """Forecast every window of a split with one method and write a forecast file."""
    apply_threads(threads)
    options = {} if method == "persistence" else {"device": device}
    options.update(ensemble_options(method, members, seed, centre))
    _run(
        dataset,
        method,
        options,
        output,
        split=split,
        limit=limit,
        stride=stride,
        batch_size=batch_size,
        n_in=n_in,
        n_out=n_out,
        overwrite=overwrite,
        workers=workers,
        scheduler=scheduler,
        space_check=space_check,
    )


@command()
def rover(
    dataset: DatasetArg,
    output: OutputOpt,
    config: Annotated[
        Path | None, typer.Option(help="TOML with ROVER settings ([rover] or top level).")
    ] = None,
    frames: Annotated[
        int | None, typer.Option(help="Input frames used for the motion (≥ 2).")
    ] = None,
    transform: Annotated[
        str | None, typer.Option(help="arctan (HKO-7) or linear intensity.")
    ] = None,
    dbz_floor: Annotated[float | None, typer.Option(help="dBZ below this count as dry.")] = None,
    smoothness: Annotated[float | None, typer.Option(help="Smoothness weight α.")] = None,
    robust: Annotated[
        float | None, typer.Option(help="Charbonnier scale of the data term (0: quadratic).")
    ] = None,
    levels: Annotated[int | None, typer.Option(help="Most pyramid levels.")] = None,
    downsample: Annotated[
        int | None, typer.Option(help="Flow grid is this many times coarser.")
    ] = None,
    warps: Annotated[int | None, typer.Option(help="Warps per pyramid level.")] = None,
    iterations: Annotated[int | None, typer.Option(help="Solver iterations per warp.")] = None,
    outside: Annotated[
        str | None, typer.Option(help="What flows in from outside: zero or nan.")
    ] = None,
    split: SplitOpt = "test",
    limit: LimitOpt = None,
    stride: StrideOpt = 1,
    batch_size: BatchOpt = None,
    device: DeviceOpt = "auto",
    n_in: NInOpt = None,
    n_out: NOutOpt = None,
    overwrite: OverwriteOpt = False,
    threads: ThreadsOpt = None,
    members: MembersOpt = None,
    seed: SeedOpt = None,
    centre: CentreOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    space_check: SpaceCheckOpt = True,
) -> None:
    """ROVER (variational optical flow + semi-Lagrangian extrapolation) on a split's windows.

    Settings: defaults < --config TOML < flags; the resolved ones go into the file.
    """
    apply_threads(threads)
    from radarcast.baselines.rover import RoverConfig
    from radarcast.config import load_toml, resolve, to_dict

    toml = load_toml(config) if config else {}
    toml = toml.get("rover", toml)
    flags = {
        "frames": frames,
        "transform": transform,
        "dbz_floor": dbz_floor,
        "smoothness": smoothness,
        "robust": robust,
        "levels": levels,
        "downsample": downsample,
        "warps": warps,
        "iterations": iterations,
        "outside": outside,
    }
    cfg = resolve(RoverConfig, toml, flags, "rover", source=config)
    options = {**to_dict(cfg), "device": device, **ensemble_options("rover", members, seed, centre)}
    _run(
        dataset,
        "rover",
        options,
        output,
        split=split,
        limit=limit,
        stride=stride,
        batch_size=batch_size,
        n_in=n_in,
        n_out=n_out,
        overwrite=overwrite,
        workers=workers,
        scheduler=scheduler,
        space_check=space_check,
    )
