"""Command: nowcast (the newest raw radar files → a forecast, once or live)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from radarcast.cli._app import at_least, command, console, err_console


def _read_config(**kw):
    from radarcast.cli.data import _parse_bounds, _parse_crop
    from radarcast.data.preprocess import PreprocessConfig

    return PreprocessConfig(
        format=kw["fmt"],
        input_scale=kw["input_scale"],
        scale=kw["scale"],
        time_pattern=kw["time_pattern"],
        timestep_s=kw["timestep"],
        downsample=kw["downsample"],
        crop=_parse_crop(kw["crop"]),
        crs=kw["crs"],
        bounds=_parse_bounds(kw["bounds"]),
    )


LIVE_FLOW_DOWNSAMPLE = 4
"""ROVER's working grid in live nowcasts: 4x coarser (2x in evaluations), for latency."""


class _Maker:
    """Builds the forecaster once (per grid and scale) and makes one nowcast per call."""

    def __init__(
        self,
        method: str,
        leads: int,
        members: int | None,
        device: str | None,
        units: str,
        read_cfg,
        overwrite: bool,
        flow_downsample: int | None = None,
    ) -> None:
        from radarcast.errors import RadarcastError
        from radarcast.nowcast import frames_needed

        self.method, self.leads, self.units, self.read_cfg = method, leads, units, read_cfg
        if device is None:  # one window: rover's numpy kernels start quickest (the ensemble's
            device = "numpy" if method == "rover" and not members else "cpu"  # are torch's)
        self.options = {} if method == "persistence" else {"device": device}
        if flow_downsample is not None:
            if method != "rover":
                raise RadarcastError(f"--flow-downsample belongs to rover, not {method}")
            self.options["downsample"] = flow_downsample
        from radarcast.forecasters import ensemble_options

        self.options.update(ensemble_options(method, members))
        self.overwrite = overwrite
        self.n = frames_needed(method, leads, self.options)
        self._cache: dict = {}
        self.timings: dict[str, float] = {}

    def forecaster(self, inputs):
        from radarcast.forecasters import resolve

        key = (inputs.shape[1:], inputs.units)
        if key not in self._cache:
            self._cache.clear()
            self._cache[key] = resolve(self.method, inputs, n_out=self.leads, options=self.options)
        return self._cache[key]

    def __call__(self, files: list[str], output: Path):
        from radarcast.nowcast import prepare_write, read_latest, run_nowcast, write_nowcast

        t = [time.perf_counter()]
        inputs = read_latest(files, self.n, self.read_cfg)
        if output.is_dir():
            from radarcast.nowcast.watch import output_name

            output = output_name(output, int(inputs.times[-1]), self.suffix)
        prepare_write(inputs, output)  # lon/lat in the background, beside the forecast
        t.append(time.perf_counter())
        fc = self.forecaster(inputs)
        t.append(time.perf_counter())
        nc = run_nowcast(inputs, fc)
        t.append(time.perf_counter())
        path = write_nowcast(nc, output, self.units, self.overwrite)
        t.append(time.perf_counter())
        steps = ("read", "setup", "forecast", "write")
        self.timings = {k: b - a for k, a, b in zip(steps, t[:-1], t[1:], strict=True)}
        return path, nc.analysis_time

    suffix = ".h5"


