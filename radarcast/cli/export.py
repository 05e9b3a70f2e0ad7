"""Command: export (a forecast file or a dataset → CF-netCDF, GeoTIFF, Zarr or GRIB2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radarcast.cli._app import command, console


@command()
def export(
    source: Annotated[
        Path, typer.Argument(help="A forecast file or a dataset (.h5).", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="OUT.nc, OUT.tif, OUT.zarr or OUT.grib2.", show_default=False
        ),
    ],
    units: Annotated[str, typer.Option(help="mm/h, dBZ or pixel.")] = "mm/h",
    time: Annotated[
        str | None,
        typer.Option(help="Only the forecast with this analysis time (ISO 8601, UTC)."),
    ] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(help="Dataset of an older forecast file that lacks its own times."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Write a forecast (or a dataset's frames) as CF-1.8 netCDF, GeoTIFF, Zarr or GRIB2."""
    from radarcast.export import export as run

    path = run(source, output, units=units, time=time, dataset=dataset, overwrite=overwrite)
    console.print(f"wrote {path}")
