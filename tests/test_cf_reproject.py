"""External CF-netCDF forecasts on another grid, reprojected only when asked (#17 Deliver 4):
``CFForecast(path, reproject=True)`` samples the forecast at each dataset pixel centre.

The netCDF files here stand for another tool's output (written with xarray, radarcast's
export layout: time, lead_time, y, x and a ``crs`` grid-mapping variable).
"""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from radarcast.data.cf_forecast import CFForecast
from radarcast.data.georef import Georef
from radarcast.errors import RadarcastError

xr = pytest.importorskip("xarray")

SWISS = "EPSG:21781"
BOUNDS = (255000.0, -160000.0, 965000.0, 480000.0)
SHAPE = (64, 71)  # 10 km pixels
T0 = 1_600_000_000


@pytest.fixture
def dataset(tmp_path):
    from radarcast.data.store import DatasetWriter, open_dataset
    from radarcast.data.units import Units

    path = tmp_path / "geo.h5"
    with DatasetWriter(path, units=Units(), timestep_s=300, n_in=3, n_out=2,
                       command="test") as w:  # fmt: skip
        for i in range(8):
            w.append(np.full(SHAPE, 10 * i, np.uint8), T0 + 300 * i)
        w.finish((1.0, 0.0, 0.0), extra_attrs=Georef.from_bounds(SWISS, BOUNDS, SHAPE).attrs())
    with open_dataset(path) as ds:
        yield ds


def write_nc(path, crs: str, x: np.ndarray, y: np.ndarray, values: np.ndarray, unit="dBZ"):
    """One forecast at T0 + 600 s (window 0: inputs 0..2), 2 leads of ``values`` (H, W)."""
    data = np.stack([values, values + 1.0])[None].astype(np.float32)  # (1, 2, H, W)
    ds = xr.Dataset(
        {"reflectivity": (("time", "lead_time", "y", "x"), data,
                          {"units": unit, "grid_mapping": "crs"}),
         "crs": ((), np.int32(0), {"crs_wkt": pyproj.CRS(crs).to_wkt()})},
        coords={"time": np.array([T0 + 600], "datetime64[s]"),
                "lead_time": np.array([300, 600], "timedelta64[s]"),
                "x": ("x", x, {"units": "m"}), "y": ("y", y, {"units": "m"})},
    )  # fmt: skip
    ds.to_netcdf(path)
    return path


def swiss_axes(dx0: int, dy0: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of a 10 km grid in the dataset's CRS, starting dx0 columns west and
    dy0 rows north of the dataset's first pixel; y north to south."""
    x = BOUNDS[0] + (np.arange(w) + 0.5 - dx0) * 1e4
    y = BOUNDS[3] - (np.arange(h) + 0.5 - dy0) * 1e4
    return x, y


def test_other_grid_refused_unless_reprojection_is_asked(dataset, tmp_path):
    x, y = swiss_axes(5, 3, 90, 70)
    path = write_nc(tmp_path / "big.nc", SWISS, x, y, np.zeros((70, 90)))
    with CFForecast(path) as fc, pytest.raises(RadarcastError, match="--reproject samples it"):
        fc.check_matches(dataset)


def test_shifted_larger_grid_reprojects_exactly_to_the_cropped_one(dataset, tmp_path):
    rng = np.random.default_rng(0)
    big = rng.uniform(0, 60, (70, 72))  # dBZ; reaches 67 columns east of the dataset's x1
    x, y = swiss_axes(5, 3, 72, 70)
    path = write_nc(tmp_path / "big.nc", SWISS, x, y, big)
    cx, cy = swiss_axes(0, 0, 71, 64)
    crop = np.full((64, 71), np.nan)
    crop[:, :67] = big[3:67, 5:72]
    plain = write_nc(tmp_path / "crop.nc", SWISS, cx, cy, crop)
    with CFForecast(path, reproject=True) as fc, CFForecast(plain) as ref:
        fc.check_matches(dataset)
        ref.check_matches(dataset)
        assert fc.shape == ref.shape == (1, 2, *SHAPE)
        got, want = fc.pred(fc.row_of(0)), ref.pred(ref.row_of(0))
    assert np.isnan(got[..., 67:]).all()  # beyond the forecast's grid: unknown
    np.testing.assert_array_equal(got, want)


def shifted_swiss(east_m: float) -> str:
    """The dataset's Swiss CRS (EPSG:21781) as a PROJ string, its false easting moved by
    ``east_m``: the same x/y numbers then name points ``east_m`` farther west."""
    return ("+proj=somerc +lat_0=46.9524055555556 +lon_0=7.43958333333333 +k_0=1 "
            f"+x_0={600000 + east_m:g} +y_0=200000 +ellps=bessel +units=m +no_defs")  # fmt: skip


def test_the_dataset_x_y_in_another_crs_are_another_grid(dataset, tmp_path):
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 60, SHAPE)
    x, y = swiss_axes(0, 0, SHAPE[1], SHAPE[0])  # the dataset's own pixel-centre numbers
    path = write_nc(tmp_path / "shifted.nc", shifted_swiss(2e4), x, y, values)
    with CFForecast(path) as fc, pytest.raises(RadarcastError, match="in another CRS"):
        fc.check_matches(dataset)
    # reprojected, each dataset pixel takes the forecast pixel two columns east of it
    plain = write_nc(tmp_path / "plain.nc", SWISS, x, y, values)
    with CFForecast(path, reproject=True) as fc, CFForecast(plain) as ref:
        fc.check_matches(dataset)
        ref.check_matches(dataset)
        got, want = fc.pred(fc.row_of(0)), ref.pred(ref.row_of(0))
    assert "reprojected" in fc.config and "reprojected" not in ref.config
    np.testing.assert_array_equal(got[..., :-2], want[..., 2:])
    assert np.isnan(got[..., -2:]).all()


