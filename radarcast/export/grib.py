"""A forecast as GRIB2 through ecCodes (the optional extra ``radarcast[grib]``).

One message per forecast, member and lead: product template 4.0 (4.1 with the member's
number for an ensemble), precipitation rate (discipline 0, category 1, number 52, in
kg m-2 s-1 = mm/s) or reflectivity (0, 15, 1, dB); the analysis time as the reference time,
the lead in minutes; masked pixels as missing through a bitmap. Grids: polar stereographic
(template 3.20) and Lambert azimuthal equal-area (3.140), the projections GRIB2 shares
with radar composites (FMI, OPERA); others (the Swiss oblique Mercator among them) have no
GRIB2 template and are refused by name. Rows are written south to north (scanning mode
0100), the south-west pixel first.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from radarcast.errors import RadarcastError
from radarcast.export.cube import Cube

PARAMETERS = {"mmh": (0, 1, 52, 1 / 3600.0), "dbz": (0, 15, 1, 1.0)}
MISSING = -9999.0


def _earth(crs) -> dict:
    """GRIB2 shape-of-the-earth keys for the CRS' ellipsoid."""
    e = crs.ellipsoid
    a, b = float(e.semi_major_metre), float(e.semi_minor_metre)
    if abs(a - b) < 1e-6:
        return {
            "shapeOfTheEarth": 1,
            "scaleFactorOfRadiusOfSphericalEarth": 0,
            "scaledValueOfRadiusOfSphericalEarth": int(round(a)),
        }
    if abs(a - 6378137.0) < 1e-3 and abs(1 / e.inverse_flattening - 1 / 298.257223563) < 1e-12:
        return {"shapeOfTheEarth": 5}
    return {
        "shapeOfTheEarth": 7,
        "scaleFactorOfEarthMajorAxis": 0,
        "scaledValueOfEarthMajorAxis": int(round(a)),
        "scaleFactorOfEarthMinorAxis": 0,
        "scaledValueOfEarthMinorAxis": int(round(b)),
    }


def grid_keys(georef, shape: tuple[int, int]) -> list[tuple[str, object]]:
    """The ordered (key, value) pairs of the grid definition; RadarcastError when GRIB2 has
    no template for the projection."""
    if georef is None:
        raise RadarcastError(
            "GRIB2 needs a geo-reference: no CRS — use --crs/--bounds at preprocess"
        )
    import warnings

    crs = georef.crs()
    with warnings.catch_warnings():  # "you will likely lose information": only read here
        warnings.simplefilter("ignore", UserWarning)
        params = crs.to_dict()
    proj = params.get("proj")
    h, w = shape
    if georef.yorigin != "upper":
        raise RadarcastError("GRIB2 export writes rows north to south (yorigin 'upper' only)")
    from pyproj import Transformer

    to_ll = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    # the south-west pixel first, rows south to north: the layout every GRIB2 reader follows
    lon0, lat0 = to_ll.transform(float(georef.x(w)[0]), float(georef.y(h)[-1]))
    first = [
        ("latitudeOfFirstGridPointInDegrees", float(lat0)),
        ("longitudeOfFirstGridPointInDegrees", float(lon0) % 360.0),
    ]
    scan = [("iScansNegatively", 0), ("jScansPositively", 1), ("jPointsAreConsecutive", 0)]
    if proj == "stere" and abs(abs(float(params.get("lat_0", 0))) - 90) < 1e-9:
        south = float(params["lat_0"]) < 0
        keys = [
            ("gridDefinitionTemplateNumber", 20),
            *_earth(crs).items(),
            ("Nx", w),
            ("Ny", h),
            *first,
            ("LaDInDegrees", float(params.get("lat_ts", params["lat_0"]))),
            ("orientationOfTheGridInDegrees", float(params.get("lon_0", 0)) % 360.0),
            ("DxInMetres", georef.xpixelsize),
            ("DyInMetres", georef.ypixelsize),
            ("projectionCentreFlag", 128 if south else 0),
        ]
        return keys + scan
    if proj == "laea":
        keys = [
            ("gridDefinitionTemplateNumber", 140),
            *_earth(crs).items(),
            ("numberOfPointsAlongXAxis", w),
            ("numberOfPointsAlongYAxis", h),
            *first,
            ("standardParallelInDegrees", float(params.get("lat_0", 0))),
            ("centralLongitudeInDegrees", float(params.get("lon_0", 0)) % 360.0),
            ("xDirectionGridLengthInMetres", georef.xpixelsize),
            ("yDirectionGridLengthInMetres", georef.ypixelsize),
        ]
        return keys + scan
    raise RadarcastError(
        f"GRIB2 has no grid template for the projection {proj!r}; it writes polar "
        "stereographic and Lambert azimuthal equal-area grids (use .nc or .tif)"
    )


def write_grib2(cube: Cube, tmp: Path) -> None:
    """Write every forecast, member and lead of ``cube`` as GRIB2 messages to ``tmp``."""
    try:
        import eccodes
    except ImportError:
        raise RadarcastError("GRIB2 export needs ecCodes: pip install 'radarcast[grib]'") from None
    if cube.kind != "forecast":
        raise RadarcastError("GRIB2 export writes forecasts, not a dataset's observations")
    if cube.unit not in PARAMETERS:
        raise RadarcastError("GRIB2 export writes --units mm/h or dBZ")
    grid = grid_keys(cube.georef, cube.grid)
    discipline, category, number, factor = PARAMETERS[cube.unit]
    with open(tmp, "wb") as f:
        for i, t0 in enumerate(cube.times):
            row = cube.read(i)  # ([M,] L, H, W)
            members = row if cube.members else row[None]
            when = datetime.fromtimestamp(int(t0), tz=timezone.utc)
            for m, leads in enumerate(members):
                for k, field in enumerate(leads):
                    gid = eccodes.codes_grib_new_from_samples("GRIB2")
                    try:
                        for key, value in grid:
                            eccodes.codes_set(gid, key, value)
                        _product(eccodes, gid, cube, m, discipline, category, number)
                        eccodes.codes_set(gid, "dataDate", int(when.strftime("%Y%m%d")))
                        eccodes.codes_set(gid, "dataTime", int(when.strftime("%H%M")))
                        eccodes.codes_set(gid, "indicatorOfUnitOfTimeRange", 0)  # minutes
                        eccodes.codes_set(gid, "forecastTime", int(cube.leads[k]) // 60)
                        field = field[::-1]  # (H, W) south to north
                        values = np.where(np.isnan(field), MISSING, field * factor)
                        eccodes.codes_set(gid, "bitmapPresent", 1)
                        eccodes.codes_set(gid, "missingValue", MISSING)
                        eccodes.codes_set_values(gid, values.astype(np.float64).ravel())
                        eccodes.codes_write(gid, f)
                    finally:
                        eccodes.codes_release(gid)


def _product(eccodes, gid, cube: Cube, m: int, discipline, category, number) -> None:
    if cube.members:
        eccodes.codes_set(gid, "productDefinitionTemplateNumber", 1)
        eccodes.codes_set(gid, "perturbationNumber", m + 1)
        eccodes.codes_set(gid, "numberOfForecastsInEnsemble", cube.members)
    eccodes.codes_set(gid, "discipline", discipline)
    eccodes.codes_set(gid, "parameterCategory", category)
    eccodes.codes_set(gid, "parameterNumber", number)
    eccodes.codes_set(gid, "typeOfFirstFixedSurface", 1)  # ground or water surface
    eccodes.codes_set(gid, "packingType", "grid_simple")
    eccodes.codes_set(gid, "bitsPerValue", 16)
