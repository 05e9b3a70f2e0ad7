"""Commands: study — a whole comparison from one study file; report — the HTML page of
scores.json files."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from radarcast.cli._app import ThreadsOpt, apply_threads, command, console, err_console


class StudyDevice(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class Stage(str, Enum):
    prepare = "prepare"
    train = "train"
    forecast = "forecast"
    evaluate = "evaluate"
    report = "report"


@command()
def study(
    study_file: Annotated[Path, typer.Argument(help="The study file (TOML): docs/study.md.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Study folder (default: beside the study "
                                  "file, named after it).", show_default=False)
    ] = None,
    device: Annotated[
        StudyDevice, typer.Option(help="Where training and the models' forecasts run.")
    ] = StudyDevice.cpu,
    resume: Annotated[
        bool, typer.Option(help="Reuse a folder made from another version of the study file: "
                           "what still matches is kept, the rest redone.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Empty the study folder and start over.")
    ] = False,
    stop_after: Annotated[
        Stage | None, typer.Option(help="End after this stage.", show_default=False)
    ] = None,
    threads: ThreadsOpt = None,
) -> None:
    """Prepare → train → forecast → evaluate → report, each unit skipped when done.

    Writes STUDY/report.html (self-contained) and STUDY/report.json; checkpoints, forecast
    files and scores stay in the folder. A rerun continues where a killed one stopped.
    """
    apply_threads(threads)
    from radarcast.errors import RadarcastError
    from radarcast.study import load_study, run_study

    if resume and overwrite:
        raise RadarcastError("give --resume or --overwrite, not both")
    spec = load_study(study_file)
    folder = out if out is not None else study_file.with_suffix("")
    console.print(f"[bold]radarcast study[/bold] {study_file} → {folder} ({device.value})")
    result = run_study(spec, folder, device=device.value, resume=resume, overwrite=overwrite,
                       stop_after=stop_after.value if stop_after else None,
                       emit=lambda line: err_console.print(f"  {line}", highlight=False))
    if result is None:
        console.print(f"stopped after {stop_after.value}: {folder}")
        return
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    console.print(f"report: {result.report}\nnumbers: {result.report_json}\n{timing}")


@command()
def report(
    scores: Annotated[
        list[Path], typer.Argument(help="scores.json files written by radarcast evaluate, or "
                                   "one study's report.json.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The page to write: .html, or .md "
                                  "(Markdown tables).", show_default=False)
    ] = None,
    title: Annotated[str, typer.Option(help="Page title.")] = "radarcast scores",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing page.")] = False,
    update: Annotated[
        Path | None, typer.Option(help="A Markdown document (e.g. docs/results.md) whose "
                                  "generated-tables block and <!--n:KEY-->…<!--/n--> numbers "
                                  "are set again from a study's report.json, in place.",
                                  show_default=False)
    ] = None,
    keys: Annotated[
        bool, typer.Option("--keys", help="Print every KEY that --update knows, with its "
                           "value, and stop.")
    ] = False,
) -> None:
    """A self-contained HTML page of evaluate's scores, or a study's tables and numbers.

    From scores.json files: one HTML page (and a .json beside it). From a study's
    report.json: Markdown tables (-o X.md), a document's marked numbers refreshed (--update),
    or every number a document may cite (--keys); docs/study.md."""
    from radarcast.errors import RadarcastError

    if sum(x is not None and x is not False for x in (output, update, keys or None)) != 1:
        raise RadarcastError("give one of --output, --update or --keys")
    if update is not None or keys:
        from radarcast.study.report import refresh_numbers

        text = refresh_numbers(scores, update, keys)
        if keys:
            console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(f"updated {update}")
        return
    from radarcast.data.store import check_output
    from radarcast.study.report import report_from_scores

    check_output(output, overwrite)
    console.print(f"wrote {report_from_scores(scores, output, title)}")