def test_the_same_crs_written_another_way_is_the_same_grid(dataset, tmp_path):
    x, y = swiss_axes(0, 0, SHAPE[1], SHAPE[0])
    path = write_nc(tmp_path / "proj4.nc", shifted_swiss(0.0), x, y, np.zeros(SHAPE))
    with CFForecast(path) as fc:
        fc.check_matches(dataset)  # a PROJ string, not the EPSG WKT: still the same places
        assert "reprojected" not in fc.config


def test_another_projection_lands_where_pyproj_puts_it(dataset, tmp_path):
    """A forecast on the European LAEA grid (EPSG:3035, 10 km) of a field that is a function
    of longitude and latitude: after reprojection each dataset pixel holds the field at its
    own lon/lat, up to the nearest neighbour's shift (at most ~7 km)."""

    def field(lon, lat):  # dBZ, 4-degree waves: ~16 dBZ per degree at the steepest
        return 30 + 10 * np.sin(2 * np.pi * lon / 4) * np.cos(2 * np.pi * lat / 4)

    laea = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True)
    cx, cy = laea.transform(10.5, 47.0)
    x = cx + (np.arange(-60, 60) + 0.5) * 1e4
    y = cy + (np.arange(45, -45, -1) - 0.5) * 1e4
    xx, yy = np.meshgrid(x, y)
    lon, lat = pyproj.Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True).transform(
        xx, yy)  # fmt: skip
    path = write_nc(tmp_path / "laea.nc", "EPSG:3035", x, y, field(lon, lat))
    with CFForecast(path, reproject=True) as fc:
        fc.check_matches(dataset)
        got = fc.pred(fc.row_of(0))[0, 0]  # lead 1, dataset pixels
    g = Georef.from_bounds(SWISS, BOUNDS, SHAPE)
    dlon, dlat = g.lonlat(SHAPE)
    want = dataset.units.to_pixel(field(dlon, dlat), "dbz")
    assert np.isfinite(got).all()
    err = np.abs(got - want)
    assert np.median(err) <= 2.0 and err.max() <= 8.0, (np.median(err), err.max())
    # the same field upside down (a y axis read the wrong way) would be far off
    assert np.median(np.abs(got[::-1] - want)) > 4 * np.median(err) + 2


def test_reprojection_needs_a_georeferenced_dataset_and_a_crs(tmp_path):
    from radarcast.data.store import DatasetWriter, open_dataset
    from radarcast.data.units import Units

    plain = tmp_path / "plain.h5"
    with DatasetWriter(plain, units=Units(), timestep_s=300, n_in=3, n_out=2,
                       command="test") as w:  # fmt: skip
        for i in range(8):
            w.append(np.zeros(SHAPE, np.uint8), T0 + 300 * i)
        w.finish((1.0, 0.0, 0.0))
    x, y = swiss_axes(0, 0, 72, 64)  # one column more: another grid
    path = write_nc(tmp_path / "f.nc", SWISS, x, y, np.zeros((64, 72)))
    with open_dataset(plain) as ds, CFForecast(path, reproject=True) as fc:
        with pytest.raises(RadarcastError, match="no geo-reference"):
            fc.check_matches(ds)
