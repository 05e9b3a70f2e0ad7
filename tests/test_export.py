"""Export: MeteoSwiss through pysteps → dataset → forecast → CF-netCDF / GeoTIFF / Zarr, checked
against pysteps' own grid and projection; ensembles keep their members; bad input refused."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from conftest import require_shared, run_cli
from typer.testing import CliRunner

from radarcast.cli import app

xr = pytest.importorskip("xarray")
pyproj = pytest.importorskip("pyproj")
rasterio = pytest.importorskip("rasterio")

PATTERN = "AQC%y%j%H%M?_"


@pytest.fixture(scope="module")
def mch(tmp_path_factory):
    """The pysteps metadata of the last of 5 MeteoSwiss GIFs, and a forecast made from them."""
    folder = require_shared("radar", "mch", "20150515")
    gifs = sorted(folder.glob("*.gif"))[:5]
    tmp = tmp_path_factory.mktemp("mch")
    for g in gifs:
        (tmp / "in").mkdir(exist_ok=True)
        (tmp / "in" / g.name).symlink_to(g)
    r = run_cli(
        "preprocess",
        tmp / "in",
        "-o",
        tmp / "mch.h5",
        "--format",
        "pysteps:mch_gif",
        "--time-pattern",
        PATTERN,
        "--n-in",
        "3",
        "--n-out",
        "2",
        "--split",
        "0,0,1",
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("forecast", tmp / "mch.h5", "-o", tmp / "fc.h5", "--method", "persistence")
    assert r.returncode == 0, r.stderr
    r = run_cli("export", tmp / "fc.h5", "-o", tmp / "fc.nc", "--units", "mm/h")
    assert r.returncode == 0, r.stderr
    with contextlib.redirect_stdout(io.StringIO()):
        import pysteps.io
    importer = pysteps.io.get_method("mch_gif", "importer")
    rain, _, meta = importer(str(gifs[2]), product="AQC", unit="mm", accutime=5.0)
    return tmp, meta, rain * 12.0  # mm per 5 min → mm/h


def test_netcdf_grid_and_crs_are_pysteps(mch):
    tmp, meta, _ = mch
    with xr.open_dataset(tmp / "fc.nc") as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"
        v = ds["precip_intensity"]
        assert v.dims == ("time", "lead_time", "y", "x") and v.attrs["grid_mapping"] == "crs"
        assert v.attrs["units"] == "mm h-1"
        # pixel centres exactly as pysteps' netCDF exporter computes them
        h, w = v.shape[-2:]
        x = np.linspace(meta["x1"], meta["x2"], w + 1)[:-1] + 0.5 * meta["xpixelsize"]
        y = np.linspace(meta["y1"], meta["y2"], h + 1)[:-1] + 0.5 * meta["ypixelsize"]
        np.testing.assert_allclose(ds["x"].values, x)
        np.testing.assert_allclose(ds["y"].values, y[::-1])  # yorigin 'upper'
        assert pyproj.CRS(ds["crs"].attrs["crs_wkt"]) == pyproj.CRS(meta["projection"])
        wgs84 = pyproj.Transformer.from_crs(meta["projection"], "EPSG:4326", always_xy=True)
        for i, j in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
            lon, lat = wgs84.transform(float(ds["x"][j]), float(ds["y"][i]))
            assert abs(float(ds["lon"][i, j]) - lon) < 1e-9
            assert abs(float(ds["lat"][i, j]) - lat) < 1e-9
        assert str(ds["time"].values[0])[:16] == "2015-05-15T15:55"  # 3rd frame: analysis
        np.testing.assert_array_equal(
            ds["lead_time"].values.astype("timedelta64[m]").astype(int), [5, 10]
        )
        assert ds["valid_time"].values[0, 1] == ds["time"].values[0] + np.timedelta64(10, "m")


def test_netcdf_values_are_pysteps_rain_within_one_pixel_step(mch):
    tmp, _, rain = mch  # persistence: lead 1 of the first forecast is the 3rd frame
    with xr.open_dataset(tmp / "fc.nc") as ds:
        got = ds["precip_intensity"].isel(time=0, lead_time=0).values
    assert np.array_equal(np.isnan(got), np.isnan(rain))  # the mask, exactly
    wet = rain > 0.2
    np.testing.assert_allclose(got[wet], rain[wet], rtol=0.06)  # HKO pixels: 0.27 dB steps


def test_geotiff_is_placed_like_pysteps_grid(mch):
    tmp, meta, _ = mch
    r = CliRunner().invoke(
        app,
        ["export", str(tmp / "fc.h5"), "-o", str(tmp / "fc.tif"), "--time", "2015-05-15T15:55Z"],
    )
    assert r.exit_code == 0, r.output
    with rasterio.open(tmp / "fc.tif") as src, xr.open_dataset(tmp / "fc.nc") as ds:
        t = src.transform
        assert (t.a, t.b, t.c, t.d, t.e, t.f) == (1000.0, 0.0, meta["x1"], 0.0, -1000.0, meta["y2"])
        assert pyproj.CRS(src.crs.to_wkt()) == pyproj.CRS(meta["projection"])
        assert src.count == 2 and src.descriptions[1] == "lead +10 min"
        band = src.read(2, masked=True)
        nc = ds["precip_intensity"].isel(time=0, lead_time=1).values
        np.testing.assert_array_equal(band.mask, np.isnan(nc))
        np.testing.assert_allclose(band.filled(np.nan), nc, equal_nan=True)


def test_zarr_round_trip(mch):
    tmp, _, _ = mch
    r = CliRunner().invoke(
        app, ["export", str(tmp / "fc.h5"), "-o", str(tmp / "fc.zarr"), "--units", "dBZ"]
    )
    assert r.exit_code == 0, r.output
    with (
        xr.open_zarr(tmp / "fc.zarr", consolidated=True) as z,  # written consolidated
        xr.open_dataset(tmp / "fc.nc") as nc,
    ):
        assert z["reflectivity"].attrs["units"] == "dBZ"
        np.testing.assert_array_equal(z["x"].values, nc["x"].values)
        assert z["reflectivity"].shape == nc["precip_intensity"].shape


def test_ensemble_cube_keeps_member_dimension(tmp_path):
    from radarcast.data.georef import Georef
    from radarcast.export import write_cube
    from radarcast.export.cube import Cube

    g = Georef.from_bounds("EPSG:3035", (0, 0, 8000, 6000), (6, 8))
    row = np.arange(3 * 2 * 6 * 8, dtype=np.float32).reshape(3, 2, 6, 8)  # (M, L, H, W)
    row[0, 0, 0, 0] = np.nan
    cube = Cube(
        "forecast",
        "ens",
        np.array([1_600_000_000]),
        np.array([300, 600]),
        3,
        (6, 8),
        lambda i: row,
        g,
        "mmh",
    )
    write_cube(cube, tmp_path / "e.nc")
    with xr.open_dataset(tmp_path / "e.nc") as ds:
        v = ds["precip_intensity"]
        assert v.dims == ("time", "lead_time", "member", "y", "x")
        assert list(ds["member"].values) == [1, 2, 3]
        np.testing.assert_array_equal(v.values[0], row.transpose(1, 0, 2, 3))  # NaN = fill
    write_cube(cube, tmp_path / "e.tif")
    with rasterio.open(tmp_path / "e.tif") as src:
        assert src.count == 6 and src.descriptions[3] == "member 2 lead +10 min"


def test_bad_exports_one_line_and_nothing_written(tiny_dataset, tmp_path):
    runner = CliRunner()
    cases = [
        ([str(tiny_dataset), "-o", str(tmp_path / "a.tif")], "no CRS — use --crs/--bounds"),
        ([str(tiny_dataset), "-o", str(tmp_path / "a.xyz")], "unknown output type '.xyz'"),
        ([str(tiny_dataset), "-o", str(tmp_path / "no" / "a.nc")], "does not exist"),
        ([str(tmp_path), "-o", str(tmp_path / "b.nc")], "no such file"),
    ]
    for args, message in cases:
        r = runner.invoke(app, ["export", *args])
        assert r.exit_code == 1, (args, r.output)
        assert message in " ".join(r.output.split()), r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.h5"]


def test_ensemble_forecast_file_exports_its_members(tiny_dataset, tmp_path):
    from radarcast.data.dataset import open_dataset
    from radarcast.data.forecast_writer import ForecastWriter

    rng = np.random.default_rng(0)
    pred = rng.integers(0, 200, (2, 3, 4, 64, 64)).astype(np.float32)  # (N, M, n_out, H, W)
    with open_dataset(tiny_dataset) as ds:
        starts = ds.windows(3, 4)[:2]
        with ForecastWriter(
            tmp_path / "e.h5",
            ds,
            starts,
            method="ens",
            config={},
            n_in=3,
            n_out=4,
            split=None,
            members=3,
        ) as w:
            w.write(pred)
            w.finish()
        times = ds.times[starts + 2]
    r = CliRunner().invoke(
        app, ["export", str(tmp_path / "e.h5"), "-o", str(tmp_path / "e.nc"), "--units", "pixel"]
    )
    assert r.exit_code == 0, r.output
    with xr.open_dataset(tmp_path / "e.nc") as ds:
        v = ds["pixel"]
        assert v.dims == ("time", "lead_time", "member", "y", "x") and "crs" not in ds
        assert ds.sizes["member"] == 3
        np.testing.assert_array_equal(v.values, pred.transpose(0, 2, 1, 3, 4))
        assert (ds["time"].values.astype("datetime64[s]").astype(np.int64) == times).all()


def _pysteps_export(gif, out_folder) -> None:
    """pysteps' own netCDF exporter: persistence of ``gif`` for two leads, in mm/h."""
    from datetime import datetime

    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps import io as pio
    rain, _, meta = pio.get_method("mch_gif", "importer")(str(gif), product="AQC", unit="mm",
                                                          accutime=5.0)
    meta = dict(meta, unit="mm/h")
    exp = pio.initialize_forecast_exporter_netcdf(str(out_folder), "pysteps",
                                                   datetime(2015, 5, 15, 15, 55), 5, 2,
                                                   rain.shape, meta, n_ens_members=1)
    pio.export_forecast_dataset(np.stack([rain * 12, rain * 12]), exp)
    pio.close_forecast_files(exp)


