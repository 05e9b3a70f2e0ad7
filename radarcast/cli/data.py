"""Commands: synth, preprocess, info."""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from radarcast.cli._app import at_least, command, console, err_console, progress
from radarcast.cli._parallel import SchedulerOpt, sharded

DatasetArg = Annotated[Path, typer.Argument(help="A radarcast dataset (.h5).", show_default=False)]


MAX_DBZ_SPAN = 1000.0  # dBZ: a pixel scale beyond this is a typo (1e308 was taken)


def finite(value: float | None, what: str, low: float = -math.inf, high: float = math.inf) -> None:
    """Refuse NaN, ±inf and values outside [low, high] by the option's name (None: not
    given, fine): such a value would otherwise be accepted and do nothing, or crash later."""
    from radarcast.config import check_finite
    from radarcast.errors import RadarcastError

    if value is None:
        return
    check_finite(value, what)
    if not low <= value <= high:
        span = f"in {low:g}..{high:g}" if math.isfinite(low) and math.isfinite(high) else (
            f"≥ {low:g}" if math.isfinite(low) else f"≤ {high:g}")
        raise RadarcastError(f"{what} must be {span}, got {value:g}")


def check_seed(seed: int) -> None:
    """A seed is a whole number ≥ 0 (numpy refuses negatives with its own words)."""
    from radarcast.errors import RadarcastError

    if not 0 <= seed < 2**63:
        raise RadarcastError(f"--seed must be a whole number in 0..2^63-1, got {seed}")


@command()
def info(
    dataset: DatasetArg,
    n_in: Annotated[
        int | None, typer.Option(help="Input frames per window (dataset default).")
    ] = None,
    n_out: Annotated[
        int | None, typer.Option(help="Output frames per window (dataset default).")
    ] = None,
) -> None:
    """Summarise a dataset: grid, time span, segments, windows per split, units, provenance."""
    from rich.table import Table

    from radarcast.data.info import summarize

    at_least(n_in, 1, "--n-in")  # 0 must not mean "the dataset's default"
    at_least(n_out, 1, "--n-out")
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
        splits.add_row(
            name, f"{c['frames']:,}", f"{c['segments']:,}", f"{c['windows']:,}", c["rainy"]
        )
    console.print(splits)


