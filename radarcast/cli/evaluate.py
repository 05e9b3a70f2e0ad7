"""Command: evaluate — score methods and forecast files under one set of conventions."""

from __future__ import annotations

from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from radarcast.cli._app import ThreadsOpt, apply_threads, at_least, command, console, parse_floats
from radarcast.cli._parallel import SchedulerOpt, WorkersOpt, lazy_bar, sharded


class UnitChoice(str, Enum):
    mmh = "mmh"
    dbz = "dbz"
    pixel = "pixel"


class Pixels(str, Enum):
    common = "common"
    own = "own"


class BootstrapUnit(str, Enum):
    auto = "auto"
    segment = "segment"
    block = "block"
    window = "window"


class PresetChoice(str, Enum):
    hko7 = "hko7"
    dgmr = "dgmr"
    sevir = "sevir"


@command()
def evaluate(
    dataset: Annotated[Path, typer.Argument(help="A radarcast dataset (.h5).", show_default=False)],
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method", "-m",
            help="persistence, rover, pysteps:NAME (extrapolation, sprog, steps, anvil), or a "
            "checkpoint RUN/best.pt, run live (repeatable).",
        ),
    ] = None,
    forecast: Annotated[
        list[Path] | None,
        typer.Option("--forecast", "-f", help="A file from `radarcast forecast` (repeatable)."),
    ] = None,
    split: Annotated[str, typer.Option(help="train | val | test | all.")] = "test",
    preset: Annotated[
        PresetChoice | None,
        typer.Option(help="Thresholds: hko7 0.5,2,5,10,30 mm/h; dgmr 1,4,8 mm/h; sevir pixels."),
    ] = None,
    thresholds: Annotated[
        str | None, typer.Option(help="Comma-separated thresholds, e.g. 0.5,2,5 (see --units).")
    ] = None,
    units: Annotated[UnitChoice, typer.Option(help="Units of --thresholds.")] = UnitChoice.mmh,
    n_in: Annotated[int | None, typer.Option(help="Input frames (dataset default).")] = None,
    n_out: Annotated[int | None, typer.Option(help="Lead times (dataset default).")] = None,
    limit: Annotated[int | None, typer.Option(help="Score only the first N windows.")] = None,
    stride: Annotated[
        int, typer.Option(help="Every K-th window start of each segment (1: every window).")
    ] = 1,
    out: Annotated[
        Path, typer.Option(help="Folder for scores.json, scores.csv and the plots.")
    ] = Path("scores"),
    bootstrap: Annotated[
        int, typer.Option(help="Resample N times for 95% intervals (0: off).")
    ] = 0,
    bootstrap_unit: Annotated[
        BootstrapUnit,
        typer.Option(
            help="What a resample draws: whole segments, moving blocks of windows, or single "
            "windows; auto: segments when there are ≥ 10, else blocks (docs/metrics.md)."
        ),
    ] = BootstrapUnit.auto,
    members: Annotated[
        int | None,
        typer.Option(help="Ensemble members of the live methods that make ensembles (rover, "
                     "pysteps:steps); scored as ensembles (docs/metrics.md)."),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the bootstrap resampling and of live ensembles' draws.")
    ] = 0,
    fss_scales: Annotated[
        str,
        typer.Option(help="Window sizes of the fractions skill score in pixels, e.g. 1,2,4,8, "
                    "or km with a suffix (1km,4km; needs the dataset's georef)."),
    ] = "1,2,4,8,16,32",
    reproject: Annotated[
        bool,
        typer.Option(help="Sample CF-netCDF --forecast files on another grid or projection onto "
                     "the dataset's grid (nearest neighbour through pyproj; scores.json says "
                     "so); without it such a file is refused."),
    ] = False,
    pixels: Annotated[
        Pixels,
        typer.Option(help="common: every method on the pixels all of them forecast (a pixel "
                     "one leaves unknown is scored for none); own: each on its own pixels."),
    ] = Pixels.common,
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files.")] = False,
    threads: ThreadsOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Score forecasters on the same windows, per lead and threshold from pooled sums.

    Categorical: CSI, HSS, POD, FAR, ETS, bias; errors MSE, MAE, B-MSE; probabilistic
    (ensembles, and single forecasts as one member): CRPS, Brier, reliability, ROC area,
    rank histogram, spread–skill; FSS at --fss-scales. An ensemble's categorical scores are
    of its ensemble mean. Persistence is always scored as the reference (docs/metrics.md).
    """
    apply_threads(threads)
    from radarcast.evaluation import evaluate as run_evaluate
    from radarcast.evaluation import output_paths

    values = parse_floats(thresholds, "--thresholds") if thresholds is not None else None
    _check_numbers(values, units, n_in=n_in, n_out=n_out, limit=limit, bootstrap=bootstrap,
                   seed=seed)
    if values is not None and preset is not None:
        from radarcast.errors import RadarcastError

        raise RadarcastError("give --preset or --thresholds, not both")
    methods = method or ["persistence"]
    options = _ensemble_options(methods, members, seed)
    output_paths(out, overwrite)  # refuse existing outputs before any work
    kw = dict(
        methods=methods,
        options=options,
        forecasts=forecast or [],
        thresholds=values,
        units=units.value if values is not None else None,
        preset=preset.value if preset is not None else None,
        split=split,
        n_in=n_in,
        n_out=n_out,
        limit=limit,
        stride=stride,
        bootstrap=bootstrap,
        bootstrap_unit=bootstrap_unit.value,
        seed=seed,
        fss_scales=[v.strip() for v in fss_scales.split(",") if v.strip()],
        reproject=reproject,
        pixels=pixels.value,
    )
    with ExitStack() as stack:
        on_step = lazy_bar(stack, "scoring windows")
        if sharded(workers, scheduler):
            from radarcast.parallel import open_runner
            from radarcast.parallel.evaluate import evaluate_sharded

            runner = stack.enter_context(open_runner(workers, scheduler))
            scores = evaluate_sharded(dataset, runner, progress=on_step, **kw)
        else:
            scores = run_evaluate(dataset, progress=on_step, **kw)
    paths = scores.write(out, overwrite=overwrite)
    render_scores(scores)
    if scores.coverage:
        console.print(f"[yellow]scored {scores.coverage} only[/]")
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))


def _ensemble_options(methods: list[str], members: int | None, seed: int) -> dict:
    """--members/--seed as options of each live method that makes ensembles; --members with
    none of them is refused (forecast files carry their own members)."""
    from radarcast.cli.data import check_seed
    from radarcast.errors import RadarcastError
    from radarcast.forecasters import ENSEMBLE_OPTIONS, ensemble_options

    if members is None:
        return {}
    check_seed(seed)
    makers = [m for m in methods if m in ENSEMBLE_OPTIONS]
    if not makers:
        names = ", ".join(dict.fromkeys(methods))
        raise RadarcastError(
            f"--members: no live method makes an ensemble (-m {names}); ensembles come from "
            f"{', '.join(ENSEMBLE_OPTIONS)}"
        )
    return {m: ensemble_options(m, members, seed) for m in makers}


def _check_numbers(values, units, **counts) -> None:
    """Refuse 0 (never "the default") and thresholds no pixel can reach."""
    from radarcast.errors import RadarcastError

    for name, v in counts.items():
        at_least(v, 0 if name in ("bootstrap", "seed") else 1, "--" + name.replace("_", "-"))
    if units is UnitChoice.pixel:
        for v in values or ():
            if not 0 <= v <= 255:
                raise RadarcastError(
                    f"--thresholds {v:g} with --units pixel: pixels are 0..255, so no event "
                    "could reach it"
                )


def _fmt(v, spec: str = ".3f") -> str:
    return "—" if v is None or v != v else format(v, spec)


def render_scores(scores) -> None:
    from rich.table import Table

    results = {m.name: m.result() for m in scores.methods}
    ref_note = " (reference, added)" if scores.reference_added else " (reference)"
    console.print(
        f"{len(scores.starts)} windows of split {scores.split!r}, {scores.n_in} → {scores.n_out} "
        f"frames; scores pooled over windows per lead, then averaged over {scores.n_out} leads; "
        "MSE on pixel/255; CSI skill = (CSI − CSI_persistence) / (1 − CSI_persistence)"
    )
    for k, label in enumerate(scores.thresholds.labels):
        table = Table(title=f"≥ {label}", title_justify="left")
        for col in ("method", "CSI", "HSS", "POD", "FAR", "MSE", "CSI skill"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for m in scores.methods:
            r = results[m.name]
            row = [r[f"{s}_mean_over_leads"][k] for s in ("csi", "hss", "pod", "far")]
            name = m.name + (ref_note if m.name == "persistence" else "")
            skill = scores.csi_skill(m.name)[k]
            table.add_row(name, *map(_fmt, row), _fmt(r["mse_mean_over_leads"], ".3g"), _fmt(skill))
        console.print(table)
    ensembles = [m for m in scores.methods if m.prob is not None and m.prob.members > 1]
    for m in ensembles:
        console.print(f"{m.name} (M = {m.prob.members}): its CSI, HSS, POD, FAR and MSE above "
                      "are of its ensemble mean, rounded to whole pixels")
    if ensembles:
        _render_probabilistic(scores)
    if scores.bootstrap:
        _render_bootstrap(scores)


def _render_probabilistic(scores) -> None:
    """CRPS, Brier, ROC area (first threshold), rank flatness, spread–skill, mean over leads."""
    from rich.table import Table

    from radarcast.verification.report import UNIT_LABELS

    probs = [m for m in scores.methods if m.prob is not None]
    unit = UNIT_LABELS.get(probs[0].prob.value_unit, "pixel")
    first = scores.thresholds.labels[0]
    table = Table(title=f"probabilistic, mean over leads (Brier and ROC area ≥ {first}; every "
                  "threshold in scores.csv)", title_justify="left")  # fmt: skip
    cols = ("method", "M", f"CRPS ({unit})", "Brier", "ROC area", "rank flatness",
            "spread–skill")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "method" else "right",
                         no_wrap=col == "method")  # fmt: skip
    for m in probs:
        mean = m.prob.doc()["mean_over_leads"]
        ens = m.prob.members > 1
        table.add_row(m.name, str(m.prob.members), _fmt(mean["crps"], ".4g"),
                      _fmt(mean["brier"][0], ".4f"), _fmt(mean["roc_area"][0]),
                      _fmt(mean["rank_flatness"] if ens else None),
                      _fmt(mean["spread_skill"] if ens else None))  # fmt: skip
    console.print(table)
    console.print("M = 1: a single forecast as one member (CRPS = MAE, Brier of 0/1 "
                  "probabilities); rank flatness 0 flat, 1 all in one bin (docs/metrics.md)")


def _render_bootstrap(scores) -> None:
    b = scores.bootstrap
    if b["scheme"].get("no_interval"):  # too few independent units: no interval to show
        console.print(f"No 95% intervals: {b['scheme']['no_interval']} "
                      "(docs/metrics.md, Bootstrap).")
        return
    console.print(
        f"95% intervals from {b['n']} resamples (seed {b['seed']}) of "
        f"{b['scheme']['description']}, CSI mean over leads:"
    )
    for name, entry in b["methods"].items():
        for k, label in enumerate(scores.thresholds.labels):
            lo, hi = entry["csi"]["low"][k], entry["csi"]["high"][k]
            line = f"  {name} ≥ {label}: CSI [{_fmt(lo)}, {_fmt(hi)}]"
            if "csi_minus_persistence" in entry:
                d = entry["csi_minus_persistence"]
                line += f", minus persistence [{_fmt(d['low'][k])}, {_fmt(d['high'][k])}]"
            console.print(line)
