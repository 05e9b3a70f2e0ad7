"""The CF writer's lon/lat (pyproj on every 4th pixel, bicubic between, checked midway) agree
with pyproj at every pixel, and fall back to pyproj everywhere where interpolation cannot."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyproj")

from radarcast.data.georef import Georef  # noqa: E402
from radarcast.export import lonlat as ll  # noqa: E402

MCH = (
    "+proj=somerc +lon_0=7.43958333333333 +lat_0=46.9524055555556 +k_0=1 +x_0=600000 "
    "+y_0=200000 +ellps=bessel +towgs84=674.374,15.056,405.346,0,0,0,0 +units=m +no_defs"
)
FMI = (
    "+proj=stere +lon_0=25E +lat_0=90N +lat_ts=60 +a=6371288 +x_0=380886.310 "
    "+y_0=3395677.920 +no_defs"
)
GRIDS = {  # the MeteoSwiss and FMI products' grids, and 2 km LAEA Europe (OPERA's CRS)
    "mch": (MCH, (255000, -160000, 965000, 480000), (640, 710)),
    "fmi": (FMI, (0.005, 0.0097, 759752.285, 1225544.659), (1226, 760)),
    "laea": ("EPSG:3035", (2000000, 1000000, 4000000, 3000000), (1000, 1000)),
}


@pytest.mark.parametrize("name", GRIDS)
def test_interpolated_lonlat_is_pyproj_to_1e9_degrees(name, monkeypatch):
    crs, bounds, shape = GRIDS[name]
    g = Georef.from_bounds(crs, bounds, shape)
    want_lon, want_lat = g.lonlat(shape)

    def everywhere(*args):
        raise AssertionError("fell back to pyproj at every pixel")

    monkeypatch.setattr(Georef, "lonlat", everywhere)  # the fast path must hold here
    lon, lat = ll.lonlat(g, shape)
    assert lon.shape == lat.shape == shape and lon.dtype == np.float64
    assert np.abs(lon - want_lon).max() <= ll.LONLAT_TOL
    assert np.abs(lat - want_lat).max() <= ll.LONLAT_TOL


@pytest.mark.parametrize(
    "crs, bounds",
    [
        ("+proj=merc +lon_0=180 +datum=WGS84", (-500000, 0, 500000, 800000)),  # lon wraps
        ("+proj=stere +lat_0=90 +lon_0=0 +lat_ts=60 +datum=WGS84", (-4e5, -4e5, 4e5, 4e5)),
        ("EPSG:3035", (2000000, 1000000, 6000000, 5500000)),  # 83 km pixels: cubic errs 0.01°
    ],
    ids=["antimeridian", "pole", "coarse"],
)
def test_grids_interpolation_cannot_serve_get_pyproj_everywhere(crs, bounds):
    g = Georef.from_bounds(crs, bounds, (40, 48))
    want = g.lonlat((40, 48))
    got = ll.lonlat(g, (40, 48))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_small_grid_is_pyproj_everywhere():
    g = Georef.from_bounds("EPSG:3035", (4000000, 3000000, 4010000, 3008000), (8, 10))
    np.testing.assert_array_equal(ll.lonlat(g, (8, 10))[0], g.lonlat((8, 10))[0])


def test_prefetched_lonlat_is_what_the_writer_uses():
    g = Georef.from_bounds("EPSG:3035", (4000000, 3000000, 4048000, 3036000), (36, 48))
    ll._LONLAT.clear()
    ll.prefetch_lonlat(g, (36, 48))
    first = ll.cached_lonlat(g, (36, 48))
    assert ll.cached_lonlat(g, (36, 48)) is first  # kept for the next write on the grid
    np.testing.assert_allclose(first[0], g.lonlat((36, 48))[0], atol=ll.LONLAT_TOL, rtol=0)
    assert not first[0].flags.writeable
