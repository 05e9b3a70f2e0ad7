"""radarcast.animation and `radarcast animate`: layout, colours, overlay, files, CLI."""

from __future__ import annotations

import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import require_shared, run_cli

from radarcast import animation as A
from radarcast.data.units import Units
from radarcast.errors import RadarcastError

HKO = Units()
GREEN_30 = (0, 142, 0)  # the 30-35 dBZ level of the radar map


def make_panels(n_in=3, n_out=4, shape=(20, 30), n_methods=2, seed=0) -> A.WindowPanels:
    rng = np.random.default_rng(seed)
    h, w = shape
    times = 1_600_000_000 + 300 * np.arange(n_in + n_out, dtype=np.int64)
    return A.WindowPanels(
        source="test.h5", start=7, times=times,
        x=rng.integers(0, 256, (n_in, h, w), dtype=np.uint8), mask_x=np.ones((n_in, h, w), bool),
        y=rng.integers(0, 256, (n_out, h, w), dtype=np.uint8), mask_y=np.ones((n_out, h, w), bool),
        methods=tuple(f"m{i}" for i in range(n_methods)),
        preds=rng.integers(0, 256, (n_methods, n_out, h, w), dtype=np.uint8),
        pred_valid=np.ones((n_methods, n_out, h, w), bool),
    )


def upscale(rgb: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)


def cell_of(frame: np.ndarray, grid: A.Grid, r: int, c: int) -> np.ndarray:
    y, x = grid.box(r, c)
    return frame[y : y + grid.h, x : x + grid.w]


# --------------------------------------------------------------------------- layout
@pytest.mark.parametrize("k", [1, 3])
def test_frame_count_size_and_upscaled_cells(k):
    panels = make_panels()
    cfg = A.AnimateConfig(scale=k)
    scale = A.colour_scale(HKO, "dbz", "radar")
    frames = list(A.animation_frames(panels, scale, cfg))
    grid = A.animation_grid(panels, scale, cfg)
    assert len(frames) == 3 + 4
    assert {f.shape for f in frames} == {(grid.height, grid.width, 3)}
    assert (grid.h, grid.w) == (20 * k, 30 * k)
    last = frames[-1]  # lead 4: Input holds x[-1], Truth y[3], method 1 preds[1, 3]
    assert np.array_equal(cell_of(last, grid, 0, 0), upscale(scale.lut[panels.x[-1]], k))
    assert np.array_equal(cell_of(last, grid, 0, 1), upscale(scale.lut[panels.y[3]], k))
    assert np.array_equal(cell_of(last, grid, 0, 3), upscale(scale.lut[panels.preds[1, 3]], k))


def test_input_plays_then_holds_and_methods_wait():
    panels = make_panels()
    scale = A.colour_scale(HKO)
    cfg = A.AnimateConfig(scale=1)
    frames = list(A.animation_frames(panels, scale, cfg))
    grid = A.animation_grid(panels, scale, cfg)
    assert np.array_equal(cell_of(frames[1], grid, 0, 0), scale.lut[panels.x[1]])
    assert np.array_equal(cell_of(frames[5], grid, 0, 0), scale.lut[panels.x[2]])
    assert (cell_of(frames[0], grid, 0, 2) == 255).all()  # no forecast before t0


def test_contact_sheet_grid_and_leads():
    panels = make_panels(n_in=5, n_out=12)
    cfg = A.AnimateConfig(scale=2, leads=(1, 4, 12))
    scale = A.colour_scale(HKO)
    sheet = A.contact_sheet(panels, scale, cfg)
    grid = A.sheet_grid(panels, scale, cfg)
    assert sheet.shape == (grid.height, grid.width, 3)
    # rows Input, Truth, m0, m1; columns leads 1, 4, 12
    assert np.array_equal(cell_of(sheet, grid, 3, 2), upscale(scale.lut[panels.preds[1, 11]], 2))
    assert np.array_equal(cell_of(sheet, grid, 1, 1), upscale(scale.lut[panels.y[3]], 2))
    assert np.array_equal(cell_of(sheet, grid, 0, 2), upscale(scale.lut[panels.x[4]], 2))
    assert A.sheet_leads(None, 12) == [1, 5, 8, 12]
    assert A.sheet_leads(None, 2) == [1, 2]


def test_sheet_leads_out_of_range():
    with pytest.raises(RadarcastError, match="leads 1..4"):
        A.sheet_leads((1, 5), 4)


# --------------------------------------------------------------------------- colours
@pytest.mark.parametrize(
    ("pixel", "colour"),
    [
        (0, (255, 255, 255)),  # -10 dBZ: dry, white
        (36, (255, 255, 255)),  # -0.1 dBZ
        (55, (4, 233, 231)),  # 5.1 dBZ: lowest level
        (145, (1, 197, 1)),  # 29.8 dBZ: 25-30 level
        (146, GREEN_30),  # 30.1 dBZ
        (255, (188, 0, 0)),  # 60 dBZ
    ],
)
def test_radar_colour_at_known_pixels(pixel, colour):
    scale = A.colour_scale(HKO, "dbz", "radar")
    assert tuple(scale.lut[pixel]) == colour


