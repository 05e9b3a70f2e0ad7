"""Commands: synth, preprocess, info."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radarcast.cli._app import command, console

DatasetArg = Annotated[Path, typer.Argument(help="A radarcast dataset (.h5).", show_default=False)]


@command()
def info(
    dataset: DatasetArg,
    n_in: Annotated[int | None, typer.Option(help="Input frames per window (dataset default).")] = None,
    n_out: Annotated[int | None, typer.Option(help="Output frames per window (dataset default).")] = None,
) -> None:
    """Summarise a dataset: grid, time span, segments, windows per split, units, provenance."""
    from rich.table import Table

    from radarcast.data.info import summarize

    s = summarize(dataset, n_in=n_in, n_out=n_out)
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for key, value in s["rows"]:
        head.add_row(key, value)
    console.print(head)
    splits = Table(title=f"Windows of {s['n_in']} → {s['n_out']} frames", title_justify="left")
    for col in ("split", "frames", "segments", "windows", "rainy px"):
        splits.add_column(col, justify="left" if col == "split" else "right")
    for name, c in s["splits"].items():
        splits.add_row(name, f"{c['frames']:,}", f"{c['segments']:,}", f"{c['windows']:,}", c["rainy"])
    console.print(splits)