@contextmanager
def _bar_with_safe_interrupt(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress callback that also turns Ctrl-C into KeyboardInterrupt at the next frame.

    Python's default handler can raise KeyboardInterrupt inside a garbage-collection callback,
    where it is swallowed ("Exception ignored") and the run goes on; so the first Ctrl-C only
    sets a flag that the callback checks between frames, and a second one interrupts at once.
    """
    hits = []

    def on_sigint(signum, frame) -> None:
        hits.append(signum)
        if len(hits) > 1:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        with progress(description, transient=True) as bar:

            def update(done: int, total: int) -> None:
                bar(done, total)
                if hits:
                    raise KeyboardInterrupt

            yield update
    finally:
        signal.signal(signal.SIGINT, old)


def _parse_shape(text: str | None, what: str) -> tuple[int, int] | None:
    """'HxW' or 'N' → (H, W)."""
    from radarcast.errors import RadarcastError

    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise RadarcastError(f"{what} must be HxW or N, got {text!r}") from None
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) < 1:
        raise RadarcastError(f"{what} must be HxW or N with positive sizes, got {text!r}")
    return dims[0], dims[1]


def _parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    """'y0:y1,x0:x1' → (y0, y1, x0, x1)."""
    from radarcast.errors import RadarcastError

    if text is None:
        return None
    try:
        rows, cols = text.split(",")
        (y0, y1), (x0, x1) = (tuple(int(v) for v in part.split(":")) for part in (rows, cols))
    except ValueError:
        raise RadarcastError(
            f"--crop must be y0:y1,x0:x1 (rows, then columns), got {text!r}"
        ) from None
    return y0, y1, x0, x1


def _parse_nodata(text: str | None) -> tuple[int, ...] | None:
    """'0,255' → (0, 255): raw byte values, so whole numbers 0..255 (0.5 is refused, not
    silently read as 0)."""
    from radarcast.cli._app import parse_floats
    from radarcast.errors import RadarcastError

    if text is None:
        return None
    values = parse_floats(text, "--nodata")
    for v in values:
        if not (0 <= v <= 255 and v == int(v)):
            raise RadarcastError(f"--nodata values must be whole numbers 0..255, got {v:g}")
    return tuple(int(v) for v in values)


def _parse_bounds(text: str | None) -> tuple[float, float, float, float] | None:
    """'x0,y0,x1,y1' → four floats."""
    from radarcast.cli._app import parse_floats
    from radarcast.errors import RadarcastError

    if text is None:
        return None
    values = parse_floats(text, "--bounds")
    if len(values) != 4:
        raise RadarcastError(f"--bounds must be x0,y0,x1,y1 (4 numbers), got {text!r}")
    return tuple(values)


@command()
def synth(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder to write the frames into.", show_default=False)
    ],
    sequences: Annotated[int, typer.Option("--sequences", "-n", help="Independent sequences.")] = 4,
    frames: Annotated[int, typer.Option(help="Frames per sequence.")] = 40,
    size: Annotated[str, typer.Option(help="Grid size HxW (or N for NxN).")] = "128x128",
    timestep: Annotated[int, typer.Option(help="Time step in seconds.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 0,
    growth: Annotated[
        float, typer.Option(help="Growth/decay strength: 0 pure advection, 1 normal, 4 strong.")
    ] = 1.0,
    speed: Annotated[float, typer.Option(help="Largest translation speed, pixels per step.")] = 2.0,
    rotation: Annotated[
        float, typer.Option(help="Largest rotation of the motion field, rad per step.")
    ] = 0.01,
    cells: Annotated[float, typer.Option(help="Mean number of storm cells over the grid.")] = 8.0,
    start: Annotated[str, typer.Option(help="UTC time of the first frame.")] = "2024-01-01T00:00Z",
    fmt: Annotated[
        str, typer.Option("--format", help="png (one file per frame) or npy (one (N,T,H,W) stack).")
    ] = "png",
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty OUT_DIR.")] = False,
) -> None:
    """Write synthetic radar sequences (HKO pixels) with known motion, growth and decay."""
    from radarcast.data.synthetic import TIME_PATTERN, SynthConfig, write_synth

    h, w = _parse_shape(size, "--size")
    check_seed(seed)
    for name, v in (("--growth", growth), ("--speed", speed), ("--rotation", rotation),
                    ("--cells", cells)):
        finite(v, name)
    config = SynthConfig(
        sequences=sequences,
        frames=frames,
        height=h,
        width=w,
        timestep_s=timestep,
        seed=seed,
        growth=growth,
        speed=speed,
        rotation=rotation,
        cells=cells,
        start=start,
    )
    with _bar_with_safe_interrupt("synth") as bar:
        out = write_synth(out_dir, config, fmt=fmt, overwrite=overwrite, progress=bar)
    console.print(
        f"wrote {sequences * frames:,} frames ({sequences} sequences of {frames}, {h}×{w}) to {out}"
    )
    if fmt == "png":
        console.print(
            f"next: radarcast preprocess {out} --time-pattern '{TIME_PATTERN}' "
            f"--timestep {timestep} -o DATASET.h5"
        )


@command()
def preprocess(
    inputs: Annotated[
        list[str], typer.Argument(help="Files, folders or globs.", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The dataset file to write (.h5).", show_default=False),
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="auto, images, npy, cikm or pysteps:IMPORTER (e.g. pysteps:fmi_pgm)."
        ),
    ] = "auto",
    time_pattern: Annotated[
        str | None,
        typer.Option(
            help="strftime pattern of the time in file names, e.g. %Y%m%d%H%M (* ? match any text)."
        ),
    ] = None,
    timestep: Annotated[
        int, typer.Option(help="Time step in seconds (a larger gap starts a segment).")
    ] = 300,
    start: Annotated[
        str, typer.Option(help="Time of the first frame when names carry no time.")
    ] = "2000-01-01T00:00Z",
    input_scale: Annotated[
        str | None,
        typer.Option(
            help="Unit preset of the raw values (hko, fmi, mch, ...); brings its service's Z–R."
        ),
    ] = None,
    scale: Annotated[str, typer.Option(help="Unit preset of the dataset's pixels.")] = "hko",
    dbz_gain: Annotated[
        float | None, typer.Option(help="Dataset dBZ = gain·pixel + offset (overrides --scale).")
    ] = None,
    dbz_offset: Annotated[float | None, typer.Option(help="See --dbz-gain.")] = None,
    zr_a: Annotated[
        float | None, typer.Option(help="Z = a·R^b of the dataset (overrides the presets' Z–R).")
    ] = None,
    zr_b: Annotated[float | None, typer.Option(help="See --zr-a.")] = None,
    nodata: Annotated[
        str | None,
        typer.Option(
            help="Raw values meaning missing, e.g. 255 or 0,255 (overrides the input preset)."
        ),
    ] = None,
    downsample: Annotated[int, typer.Option(help="Average KxK blocks.")] = 1,
    resize: Annotated[str | None, typer.Option(help="Resample to HxW.")] = None,
    crop: Annotated[
        str | None,
        typer.Option(help="Keep rows y0:y1 and columns x0:x1 ('y0:y1,x0:x1'), before resampling."),
    ] = None,
    split: Annotated[str, typer.Option(help="Train,val,test fractions.")] = "0.8,0.1,0.1",
    n_in: Annotated[int, typer.Option(help="Default input frames per window.")] = 5,
    n_out: Annotated[int, typer.Option(help="Default output frames per window.")] = 15,
    cikm_level: Annotated[int, typer.Option(help="CIKM height index 0..3 (0 = lowest).")] = 0,
    max_start_end_corr: Annotated[
        float | None,
        typer.Option(help="CIKM: drop samples whose first and last frames correlate above this."),
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option(help="CRS of plain images: EPSG:CODE, a PROJ string or WKT (with --bounds)."),
    ] = None,
    bounds: Annotated[
        str | None,
        typer.Option(help="Outer edges of the input grid in CRS units: x0,y0,x1,y1 (with --crs)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    workers: Annotated[
        int | None, typer.Option(help="Decode the files on N local worker processes.")
    ] = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Turn raw radar grids into a radarcast dataset (HDF5)."""
    from radarcast.cli._app import parse_floats
    from radarcast.data.info import summarize
    from radarcast.data.preprocess import PreprocessConfig
    from radarcast.data.preprocess import preprocess as run

    fractions = parse_floats(split, "--split")
    for name, v in (("--dbz-gain", dbz_gain), ("--dbz-offset", dbz_offset), ("--zr-a", zr_a),
                    ("--zr-b", zr_b)):
        finite(v, name)
    finite(dbz_gain, "--dbz-gain", high=MAX_DBZ_SPAN / 255)  # 255 steps span at most ...
    finite(dbz_offset, "--dbz-offset", -MAX_DBZ_SPAN, MAX_DBZ_SPAN)  # ... 1000 dBZ
    finite(cikm_level, "--cikm-level", 0, 3)  # checked here, not only by the CIKM reader
    finite(max_start_end_corr, "--max-start-end-corr", -1.0, 1.0)  # a correlation
    config = PreprocessConfig(
        format=fmt,
        input_scale=input_scale,
        scale=scale,
        dbz_gain=dbz_gain,
        dbz_offset=dbz_offset,
        zr_a=zr_a,
        zr_b=zr_b,
        nodata=_parse_nodata(nodata),
        time_pattern=time_pattern,
        timestep_s=timestep,
        start=start,
        downsample=downsample,
        resize=_parse_shape(resize, "--resize"),
        crop=_parse_crop(crop),
        split=tuple(fractions),
        n_in=n_in,
        n_out=n_out,
        cikm_level=cikm_level,
        max_start_end_corr=max_start_end_corr,
        overwrite=overwrite,
        crs=crs,
        bounds=_parse_bounds(bounds),
    )
    notes: list[str] = []
    with ExitStack() as stack:
        decoder = None
        if sharded(workers, scheduler):
            from radarcast.parallel import open_runner
            from radarcast.parallel.preprocess import sharded_decoder

            decoder = sharded_decoder(stack.enter_context(open_runner(workers, scheduler)))
        bar = stack.enter_context(_bar_with_safe_interrupt("preprocess"))
        out = run(inputs, output, config, progress=bar, warn=notes.append, decoder=decoder)
    s = summarize(out)
    rows = dict(s["rows"])
    t, h, w = s["shape"]
    windows = ", ".join(f"{name} {c['windows']:,}" for name, c in s["splits"].items())
    console.print(
        f"wrote {out}: {t:,} frame{'s' if t != 1 else ''} of {h}×{w} px, {rows['segments']}; "
        f"windows of {s['n_in']}→{s['n_out']}: {windows}"
    )
    for note in notes:
        err_console.print(Text("warning: ", style="bold yellow") + Text(note), soft_wrap=True)