def test_pixel_units_draw_like_dbz_and_mmh_levels():
    dbz = A.colour_scale(HKO, "dbz")
    assert np.array_equal(A.colour_scale(HKO, "pixel").lut, dbz.lut)
    mmh = A.colour_scale(HKO, "mmh")
    p = int(np.ceil(HKO.rain_to_pixel(10.0)))  # first pixel level at ≥ 10 mm/h
    assert tuple(mmh.lut[p]) == tuple(A.RADAR_RGB[list(A.MMH_LEVELS).index(10)])
    assert tuple(mmh.lut[p - 1]) == tuple(A.RADAR_RGB[list(A.MMH_LEVELS).index(7)])


def test_grey_map_is_grey_and_darkens():
    lut = A.colour_scale(HKO, "dbz", "grey").lut
    assert (lut[:, 0] == lut[:, 1]).all() and (lut[:, 1] == lut[:, 2]).all()
    assert lut[0, 0] == 255 and lut[100, 0] > lut[200, 0]


def test_mmh_without_zr_is_refused():
    with pytest.raises(RadarcastError, match="Z-R"):
        A.colour_scale(Units(zr_a=None, zr_b=None), "mmh")


def test_masked_pixels_drawn_in_nodata_hatch():
    scale = A.colour_scale(HKO)
    pixels = np.full((12, 12), 146, np.uint8)
    valid = np.ones((12, 12), bool)
    valid[:, :6] = False
    rgb = A.colourise(pixels, valid, scale)
    masked = {tuple(c) for c in rgb[~valid]}
    assert masked == {tuple(c) for c in scale.nodata}  # both hatch colours, nothing else
    assert {tuple(c) for c in rgb[valid]} == {GREEN_30}


def test_overlay_colours_on_constructed_case():
    scale = A.colour_scale(HKO)
    event = scale.values >= 30.0
    pred = np.array([[200, 200, 0], [0, 200, 0]], np.uint8)
    truth = np.array([[200, 0, 200], [0, 200, 200]], np.uint8)
    valid = np.array([[1, 1, 1], [1, 0, 1]], bool)
    rgb = A.contingency_rgb(pred, truth, valid, event, scale)
    assert tuple(rgb[0, 0]) == A.OVERLAY_RGB["hit"]
    assert tuple(rgb[0, 1]) == A.OVERLAY_RGB["false alarm"]
    assert tuple(rgb[0, 2]) == A.OVERLAY_RGB["miss"]
    assert tuple(rgb[1, 0]) == (255, 255, 255)
    assert tuple(rgb[1, 1]) in {tuple(c) for c in scale.nodata}
    assert len({tuple(c) for c in A.OVERLAY_RGB.values()}) == 3


def test_overlay_in_animation_frame():
    panels = make_panels(n_methods=1)
    panels.preds[0, 0] = 200
    panels.y[0] = 0
    cfg = A.AnimateConfig(scale=1, overlay=30.0)
    scale = A.colour_scale(HKO)
    frame = list(A.animation_frames(panels, scale, cfg))[3]  # first lead
    grid = A.animation_grid(panels, scale, cfg)
    cell = cell_of(frame, grid, 0, 2)
    assert (cell == A.OVERLAY_RGB["false alarm"]).all()


def test_config_refuses_bad_values():
    with pytest.raises(RadarcastError, match="units"):
        A.AnimateConfig(units="inches")


# --------------------------------------------------------------------------- files
def frames_for_files():
    panels = make_panels(n_methods=1)
    cfg = A.AnimateConfig(scale=2)
    scale = A.colour_scale(HKO)
    return list(A.animation_frames(panels, scale, cfg)), A.contact_sheet(panels, scale, cfg)


def test_gif_reads_back(tmp_path):
    frames, _ = frames_for_files()
    path = A.write_output(tmp_path / "a.gif", iter(frames), fps=5)
    back = iio.imread(path, index=None)
    assert back.shape == (len(frames), *frames[0].shape)
    assert np.abs(back.astype(int) - np.stack(frames)).max() <= 8  # palette quantisation
    assert iio.immeta(path)["duration"] == 200
    assert [p.name for p in tmp_path.iterdir()] == ["a.gif"]  # no temporary left


def test_png_reads_back_exactly(tmp_path):
    _, sheet = frames_for_files()
    path = A.write_output(tmp_path / "a.png", sheet)
    assert np.array_equal(iio.imread(path), sheet)


def test_mp4_reads_back(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="the video extra is not installed")
    frames, _ = frames_for_files()
    path = A.write_output(tmp_path / "a.mp4", iter(frames), fps=4)
    back = iio.imread(path, index=None, plugin="FFMPEG")
    h, w = frames[0].shape[:2]
    assert len(back) == len(frames)
    assert back.shape[1] % 16 == 0 and back.shape[2] % 16 == 0
    assert back.shape[1] - h < 16 and back.shape[2] - w < 16


def test_mp4_without_video_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(RadarcastError, match=r"pip install 'radarcast\[video\]'"):
        A.check_format("out.mp4")