def test_evaluate_scores_a_pysteps_netcdf_nowcast_like_radarcast(mch):
    """pysteps' exporter writes persistence of the 3rd frame; scored through radarcast's
    conventions it gives exactly the counts of radarcast's own persistence."""
    import json

    tmp, _, _ = mch
    _pysteps_export(sorted((tmp / "in").iterdir())[2], tmp)
    r = run_cli(
        "evaluate",
        tmp / "mch.h5",
        "--forecast",
        tmp / "pysteps.nc",
        "--method",
        "persistence",
        "--split",
        "test",
        "--out",
        tmp / "scores",
    )
    assert r.returncode == 0, r.stderr
    methods = json.loads((tmp / "scores" / "scores.json").read_text())["methods"]
    assert [m["source"] for m in methods][1].endswith("pysteps.nc")
    ours, theirs = (m["per_lead"]["counts"] for m in methods)
    assert np.asarray(ours).sum() > 0 and ours == theirs


def test_grib2_of_an_fmi_nowcast_reads_back_with_eccodes(tmp_path):
    eccodes = pytest.importorskip("eccodes")
    folder = require_shared("radar", "fmi", "pgm", "20170509")
    pgm = sorted(folder.glob("*.pgm.gz"))[-1]
    common = [
        str(pgm),
        "--format",
        "pysteps:fmi_pgm",
        "--time-pattern",
        "%Y%m%d%H%M",
        "--method",
        "persistence",
        "--leads",
        "2",
    ]
    for name in ("n.grib2", "n.nc"):
        r = CliRunner().invoke(app, ["nowcast", *common, "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    messages = []
    with open(tmp_path / "n.grib2", "rb") as f:
        while (g := eccodes.codes_grib_new_from_file(f)) is not None:
            keys = ("gridType", "Nx", "Ny", "forecastTime", "dataDate", "dataTime")
            messages.append({k: eccodes.codes_get(g, k) for k in keys})
            if len(messages) == 1:
                lat = eccodes.codes_get_array(g, "latitudes").reshape(1226, 760)
                lon = eccodes.codes_get_array(g, "longitudes").reshape(1226, 760)
                values = eccodes.codes_get_values(g).reshape(1226, 760)
                missing = eccodes.codes_get(g, "missingValue")
            eccodes.codes_release(g)
    assert [m["forecastTime"] for m in messages] == [5, 10]
    assert messages[0] | {"forecastTime": 0} == {
        "gridType": "polar_stereographic",
        "Nx": 760,
        "Ny": 1226,
        "forecastTime": 0,
        "dataDate": 20170509,
        "dataTime": 1400,
    }
    with xr.open_dataset(tmp_path / "n.nc") as ds:  # rows north to south; GRIB south to north
        nc = ds["precip_intensity"].isel(time=0, lead_time=0).values[::-1]
        assert np.abs(lat - ds["lat"].values[::-1]).max() < 1e-4
        assert np.abs(lon - ds["lon"].values[::-1]).max() < 1e-4
    ok = np.isfinite(nc)
    assert (values[~ok] == missing).all()
    np.testing.assert_allclose(values[ok] * 3600.0, nc[ok], atol=1e-3)  # kg m-2 s-1 → mm/h


def test_grib2_on_the_opera_laea_grid_lands_where_pyproj_puts_it(tmp_path):
    """OPERA's composite projection (Lambert azimuthal equal-area, the GRIB2 template 3.140):
    ecCodes' own latitudes and longitudes of every pixel equal pyproj's, and the values come
    back in rows south to north."""
    eccodes = pytest.importorskip("eccodes")
    from PIL import Image

    from radarcast.data.georef import Georef

    opera = "+proj=laea +lat_0=55 +lon_0=10 +x_0=1950000 +y_0=-2100000 +ellps=WGS84 +units=m"
    h, w = 30, 40  # 2 km pixels around central Europe
    bounds = (1_900_000.0, -2_300_000.0, 1_980_000.0, -2_240_000.0)
    rng = np.random.default_rng(3)
    paths = []
    for m in (0, 5, 10):
        paths.append(tmp_path / f"r_20240101T00{m:02d}.png")
        Image.fromarray(rng.integers(0, 200, (h, w), np.uint8)).save(paths[-1])
    out = tmp_path / "n.grib2"
    r = CliRunner().invoke(app, ["nowcast", *map(str, paths), "--time-pattern", "r_%Y%m%dT%H%M",
                                 "--crs", opera, "--bounds", ",".join(map(str, bounds)),
                                 "--method", "persistence", "--leads", "2", "--units", "dBZ",
                                 "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    with open(out, "rb") as f:
        g = eccodes.codes_grib_new_from_file(f)
        try:
            assert eccodes.codes_get(g, "gridType") == "lambert_azimuthal_equal_area"
            lat = eccodes.codes_get_array(g, "latitudes").reshape(h, w)
            lon = eccodes.codes_get_array(g, "longitudes").reshape(h, w)
            values = eccodes.codes_get_values(g).reshape(h, w)
        finally:
            eccodes.codes_release(g)
    want_lon, want_lat = Georef.from_bounds(opera, bounds, (h, w)).lonlat((h, w))
    assert np.abs(lat - want_lat[::-1]).max() < 1e-5  # GRIB rows south to north
    assert np.abs((lon - want_lon[::-1] + 180) % 360 - 180).max() < 1e-5
    last = np.asarray(Image.open(paths[-1]), np.float64)  # persistence: the last frame
    np.testing.assert_allclose(values, (70 * last / 255 - 10)[::-1], atol=0.01)  # HKO scale


def test_grib2_refuses_the_swiss_projection(mch, tmp_path):
    pytest.importorskip("eccodes")
    r = CliRunner().invoke(app, ["export", str(mch[0] / "fc.h5"), "-o", str(tmp_path / "x.grib2")])
    assert r.exit_code == 1
    assert "GRIB2 has no grid template for the projection 'somerc'" in " ".join(r.output.split())
    assert not list(tmp_path.iterdir())


def test_evaluate_scores_only_the_windows_a_forecast_covers(tiny_dataset, tmp_path):
    from radarcast.evaluation import evaluate

    r = CliRunner().invoke(
        app,
        [
            "forecast",
            str(tiny_dataset),
            "-o",
            str(tmp_path / "p.h5"),
            "--split",
            "all",
            "--limit",
            "3",
        ],
    )
    assert r.exit_code == 0, r.output
    part = evaluate(tiny_dataset, ["persistence"], [tmp_path / "p.h5"], split="all")
    full = evaluate(tiny_dataset, ["persistence"], split="all", limit=3)
    assert len(part.starts) == 3 and part.coverage.startswith("3 of ")
    assert part.coverage.endswith("(those p.h5 covers)")
    want = full.methods[0].result()["counts"]
    np.testing.assert_array_equal(part.methods[0].result()["counts"], want)
    np.testing.assert_array_equal(part.methods[1].result()["counts"], want)
    r = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(tiny_dataset),
            "--forecast",
            str(tmp_path / "p.h5"),
            "--split",
            "all",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "scored 3 of" in r.output
