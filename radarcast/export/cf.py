"""A :class:`~radarcast.export.cube.Cube` as a CF-1.8 xarray Dataset, written to netCDF or Zarr.

Layout: dimensions ``time``, ``lead_time``, ``member`` (ensembles only), ``y``, ``x`` for
forecasts and ``time``, ``y``, ``x`` for observations; projected ``x``/``y`` pixel-centre
coordinates in metres with ``lon``/``lat`` auxiliary coordinates and a ``crs`` grid-mapping
variable (``crs_wkt`` and the CF projection parameters pyproj gives) where the grid is
geo-referenced, pixel indices otherwise; a 2-D ``valid_time``; ``_FillValue`` for masked
pixels; one chunk per map, compressed. Large cubes stream through dask, one row at a time.

Compression (measured on the MeteoSwiss and FMI nowcasts, docs/export.md): zlib level 1
without the shuffle filter. The values come from a 256-entry table of pixel levels, mostly
0, so the plain byte stream repeats well: level 1 writes them ~3x faster and ~40% smaller
than level 4 with shuffle. ``lon``/``lat`` are float64 that deflate hardly shrinks (7.3 →
4.4 MB for MeteoSwiss at 0.15 s of CPU), so they are stored uncompressed, as pysteps'
exporter stores them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from radarcast.export.cube import Cube
from radarcast.export.lonlat import cached_lonlat

FILL = np.float32(-9999.0)
LEVEL = 1  # zlib level of the data variable
IN_MEMORY_BYTES = 256 * 2**20  # larger cubes are read lazily, one row at a time
VARIABLES = {
    "mmh": (
        "precip_intensity",
        {"long_name": "instantaneous precipitation rate", "units": "mm h-1"},
    ),
    "dbz": (
        "reflectivity",
        {
            "long_name": "equivalent reflectivity factor",
            "units": "dBZ",
            "standard_name": "equivalent_reflectivity_factor",
        },
    ),
    "pixel": ("pixel", {"long_name": "radar pixel level 0-255", "units": "1"}),
}


def _values(cube: Cube):
    """(N, *row) values: numpy when small, else a dask array reading one row per chunk."""
    n, shape = len(cube.times), cube.row_shape
    if n == 1 and cube.nbytes() <= IN_MEMORY_BYTES:  # a nowcast: no copy of its row
        return cube.read(0)[None]
    if cube.nbytes() <= IN_MEMORY_BYTES:
        out = np.empty((n, *shape), np.float32)
        for i in range(n):
            out[i] = cube.read(i)
        return out
    import dask
    import dask.array as da

    rows = [da.from_delayed(dask.delayed(cube.read)(i), shape, np.float32) for i in range(n)]
    return da.stack(rows)


def _dims(cube: Cube) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
    """Dimension names in file order and the axis order that takes the cube there."""
    if cube.kind == "observation":
        return ("time", "y", "x"), None
    if cube.members:
        return ("time", "lead_time", "member", "y", "x"), (0, 2, 1, 3, 4)
    return ("time", "lead_time", "y", "x"), None


def _grid_coords(cube: Cube, lonlat: bool) -> tuple[dict, dict | None]:
    """x/y (and lon/lat) coordinates, and the grid-mapping variable's attributes."""
    h, w = cube.grid
    g = cube.georef
    if g is None:
        return {
            "y": ("y", np.arange(h), {"long_name": "row index (no geo-reference)"}),
            "x": ("x", np.arange(w), {"long_name": "column index (no geo-reference)"}),
        }, None
    coords = {
        "y": (
            "y",
            g.y(h),
            {
                "standard_name": "projection_y_coordinate",
                "units": "m",
                "axis": "Y",
                "long_name": "y of pixel centre",
            },
        ),
        "x": (
            "x",
            g.x(w),
            {
                "standard_name": "projection_x_coordinate",
                "units": "m",
                "axis": "X",
                "long_name": "x of pixel centre",
            },
        ),
    }
    if lonlat:
        lon, lat = cached_lonlat(g, (h, w))
        coords["lon"] = (("y", "x"), lon, {"standard_name": "longitude", "units": "degrees_east"})
        coords["lat"] = (("y", "x"), lat, {"standard_name": "latitude", "units": "degrees_north"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cf = g.crs().to_cf()
    cf = {k: v for k, v in cf.items() if isinstance(v, (str, int, float))}
    cf.update(crs_wkt=g.crs_wkt, spatial_ref=g.crs_wkt, proj4=g.proj4)
    cf["GeoTransform"] = " ".join(f"{v:.17g}" for v in g.transform())
    return coords, cf


def to_xarray(cube: Cube, lonlat: bool = True):
    """The CF-1.8 ``xarray.Dataset`` of ``cube`` (values lazily read when large)."""
    import xarray as xr

    dims, order = _dims(cube)
    values = _values(cube)
    if order is not None:
        values = values.transpose(order)
    name, var_attrs = VARIABLES[cube.unit]
    coords, grid_mapping = _grid_coords(cube, lonlat)
    times = cube.times.astype("datetime64[s]").astype("datetime64[ns]")
    time_attrs = {
        "standard_name": "forecast_reference_time" if cube.kind == "forecast" else "time",
        "long_name": "analysis time" if cube.kind == "forecast" else "valid time",
    }
    coords["time"] = ("time", times, time_attrs)
    if cube.kind == "forecast":
        leads = cube.leads.astype("timedelta64[s]").astype("timedelta64[ns]")
        coords["lead_time"] = ("lead_time", leads, {"standard_name": "forecast_period"})
        valid = times[:, None] + leads[None, :]
        coords["valid_time"] = (("time", "lead_time"), valid, {"standard_name": "time"})
        if cube.members:
            coords["member"] = (
                "member",
                np.arange(1, cube.members + 1),
                {"standard_name": "realization"},
            )
    attrs = dict(var_attrs)
    if grid_mapping is not None:
        attrs["grid_mapping"] = "crs"
        if lonlat:
            attrs["coordinates"] = "lat lon"
    data = {name: (dims, values, attrs)}
    if grid_mapping is not None:
        data["crs"] = ((), np.int32(0), grid_mapping)
    ds = xr.Dataset(data, coords=coords, attrs=_global_attrs(cube))
    if grid_mapping is not None and lonlat:  # CF: coordinates attribute, not encoding guesses
        ds[name].encoding["coordinates"] = "lat lon"
        del ds[name].attrs["coordinates"]
    return ds


def _global_attrs(cube: Cube) -> dict:
    from radarcast import __version__

    title = "radarcast nowcast" if cube.kind == "forecast" else "radarcast radar observations"
    out = {
        "Conventions": "CF-1.8",
        "title": title,
        "source": f"radarcast {__version__}: {cube.name}",
    }
    out.update({k: v for k, v in cube.attrs.items() if isinstance(v, (str, int, float))})
    return out


def encoding(ds, cube: Cube, level: int = LEVEL) -> dict:
    """Compression (zlib, no shuffle), chunks (one map each) and fill value of the data
    variable; lon/lat uncompressed; times as integers in CF units."""
    name = VARIABLES[cube.unit][0]
    dims = ds[name].dims
    chunks = tuple(ds.sizes[d] if d in ("y", "x", "member") else 1 for d in dims)
    enc = {
        name: {
            "zlib": True,
            "complevel": level,
            "shuffle": False,
            "chunksizes": chunks,
            "_FillValue": FILL,
            "dtype": "float32",
        },
        "time": {"units": "seconds since 1970-01-01 00:00:00", "dtype": "int64"},
    }
    for c in ("lon", "lat"):
        if c in ds.coords:
            enc[c] = {"zlib": False, "contiguous": True}
    if "lead_time" in ds.coords:
        enc["lead_time"] = {"units": "seconds", "dtype": "int64"}
        enc["valid_time"] = {"units": "seconds since 1970-01-01 00:00:00", "dtype": "int64"}
    return enc


def write_netcdf(cube: Cube, tmp: Path, level: int = LEVEL) -> None:
    """Write ``cube`` as CF-1.8 netCDF-4 to ``tmp`` (the caller renames it into place).

    A cube that fits in memory is written with netCDF4 alone, in the layout xarray gives
    (:func:`to_xarray`, :func:`encoding`) without importing xarray and dask (~0.5 s of a
    live nowcast); larger ones stream through xarray and dask."""
    try:
        if cube.nbytes() > IN_MEMORY_BYTES:
            ds = to_xarray(cube)
            enc = encoding(ds, cube, level)
            _compute(lambda: ds.to_netcdf(tmp, engine="netcdf4", encoding=enc))
            return
        import netCDF4

        dims, order = _dims(cube)
        values = _values(cube)
        if order is not None:
            values = values.transpose(order)
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            _write_netcdf4(nc, cube, dims, values, level)
    except RuntimeError as e:
        raise _netcdf_write_error(e, tmp) from None


def _netcdf_write_error(e: RuntimeError, tmp: Path) -> BaseException:
    """netCDF4 raises a failed write (a full disk, a file size limit) as RuntimeError
    'NetCDF: HDF error' without the system's errno: an OSError naming ``tmp``. Other
    RuntimeErrors, with space left, are bugs and stay as they are."""
    from radarcast.export.failure import LOW_SPACE, free_bytes, write_error

    free = free_bytes(tmp)
    if "HDF error" in str(e) or (free is not None and free < LOW_SPACE):
        return write_error(tmp, str(e))
    return e


def _write_netcdf4(nc, cube: Cube, dims: tuple[str, ...], values: np.ndarray, level: int):
    name, var_attrs = VARIABLES[cube.unit]
    coords, grid_mapping = _grid_coords(cube, lonlat=True)
    epoch = "seconds since 1970-01-01"
    times = {"calendar": "proleptic_gregorian", "units": epoch}
    time_attrs = {
        "standard_name": "forecast_reference_time" if cube.kind == "forecast" else "time",
        "long_name": "analysis time" if cube.kind == "forecast" else "valid time",
        **times,
    }
    coords["time"] = ("time", cube.times.astype(np.int64), time_attrs)
    if cube.kind == "forecast":
        leads = cube.leads.astype(np.int64)
        lead_attrs = {"standard_name": "forecast_period", "dtype": "timedelta64[ns]"}
        coords["lead_time"] = ("lead_time", leads, {**lead_attrs, "units": "seconds"})
        valid = cube.times.astype(np.int64)[:, None] + leads[None, :]
        coords["valid_time"] = (("time", "lead_time"), valid, {"standard_name": "time", **times})
        if cube.members:
            coords["member"] = ("member", np.arange(1, cube.members + 1), {})
            coords["member"][2]["standard_name"] = "realization"
    for dim, size in zip(dims, values.shape, strict=True):
        nc.createDimension(dim, size)
    attrs = dict(var_attrs)
    if grid_mapping is not None:
        attrs.update(grid_mapping="crs", coordinates="lat lon")
    sizes = zip(dims, values.shape, strict=True)
    chunks = [s if d in ("y", "x", "member") else 1 for d, s in sizes]
    var = nc.createVariable(name, "f4", dims, zlib=True, complevel=level, shuffle=False,
                            chunksizes=chunks, fill_value=FILL)  # fmt: skip
    var.setncatts(attrs)
    unknown = np.isnan(values)
    var[...] = np.where(unknown, FILL, values) if unknown.any() else values  # read(i) may be kept
    if grid_mapping is not None:
        crs = nc.createVariable("crs", "i4", ())
        crs.setncatts(grid_mapping)
        crs.assignValue(0)
    for key, (cdims, data, cattrs) in coords.items():
        cdims = (cdims,) if isinstance(cdims, str) else cdims
        data = np.asarray(data)
        floating = data.dtype.kind == "f"
        v = nc.createVariable(key, data.dtype, cdims, fill_value=np.nan if floating else None)
        v.setncatts(cattrs)
        v[...] = data
    if cube.kind == "forecast":
        nc.setncatts({**_global_attrs(cube), "coordinates": "valid_time"})
    else:
        nc.setncatts(_global_attrs(cube))


def write_zarr(cube: Cube, tmp: Path) -> None:
    """Write ``cube`` as a Zarr store (a folder) at ``tmp``, its metadata consolidated (Zarr
    format 3: one ``zarr.json`` at the top that holds every array's), so that
    ``xarray.open_zarr`` opens it without a warning."""
    ds = to_xarray(cube)
    enc = encoding(ds, cube)
    name = VARIABLES[cube.unit][0]
    v = enc[name]
    enc = {k: e for k, e in enc.items() if "zlib" not in e}  # zarr compresses by default
    enc[name] = {"chunks": v["chunksizes"], "_FillValue": v["_FillValue"], "dtype": "float32"}
    try:
        with warnings.catch_warnings():  # consolidated on purpose: a plain open_zarr expects it
            warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
            _compute(lambda: ds.to_zarr(tmp, mode="w", encoding=enc, consolidated=True))
    except OSError as e:
        _stop_zarr_io()
        if e.filename is not None:
            raise
        from radarcast.export.failure import write_error

        raise write_error(tmp, e.strerror or str(e)) from None  # zarr's chunk writes name no file
    except BaseException:
        _stop_zarr_io()
        raise


def _stop_zarr_io() -> None:
    """Stop zarr's own I/O: an interrupted ``to_zarr`` (Ctrl-C) returns while its chunk
    writes go on in zarr's event-loop thread and thread pool, which would recreate folders
    in the temporary store after the cleanup removed it. zarr ≥ 3 runs those through
    ``zarr.core.sync``: its pending tasks are cancelled and awaited, then
    ``cleanup_resources`` (what zarr runs at exit; a later use starts afresh) waits for the
    pool's running writes. zarr 2 writes in the calling thread."""
    import asyncio

    try:
        from zarr.core import sync
    except ImportError:
        return
    loop = sync.loop[0]
    if loop is not None and loop.is_running():

        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_the_rest(), loop).result(timeout=60)
    sync.cleanup_resources()


def _compute(write) -> None:
    """Run a write; dask (when the cube is lazy) reads the HDF5 rows in this thread only."""
    try:
        import dask
    except ImportError:
        write()
        return
    with dask.config.set(scheduler="synchronous"):
        write()
