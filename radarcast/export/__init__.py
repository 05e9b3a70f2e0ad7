"""Forecasts and datasets out of radarcast: CF-netCDF, GeoTIFF, Zarr and GRIB2.

:func:`export` picks the writer from the output's suffix (:data:`WRITERS`), reads the input
as a :class:`~radarcast.export.cube.Cube` and writes to a temporary name in the output's
folder that is renamed into place when complete. xarray, netCDF4, rasterio, pyproj, zarr
and eccodes are optional extras (``radarcast[geo]``, ``radarcast[grib]``), imported here
only by the writer that needs them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from radarcast.errors import RadarcastError
from radarcast.export.cube import Cube, open_cube


def _netcdf(cube: Cube, tmp: Path) -> None:
    from radarcast.export.cf import write_netcdf

    _need("xarray", "netCDF4")
    write_netcdf(cube, tmp)


def _zarr(cube: Cube, tmp: Path) -> None:
    from radarcast.export.cf import write_zarr

    _need("xarray", "zarr")
    write_zarr(cube, tmp)


def _geotiff(cube: Cube, tmp: Path) -> None:
    from radarcast.export.geotiff import write_geotiff

    write_geotiff(cube, tmp)


def _grib2(cube: Cube, tmp: Path) -> None:
    from radarcast.export.grib import write_grib2

    write_grib2(cube, tmp)


WRITERS: dict[str, Callable[[Cube, Path], None]] = {
    ".nc": _netcdf,
    ".tif": _geotiff,
    ".tiff": _geotiff,
    ".zarr": _zarr,
    ".grib2": _grib2,
}
"""Writers by output suffix."""


def _need(*modules: str) -> None:
    import importlib.util

    from radarcast.data.georef import GEO_INSTALL

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise RadarcastError(f"this export needs {', '.join(missing)}: {GEO_INSTALL}")


def writer_for(output: str | os.PathLike) -> Callable[[Cube, Path], None]:
    """The writer for ``output``'s suffix; the error lists the suffixes."""
    suffix = Path(output).suffix.lower()
    if suffix not in WRITERS:
        raise RadarcastError(
            f"{output}: unknown output type {suffix or '(none)'!r}; "
            f"choose one of: {', '.join(WRITERS)}"
        )
    return WRITERS[suffix]


def check_target(output: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite`` (a Zarr output is a folder)."""
    from radarcast.data.schema import check_output

    output = Path(output)
    writer_for(output)
    if output.suffix.lower() == ".zarr" and output.is_dir():
        if not overwrite:
            raise RadarcastError(f"{output} exists; pass --overwrite to replace it")
        return output
    return check_output(output, overwrite)


def select_time(cube: Cube, time: str | None) -> Cube:
    """The rows whose (analysis or valid) time is ``time`` (ISO 8601); all when None."""
    if time is None:
        return cube
    from radarcast.data.schema import parse_time

    t = parse_time(time)
    rows = np.flatnonzero(cube.times == t)
    if not len(rows):
        raise RadarcastError(f"no {'forecast' if cube.kind == 'forecast' else 'frame'} at {time}")
    return cube.select(rows)


def write_cube(cube: Cube, output: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``cube`` to ``output`` atomically (a temporary sibling, then a rename)."""
    from radarcast.data.schema import place, temporary_path

    output = check_target(output, overwrite)
    write = writer_for(output)
    tmp = temporary_path(output)
    try:
        write(cube, tmp)
        place(tmp, output, overwrite)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    return output


def export(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    units: str = "mm/h",
    time: str | None = None,
    dataset: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Export a forecast file or a dataset to ``output`` (.nc, .tif, .zarr or .grib2).

    Parameters
    ----------
    source
        A forecast file (rows: forecasts) or a dataset (rows: frames).
    output
        The file (or Zarr folder) to create; its suffix picks the format.
    units
        'mm/h', 'dBZ' or 'pixel'.
    time
        Only the forecast with this analysis time (or the frame with this valid time).
    dataset
        Where an old forecast file without its own times and scale takes them from.
    overwrite
        Replace an existing output.

    Returns
    -------
    The path written.
    """
    check_target(output, overwrite)
    cube = open_cube(source, units, dataset)
    try:
        cube = select_time(cube, time)
        cube.attrs["source_path"] = str(source)
        return write_cube(cube, output, overwrite)
    finally:
        cube.close()
