"""Commands: animate."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from radarcast.cli._app import (
    ThreadsOpt,
    apply_threads,
    at_least,
    command,
    console,
    err_console,
    progress,
)


def _leads(text: str | None) -> tuple[int, ...] | None:
    from radarcast.errors import RadarcastError

    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise RadarcastError(f"--leads must be comma-separated lead steps, got {text!r}") from None


def _check_numbers(overlay: float | None, units: str, **counts) -> None:
    """Refuse 0 (never "the default") and overlays that could never be drawn."""
    import math

    from radarcast.errors import RadarcastError

    for name, v in counts.items():
        at_least(v, 1, "--" + name.replace("_", "-"))
    if overlay is not None and not math.isfinite(overlay):
        raise RadarcastError(f"--overlay must be a finite threshold, got {overlay}")
    if overlay is not None and units == "pixel" and not 0 <= overlay <= 255:
        raise RadarcastError(f"--overlay {overlay:g} with --units pixel: pixels are 0..255")


@command()
def animate(
    dataset: Annotated[Path, typer.Argument(help="A radarcast dataset (.h5).", show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", show_default=False,
        help="OUT.gif or OUT.mp4 (animation), OUT.png (contact sheet).")],
    window: Annotated[int | None, typer.Option(
        help="Window number K within --split (0 = its first window; not a frame index).")] = None,
    time: Annotated[str | None, typer.Option(
        help="ISO-8601 time of the last input frame (t0), e.g. 2016-06-01T12:00Z; any split.")
    ] = None,
    method: Annotated[list[str] | None, typer.Option(
        "--method", "-m", help="Run a forecaster live: persistence, rover, "
        "pysteps:extrapolation|sprog|steps|anvil or a checkpoint .pt. Repeatable.")] = None,
    forecast: Annotated[list[Path] | None, typer.Option(
        "--forecast", "-f", help="Read predictions from a forecast file of this dataset. "
        "Repeatable.")] = None,
    split: Annotated[str, typer.Option(help="Split that --window counts in: train, val, test, all.")
                     ] = "test",
    units: Annotated[str, typer.Option(help="Colour scale units: dbz, mmh or pixel.")] = "dbz",
    cmap: Annotated[str, typer.Option(help="Colour map: radar (discrete levels) or grey.")
                    ] = "radar",
    fps: Annotated[float, typer.Option(help="Frames per second (.gif/.mp4).")] = 4.0,
    overlay: Annotated[float | None, typer.Option(
        help="Threshold in --units: draw hits, misses and false alarms of each method.")] = None,
    scale: Annotated[int, typer.Option(help="Upscale each pixel to K×K (nearest neighbour).")] = 2,
    leads: Annotated[str | None, typer.Option(
        help="Contact sheet columns as lead steps, e.g. 1,4,8,12 (default: 4 evenly spaced).")
    ] = None,
    n_in: Annotated[int | None, typer.Option(help="Input frames (forecast file's or dataset's).")
                    ] = None,
    n_out: Annotated[int | None, typer.Option(help="Lead times (forecast file's or dataset's).")
                     ] = None,
    stride: Annotated[int, typer.Option(
        help="--window K counts every K-th window start of the split (as forecast does).")] = 1,
    max_width: Annotated[int, typer.Option(
        help="Widest output in px; panels shrink to fit (0: no limit).")] = 1600,
    probability: Annotated[float | None, typer.Option(
        help="Threshold in --units: add probability-of-exceedance panels (0-1) per method; "
        "deterministic methods show 0/1.")] = None,
    members: Annotated[int | None, typer.Option(
        help="Show K members of each ensemble (live -m rover: run a K-member ensemble).")
    ] = None,
    map_grid: Annotated[str, typer.Option(
        "--map", help="Geo-referenced datasets: km (dotted lines every L km of the projection), "
        "lonlat (meridians and parallels through pyproj) or none; with a scale bar.")] = "km",
    reproject: Annotated[bool, typer.Option(
        help="Sample a CF-netCDF --forecast on another grid or projection onto the dataset's "
        "grid (nearest neighbour through pyproj); without it such a file is refused.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Draw one window: Input | Truth | each method, as a GIF, an MP4 or a PNG contact sheet.

    Pick the window with --window K (the K-th window of --split) or --time (its t0).
    """
    apply_threads(threads)
    from radarcast.animation import AnimateConfig
    from radarcast.animation import animate as run

    _check_numbers(overlay, units, n_in=n_in, n_out=n_out, scale=scale)
    cfg = AnimateConfig(units=units, cmap=cmap, fps=fps, overlay=overlay, scale=scale,
                        leads=_leads(leads), n_in=n_in, n_out=n_out, split=split,
                        stride=stride, max_width=max_width or None,
                        probability=probability, members=members, map_grid=map_grid,
                        reproject=reproject)
    # A bar only on a terminal: elsewhere Rich leaves a blank line on stderr.
    bar = progress("animate", transient=True) if err_console.is_terminal else nullcontext()
    with bar as step:
        result = run(dataset, output, methods=method or (), forecasts=forecast or (),
                     window=window, time=time, config=cfg, overwrite=overwrite, progress=step)
    what = "contact sheet" if result.frames == 1 else f"{result.frames} frames"
    console.print(f"wrote {result.path} ({what}, {result.width}×{result.height} px; "
                  f"panels: Input, Truth{''.join(', ' + m for m in result.methods)})")