def test_failed_write_leaves_nothing(tmp_path):
    def broken():
        yield np.zeros((8, 8, 3), np.uint8)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        A.write_output(tmp_path / "a.gif", broken())
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- CLI
def cli(*args):
    return subprocess.run([sys.executable, "-m", "radarcast", "animate", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def write_persistence_forecast(dataset_path, out, n_in=3, n_out=4):
    from radarcast.data.forecast_writer import ForecastWriter
    from radarcast.data.store import open_dataset
    from radarcast.forecasters import resolve

    with open_dataset(dataset_path) as ds:
        starts = ds.windows(n_in, n_out, "train")[:5]
        f = resolve("persistence", ds, n_in=n_in, n_out=n_out)
        with ForecastWriter(out, ds, starts, method="file-persistence", config={}, n_in=n_in,
                            n_out=n_out, split="train") as w:
            w.write(f(np.stack([ds.window(int(s), n_in, n_out).x for s in starts])))
            w.finish()
    return out


def test_cli_end_to_end(tiny_dataset, tmp_path):
    fc = write_persistence_forecast(tiny_dataset, tmp_path / "fc.h5")
    gif = tmp_path / "out.gif"
    r = cli(tiny_dataset, "--window", 2, "--split", "train", "--method", "persistence",
            "--forecast", fc, "-o", gif, "--units", "mmh", "--overlay", 1)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    frames = iio.imread(gif, index=None)
    assert len(frames) == 3 + 4
    png = tmp_path / "out.png"
    r = cli(tiny_dataset, "--time", "2020-09-13T12:46:40Z", "--split", "train", "-m",
            "persistence", "-f", fc, "-o", png, "--leads", "1,4", "--scale", "1")
    assert r.returncode == 0, r.stderr
    assert iio.imread(png).ndim == 3


def another_dataset(path):
    from radarcast.data.store import DatasetWriter

    with DatasetWriter(path, units=HKO, timestep_s=300, n_in=3, n_out=4, command="test") as w:
        for i in range(20):
            w.append(np.full((64, 64), i, np.uint8), 1_700_000_000 + 300 * i)
        w.finish()
    return path


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        ("window", ["--window", 500, "--split", "train"], "out of range"),
        ("time", ["--time", "2001-01-01T00:00Z"], "no frame at"),
        ("units", ["--window", 0, "--split", "train", "--units", "inch"], "unknown units"),
        ("ext", ["--window", 0, "--split", "train"], "unsupported output"),
        ("other", ["--window", 0, "--split", "train"], "another dataset"),
        ("exists", ["--window", 0, "--split", "train"], "exists"),
        ("notinfile", ["--window", 20, "--split", "train"], "has no forecast for the window"),
    ],
)
def test_cli_bad_input_one_line_no_file(tiny_dataset, tmp_path, case, args, message):
    out = tmp_path / ("out.jpg" if case == "ext" else "out.gif")
    extra = []
    if case == "other":
        other = another_dataset(tmp_path / "other.h5")
        extra = ["--forecast", write_persistence_forecast(other, tmp_path / "fc.h5")]
    if case == "notinfile":  # the file holds the first 5 train windows only
        extra = ["--forecast", write_persistence_forecast(tiny_dataset, tmp_path / "fc.h5")]
    if case == "exists":
        out.write_bytes(b"old")
    r = run_cli("animate", tiny_dataset, *args, *extra, "-o", out)  # in-process
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    if case == "exists":
        assert out.read_bytes() == b"old"
    else:
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_real_meteoswiss_window_hatches_outside_coverage(tmp_path):
    """Real MeteoSwiss composites: DN 255 (outside radar coverage) must not look dry."""
    from datetime import datetime, timezone

    from PIL import Image

    from radarcast.data.store import DatasetWriter, open_dataset
    from radarcast.data.units import PRESETS

    files = sorted(require_shared("radar", "mch", "20160711").glob("*.gif"))[:7]
    path = tmp_path / "mch.h5"
    with DatasetWriter(path, units=PRESETS["mch"], timestep_s=300, n_in=3, n_out=4,
                       command="test") as w:
        for f in files:
            t = datetime.strptime(f.name[3:12], "%y%j%H%M").replace(tzinfo=timezone.utc)
            dn = np.asarray(Image.open(f))  # palette index = DN
            w.append(dn.astype(np.uint8), int(t.timestamp()), mask=dn != 255)
        w.finish((0.0, 0.0, 1.0))
    with open_dataset(path) as ds:
        panels = A.gather_panels(ds, 0, 3, 4, ["persistence"])
        scale = A.colour_scale(ds.units, "mmh")
    cfg = A.AnimateConfig(scale=1, leads=(4,))
    sheet = A.contact_sheet(panels, scale, cfg)
    truth = cell_of(sheet, A.sheet_grid(panels, scale, cfg), 1, 0)  # Truth at lead 4
    outside = ~panels.mask_y[3]
    assert outside.any() and (~outside).any()
    assert {tuple(c) for c in truth[outside]} == {tuple(c) for c in scale.nodata}
    assert (truth[~outside] == 255).all(axis=-1).mean() > 0.5  # mostly dry, white
