"""Geo-referencing: pysteps/ODIM metadata in, grid operations, HDF5 attributes, lon/lat."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from conftest import require_shared

from radarcast.data.georef import Georef, georef_from_attrs, read_odim_georef
from radarcast.errors import RadarcastError

pyproj = pytest.importorskip("pyproj")

SWISS = (
    "+proj=somerc +lon_0=7.43958333333333 +lat_0=46.9524055555556 +k_0=1 +x_0=600000 "
    "+y_0=200000 +ellps=bessel +towgs84=674.374,15.056,405.346,0,0,0,0 +units=m +no_defs"
)
MCH = {
    "projection": SWISS,
    "x1": 255000.0,
    "y1": -160000.0,
    "x2": 965000.0,
    "y2": 480000.0,
    "xpixelsize": 1000.0,
    "ypixelsize": 1000.0,
    "cartesian_unit": "m",
    "yorigin": "upper",
}


def test_pysteps_metadata_gives_pixel_centres_and_crs():
    g = Georef.from_pysteps(MCH)
    assert g.grid_shape() == (640, 710)
    assert g.x()[0] == 255500.0 and g.x()[-1] == 964500.0
    assert g.y()[0] == 479500.0 and g.y()[-1] == -159500.0  # row 0 is the north
    assert pyproj.CRS(g.crs_wkt) == pyproj.CRS(SWISS)
    assert g.transform() == (255000.0, 1000.0, 0.0, 480000.0, 0.0, -1000.0)


def test_lonlat_of_bern_centre():
    """The Swiss grid's false origin (600 km, 200 km) is the old Bern observatory, at
    46° 57' 3.9" N, 7° 26' 19.1" E in WGS 84 (swisstopo)."""
    g = Georef.from_pysteps({**MCH, "x1": 599500.0, "x2": 600500.0, "y1": 199500.0, "y2": 200500.0})
    lon, lat = g.lonlat()
    assert lon.shape == (1, 1)
    assert abs(lon[0, 0] - (7 + 26 / 60 + 19.1 / 3600)) < 1e-4  # 0.1" is 3 m
    assert abs(lat[0, 0] - (46 + 57 / 60 + 3.9 / 3600)) < 1e-4


def test_crop_and_downsample_follow_rows_from_the_north():
    g = Georef.from_pysteps(MCH)
    c = g.crop(10, 110, 20, 220)  # rows 10..109 from the north, columns 20..219
    assert c.grid_shape() == (100, 200)
    assert (c.x1, c.x2, c.y1, c.y2) == (275000.0, 475000.0, 370000.0, 470000.0)
    np.testing.assert_array_equal(c.x(), g.x()[20:220])
    np.testing.assert_array_equal(c.y(), g.y()[10:110])
    d = g.downsample(3, (640, 710))  # 213 x 236 blocks; the last row/columns dropped
    assert d.grid_shape() == (213, 236)
    assert d.x()[0] == np.mean(g.x()[:3]) and d.y()[0] == np.mean(g.y()[:3])
    assert d.y2 == g.y2 and d.x1 == g.x1


def test_lower_origin_rows_run_from_the_south():
    g = Georef.from_pysteps({**MCH, "yorigin": "lower"})
    assert g.y()[0] == -159500.0
    c = g.crop(0, 10, 0, 10)
    assert (c.y1, c.y2) == (-160000.0, -150000.0)


def test_attrs_round_trip_and_damage():
    g = Georef.from_pysteps(MCH)
    assert georef_from_attrs(g.attrs()) == g
    assert georef_from_attrs({"dbz_gain": 1.0}) is None
    broken = g.attrs()
    del broken["geo_x2"]
    with pytest.raises(RadarcastError, match="geo_x2"):
        georef_from_attrs(broken, "f.h5")


def test_bounds_flags_and_bad_ones():
    g = Georef.from_bounds("EPSG:21781", (255000, -160000, 965000, 480000), (640, 710))
    assert (g.xpixelsize, g.ypixelsize) == (1000.0, 1000.0)
    assert g.crs().to_epsg() == 21781
    with pytest.raises(RadarcastError, match="--crs 'EPSG:999999'"):
        Georef.from_bounds("EPSG:999999", (0, 0, 1, 1), (1, 1))
    with pytest.raises(RadarcastError, match="x1 > x0"):
        Georef.from_bounds("EPSG:21781", (10, 0, 0, 1), (1, 1))
    with pytest.raises(RadarcastError, match="640x710 grid, the data are 64x71"):
        g.check_shape((64, 71))


def test_odim_where_matches_pysteps_opera_importer():
    folder = require_shared("radar", "OPERA", "20180824")
    path = sorted(folder.glob("*.hdf"))[0]
    with contextlib.redirect_stdout(io.StringIO()):
        import pysteps.io
    _, _, meta = pysteps.io.get_method("opera_hdf5", "importer")(str(path))
    g = read_odim_georef(path)
    for k in ("x1", "y1", "x2", "y2", "xpixelsize", "ypixelsize"):
        assert abs(getattr(g, k) - float(meta[k])) < 0.01, k
    assert pyproj.CRS(g.crs_wkt) == pyproj.CRS(meta["projection"])


def test_map_overlay_lines_on_100_km_and_a_scale_bar():
    from radarcast.animation.geo import map_overlay, nice_length_km

    assert nice_length_km(710) == 100 and nice_length_km(48) == 10
    assert map_overlay(None, (640, 710)) is None
    draw, caption = map_overlay(Georef.from_pysteps(MCH), (640, 710))
    assert caption == "dotted lines every 100 km of the projection"
    out = draw(np.full((640, 710, 3), 255, np.uint8))
    changed = (out != 255).any(axis=2)
    # x of column j is 255.5 + j km: the 300 km line is column 45, the 400 km one column 145
    assert changed[0:600:3, 45].all() and changed[0:600:3, 145].all()
    assert not changed[1:600, 44].any()
    # y of row i is 479.5 - i km: the 400 km line lies between rows 79 and 80
    assert changed[80, 0:600:3].all() and not changed[79, 300:600].any()
    assert changed[-4, 4:104].all()  # the 100 km bar: 100 pixels of 1 km, bottom left
