"""One forecast (or a dataset's frames) as a GeoTIFF through rasterio: one band per lead
time (per member and lead for an ensemble; per frame for observations), float32, the CRS
and the affine transform set, north up, ``nodata`` for masked pixels."""

from __future__ import annotations

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
            f"a GeoTIFF holds one forecast, this file holds {len(cube.times)}: "
            "pick one with --time (analysis time) or --window"
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
        import rasterio
        from rasterio.transform import Affine
    except ImportError:
        raise RadarcastError(f"GeoTIFF export needs rasterio: {GEO_INSTALL}") from None
    g = cube.georef
    data, names = _bands(cube)
    if g.yorigin == "lower":  # GeoTIFF rows run north to south
        data = data[:, ::-1]
    data = np.where(np.isnan(data), FILL, data).astype(np.float32)
    x0, dx, _, _, _, _ = g.transform()
    transform = Affine(dx, 0.0, x0, 0.0, -g.ypixelsize, g.y2)
    h, w = cube.grid
    profile = dict(
        driver="GTiff",
        width=w,
        height=h,
        count=len(data),
        dtype="float32",
        crs=rasterio.crs.CRS.from_wkt(g.crs_wkt),
        transform=transform,
        nodata=float(FILL),
        compress="deflate",
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    if w < 256 or h < 256:
        profile.update(tiled=False, blockxsize=None, blockysize=None)
        profile = {k: v for k, v in profile.items() if v is not None}
    name, attrs = VARIABLES[cube.unit]
    with rasterio.Env(GTIFF_SRS_SOURCE="WKT"), rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        for i, text in enumerate(names, 1):
            dst.set_band_description(i, text)
        dst.update_tags(quantity=name, units=attrs["units"], source=cube.name)
