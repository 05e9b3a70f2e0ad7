"""One forecast (or a dataset's frames) as a GeoTIFF through rasterio: one band per lead
time (per member and lead for an ensemble; per frame for observations), float32, the CRS
and the affine transform set, north up, ``nodata`` for masked pixels."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from radarcast.errors import RadarcastError
from radarcast.export.cf import FILL, VARIABLES
from radarcast.export.cube import Cube

NO_CRS = "no CRS — use --crs/--bounds at preprocess"


def _bands(cube: Cube) -> tuple[np.ndarray, list[str]]:
    """(bands, H, W) float32 and a description of each band."""
    from radarcast.data.schema import format_time

    if cube.kind == "observation":
        data = np.stack([cube.read(i) for i in range(len(cube.times))])
        return data, [f"valid {format_time(t)}" for t in cube.times]
    if len(cube.times) != 1:
        raise RadarcastError(
            f"{cube.attrs.get('source_path', 'the input')}: a GeoTIFF holds one forecast, "
            f"this file holds {len(cube.times)}: pick one by "
            f"its analysis time with --time (the first is --time {format_time(cube.times[0])})"
        )
    row = cube.read(0)  # ([M,] L, H, W)
    minutes = [int(s) // 60 for s in cube.leads]
    if cube.members:
        names = [f"member {m + 1} lead +{k} min" for m in range(cube.members) for k in minutes]
        return row.reshape(-1, *cube.grid), names
    return row, [f"lead +{k} min" for k in minutes]


def write_geotiff(cube: Cube, tmp: Path) -> None:
    """Write ``cube`` to ``tmp`` as a tiled, deflate-compressed GeoTIFF."""
    from radarcast.data.georef import GEO_INSTALL

    if cube.georef is None:
        raise RadarcastError(f"{cube.attrs.get('source_path', 'the input')}: {NO_CRS}")
    try:
        import rasterio  # noqa: F401 - refused by name here when the extra is missing
    except ImportError:
        raise RadarcastError(f"GeoTIFF export needs rasterio: {GEO_INSTALL}") from None
    g = cube.georef
    data, names = _bands(cube)
    if g.yorigin == "lower":  # GeoTIFF rows run north to south
        data = data[:, ::-1]
    data = np.where(np.isnan(data), FILL, data).astype(np.float32)
    name, attrs = VARIABLES[cube.unit]
    tags = {"quantity": name, "units": attrs["units"], "source": cube.name}
    _write(tmp, _profile(cube, len(data)), data, names, tags)


def _profile(cube: Cube, count: int) -> dict:
    """rasterio's creation options: CRS, transform, nodata, deflate, 256-pixel tiles."""
    import rasterio
    from rasterio.transform import Affine

    g = cube.georef
    x0, dx, _, _, _, _ = g.transform()
    h, w = cube.grid
    profile = dict(
        driver="GTiff",
        width=w,
        height=h,
        count=count,
        dtype="float32",
        crs=rasterio.crs.CRS.from_wkt(g.crs_wkt),
        transform=Affine(dx, 0.0, x0, 0.0, -g.ypixelsize, g.y2),
        nodata=float(FILL),
        compress="deflate",
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    if w < 256 or h < 256:
        profile.update(tiled=False, blockxsize=None, blockysize=None)
        profile = {k: v for k, v in profile.items() if v is not None}
    return profile


def _write(tmp: Path, profile: dict, data: np.ndarray, names: list[str], tags: dict) -> None:
    """Write the bands; a failed write is one OSError naming ``tmp`` and the system's
    reason, and GDAL's own lines about it are not printed."""
    import rasterio

    failed = None
    with _stderr_held() as printed:
        try:
            with rasterio.Env(GTIFF_SRS_SOURCE="WKT"), rasterio.open(tmp, "w", **profile) as dst:
                dst.write(data)
                for i, text in enumerate(names, 1):
                    dst.set_band_description(i, text)
                dst.update_tags(**tags)
        except rasterio.errors.RasterioIOError as e:
            failed = e
    if failed is None:
        sys.stderr.write(printed[0])  # nothing failed: what GDAL said is shown after all
        return
    from radarcast.export.failure import write_error

    reason = str(failed.__cause__ or failed)  # GDAL's error, not "see previous exception"
    raise write_error(tmp, reason, printed[0]) from None


@contextmanager
def _stderr_held() -> Iterator[list[str]]:
    """Hold back what is written to the process's stderr (file descriptor 2) inside the
    block: GDAL's bundled libtiff prints ``_tiffWriteProc: No space left on device.`` there,
    once per failed strip, which neither rasterio's logger nor its error handler sees. The
    yielded list's one item is the text once the block has ended (kept in memory: a memfd
    where Linux has them). Other threads' stderr in that time is held too."""
    sys.stderr.flush()
    if hasattr(os, "memfd_create"):
        held = os.fdopen(os.memfd_create("radarcast-stderr"), "w+b")
    else:
        held = tempfile.TemporaryFile()
    printed = [""]
    saved = os.dup(2)
    try:
        os.dup2(held.fileno(), 2)
        yield printed
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        held.seek(0)
        printed[0] = held.read(2**16).decode("utf-8", "replace")
        held.close()