@command()
def nowcast(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Raw radar files, folders or globs (the newest are used).", show_default=False
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="NOWCAST.h5, .nc, .tif, .zarr, .grib2, .png (sheet) or .gif."
        ),
    ] = None,
    method: Annotated[
        str, typer.Option(help="persistence, rover, pysteps:NAME or RUN/best.pt.")
    ] = "rover",
    leads: Annotated[int, typer.Option(help="Lead times to forecast.")] = 12,
    members: Annotated[
        int | None, typer.Option(help="Ensemble members (methods that make ensembles).")
    ] = None,
    units: Annotated[
        str, typer.Option(help="Values in .nc/.tif/...: mm/h, dBZ or pixel.")
    ] = "mm/h",
    fmt: Annotated[
        str, typer.Option("--format", help="As preprocess: auto, images, pysteps:IMPORTER.")
    ] = "auto",
    time_pattern: Annotated[
        str | None, typer.Option(help="strftime pattern of the time in file names.")
    ] = None,
    timestep: Annotated[int, typer.Option(help="Time step between files, s.")] = 300,
    input_scale: Annotated[str | None, typer.Option(help="Unit preset of the raw values.")] = None,
    scale: Annotated[str, typer.Option(help="Pixel scale the method works on.")] = "hko",
    crop: Annotated[str | None, typer.Option(help="y0:y1,x0:x1 as in preprocess.")] = None,
    downsample: Annotated[int, typer.Option(help="Average KxK blocks.")] = 1,
    crs: Annotated[str | None, typer.Option(help="CRS of plain images (with --bounds).")] = None,
    bounds: Annotated[str | None, typer.Option(help="x0,y0,x1,y1 outer edges.")] = None,
    device: Annotated[
        str | None,
        typer.Option(help="auto, cpu or cuda; rover also numpy, its default here (no torch)."),
    ] = None,
    flow_downsample: Annotated[
        int | None,
        typer.Option(
            help="rover: flow estimated on a grid K times coarser (motion is smooth); "
            "4 here, 2 in evaluations (docs/performance.md: skill side by side)."
        ),
    ] = None,
    watch: Annotated[
        Path | None, typer.Option(help="Watch this folder: a nowcast for every new file.")
    ] = None,
    pattern: Annotated[str, typer.Option(help="Glob of the watched file names.")] = "*",
    out_dir: Annotated[Path | None, typer.Option(help="Where watch mode writes.")] = None,
    out_format: Annotated[str, typer.Option(help="Watch mode's output type, e.g. nc.")] = "h5",
    once: Annotated[bool, typer.Option(help="Watch mode: one pass, then exit (cron).")] = False,
    settle: Annotated[float, typer.Option(help="Seconds a file must stay unchanged.")] = 2.0,
    poll: Annotated[float, typer.Option(help="Seconds between folder scans.")] = 1.0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Forecast from the newest raw radar files (no dataset needed), or live with --watch."""
    from radarcast.errors import RadarcastError

    read_cfg = _read_config(
        fmt=fmt,
        input_scale=input_scale,
        scale=scale,
        time_pattern=time_pattern,
        timestep=timestep,
        downsample=downsample,
        crop=crop,
        crs=crs,
        bounds=bounds,
    )
    read_cfg.check()  # --timestep, --downsample, --crop...: refused now, not file by file
    if leads < 1:
        raise RadarcastError(f"--leads must be ≥ 1, got {leads}")
    at_least(members, 1, "--members")
    at_least(flow_downsample, 1, "--flow-downsample")
    flow = flow_downsample
    if flow is None and method == "rover":
        flow = LIVE_FLOW_DOWNSAMPLE
    if watch is None and once:
        raise RadarcastError("--once belongs to --watch")
    if watch is not None:
        if output is not None:
            raise RadarcastError("-o is for one nowcast; --watch writes into --out-dir")
        if files:
            raise RadarcastError("FILES are for one nowcast; --watch reads its folder")
        cfg = _watch_config(watch, pattern, out_dir, out_format, once, settle, poll, fmt)
        make = _Maker(method, leads, members, device, units, read_cfg, True, flow)
        return _watch(cfg, time_pattern, make)
    if not files or output is None:
        raise RadarcastError("give input FILES and --output (or --watch DIR --out-dir OUT)")
    from radarcast.data.schema import check_output
    from radarcast.nowcast import check_output_suffix

    check_output_suffix(output)
    if output.suffix.lower() != ".zarr":
        check_output(output, overwrite)
    make = _Maker(method, leads, members, device, units, read_cfg, overwrite, flow)
    path, t0 = make(files, output)
    from radarcast.data.schema import format_time

    steps = ", ".join(f"{k} {v:.2f} s" for k, v in make.timings.items())
    console.print(f"{make.method} nowcast from {format_time(t0)}, {leads} leads → {path} ({steps})")


def _watch_config(folder, pattern, out_dir, out_format, once, settle, poll, fmt):
    """The checked :class:`WatchConfig` of the watch flags (folders exist, the output type
    is known), before anything is logged."""
    from radarcast.errors import RadarcastError
    from radarcast.nowcast import OUTPUT_SUFFIXES, nowcast_suffixes
    from radarcast.nowcast.watch import WatchConfig, check_folders

    if out_dir is None:
        raise RadarcastError("--watch needs --out-dir")
    suffix = "." + out_format.lower().lstrip(".")
    if suffix not in OUTPUT_SUFFIXES:
        choices = ", ".join(s.lstrip(".") for s in OUTPUT_SUFFIXES)
        raise RadarcastError(
            f"--out-format {out_format}: unknown output type; choose one of: {choices}"
        )
    inputs = nowcast_suffixes(fmt)
    cfg = WatchConfig(Path(folder), pattern, Path(out_dir), suffix, settle, poll, once, inputs)
    check_folders(cfg)
    return cfg


def _watch(cfg, time_pattern, make) -> None:
    from radarcast.data.readers import compile_time_pattern
    from radarcast.nowcast.watch import Stopper
    from radarcast.nowcast.watch import watch as run

    make.suffix = cfg.suffix
    parse = compile_time_pattern(time_pattern) if time_pattern else (lambda name: None)

    def log(kind: str, message: str) -> None:
        from rich.text import Text

        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        style = {"done": "green", "skip": "yellow"}.get(kind, "")
        if kind == "done" and make.timings:  # where this nowcast's time went
            message += " (" + ", ".join(f"{k} {v:.2f} s" for k, v in make.timings.items()) + ")"
        err_console.print(
            Text(f"{stamp} ") + Text(kind, style=style) + Text(f" {message}"), soft_wrap=True
        )

    where = f"{cfg.folder}/{cfg.pattern} → {cfg.out_dir} (*{cfg.suffix})"
    log("info", f"watching {where}; Ctrl-C or SIGTERM stops")
    with Stopper() as stopper:
        n = run(cfg, make, parse, log, stopper.event)
    log("info", f"stopped after {n} nowcast(s)")
