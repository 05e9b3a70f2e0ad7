"""Maps in animations (#17 Deliver 5): km grid lines or a lon/lat graticule placed by
pyproj, a scale bar, in a real GIF decoded back.

The expected line pixels are computed here independently of radarcast.animation.geo:
from the grid's edges (km lines) and from pyproj's forward transform of points on each
meridian and parallel (graticule).
"""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
from conftest import run_cli
from PIL import Image, ImageSequence

from radarcast import animation as A
from radarcast.animation.geo import _bar, graticule, map_overlay
from radarcast.data.georef import Georef
from radarcast.data.units import Units

SWISS = "EPSG:21781"
BOUNDS = (255000.0, -160000.0, 965000.0, 480000.0)  # MeteoSwiss' composite, 710 x 640 km
SHAPE = (64, 71)  # 10 km pixels


def georef() -> Georef:
    return Georef.from_bounds(SWISS, BOUNDS, SHAPE)


def pixel_of(lon: float, lat: float) -> tuple[float, float]:
    """(row, column) of a WGS 84 point on the grid, fractional, pixel centres at integers."""
    x, y = pyproj.Transformer.from_crs("EPSG:4326", SWISS, always_xy=True).transform(lon, lat)
    x1, _, _, y2 = BOUNDS
    return (y2 - y) / 10000.0 - 0.5, (x - x1) / 10000.0 - 0.5


def test_graticule_lies_where_pyproj_puts_meridians_and_parallels():
    lines, step = graticule(georef(), SHAPE)
    assert step == 2  # about 10 degrees of longitude across: 2-degree lines
    hits = 0
    for lon in (6.0, 8.0, 10.0, 12.0, 14.0):  # points along each meridian
        for lat in np.arange(45.0, 50.5, 0.1):
            r, c = pixel_of(lon, lat)
            i, j = round(r), int(np.floor(c))
            if 1 <= i < SHAPE[0] - 1 and 1 <= j < SHAPE[1] - 2:
                assert lines[i, j - 1 : j + 2].any(), (lon, lat, i, j)
                hits += 1
    for lat in (46.0, 48.0, 50.0):  # and along each parallel
        for lon in np.arange(5.0, 16.0, 0.1):
            r, c = pixel_of(lon, lat)
            i, j = int(np.floor(r)), round(c)
            if 1 <= i < SHAPE[0] - 2 and 1 <= j < SHAPE[1] - 1:
                assert lines[i - 1 : i + 2, j].any(), (lon, lat, i, j)
                hits += 1
    assert hits > 200
    # and nothing far from a line: every drawn pixel is within ~1.5 px of a meridian or
    # parallel (degrees per pixel from pyproj's lon/lat of neighbouring pixel centres)
    x1, _, _, y2 = BOUNDS
    cols, rows = np.meshgrid(np.arange(SHAPE[1]), np.arange(SHAPE[0]))
    to_ll = pyproj.Transformer.from_crs(SWISS, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(x1 + (cols + 0.5) * 1e4, y2 - (rows + 0.5) * 1e4)
    per_px = max(np.abs(np.diff(lon, axis=1)).max(), np.abs(np.diff(lat, axis=0)).max())
    off = np.minimum(np.abs(lon - step * np.round(lon / step)),
                     np.abs(lat - step * np.round(lat / step)))  # fmt: skip
    assert (off[lines] <= 1.5 * per_px).all()
    assert lines.mean() < 0.25


def test_map_none_and_no_georef_draw_nothing():
    assert map_overlay(georef(), SHAPE, "none") is None
    assert map_overlay(None, SHAPE, "lonlat") is None
    with pytest.raises(Exception, match="unknown --map 'mercator'"):
        A.AnimateConfig(map_grid="mercator")


@pytest.fixture
def geo_dataset(tmp_path):
    from radarcast.data.store import DatasetWriter

    path = tmp_path / "geo.h5"
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    with DatasetWriter(path, units=Units(), timestep_s=300, n_in=3, n_out=4,
                       command="test") as w:  # fmt: skip
        for i in range(12):
            blob = 180 * np.exp(-((xx - 20 - i) ** 2 + (yy - 30) ** 2) / 80.0)
            w.append(blob.astype(np.uint8), 1_600_000_000 + 300 * i)
        w.finish((1.0, 0.0, 0.0), extra_attrs=georef().attrs())
    return path


def last_frame(path) -> np.ndarray:
    """The GIF's last frame (lead 4: every panel drawn), decoded to RGB."""
    with Image.open(path) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    assert len(frames) == 3 + 4
    return frames[-1]


def expected_km_lines() -> np.ndarray:
    """Every 100 km of x and y (the largest 1-2-5 length ≤ a quarter of 710 km), dotted."""
    x1, _, _, y2 = BOUNDS
    x = (x1 + (np.arange(SHAPE[1]) + 0.5) * 1e4) / 1e5  # in units of 100 km
    y = (y2 - (np.arange(SHAPE[0]) + 0.5) * 1e4) / 1e5
    cols = np.flatnonzero(np.floor(x[1:]) != np.floor(x[:-1])) + 1
    rows = np.flatnonzero(np.floor(y[1:]) != np.floor(y[:-1])) + 1
    lines = np.zeros(SHAPE, bool)
    lines[np.ix_(rows, np.arange(0, SHAPE[1], 3))] = True
    lines[np.ix_(np.arange(0, SHAPE[0], 3), cols)] = True
    return lines


@pytest.mark.parametrize("grid", ["km", "lonlat"])
def test_gif_panels_carry_the_lines_and_a_100_km_scale_bar(geo_dataset, tmp_path, grid):
    out = {}
    for g in (grid, "none"):
        out[g] = tmp_path / f"{g}.gif"
        r = run_cli("animate", str(geo_dataset), "-o", str(out[g]), "--window", "0",
                    "--split", "train", "-m", "persistence", "--scale", "1",
                    "--max-width", "0", "--map", g)  # fmt: skip
        assert r.returncode == 0, r.stderr
    on, off = last_frame(out[grid]), last_frame(out["none"])
    assert on.shape == off.shape
    scale = A.colour_scale(Units(), "dbz")
    layout = A.Grid(1, 3, SHAPE, 1, title="", col_titles=["Input", "Truth", "persistence"],
                    scale=scale, legend=[])  # fmt: skip
    bar = _bar(10, "100 km")  # 100 km = 10 pixels of 10 km
    bh, bw = bar.shape[:2]
    for c in range(3):  # Input, Truth and the method's panel alike
        y, x = layout.box(0, c)
        panel_on = on[y : y + SHAPE[0], x : x + SHAPE[1]].astype(int)
        panel_off = off[y : y + SHAPE[0], x : x + SHAPE[1]].astype(int)
        # the scale bar, lower left (its label's anti-aliased greys may take the nearest
        # colour of the GIF's one palette)
        assert np.abs(panel_on[-bh:, :bw] - bar).max() <= 8, c
        assert (panel_on[-4, 4:15] == 0).all() and (panel_on[-4, 15:bw] != 0).any(axis=-1).all()
        changed = (panel_on != panel_off).any(axis=-1)
        expected = expected_km_lines() if grid == "km" else graticule(georef(), SHAPE)[0]
        outside_bar = np.ones(SHAPE, bool)
        outside_bar[-bh:, :bw] = False
        assert np.array_equal(changed[outside_bar], expected[outside_bar]), c
        assert expected[outside_bar].sum() > 50


BIG = (640, 710)  # MeteoSwiss' composite at its 1 km pixels: large enough for labels


def parse_degrees(text: str) -> float:
    sign = -1.0 if text[-1] in "WS" else 1.0
    return sign * float(text.rstrip("°NSEW").rstrip("°"))


def test_lonlat_labels_name_the_line_pyproj_puts_at_their_edge():
    from radarcast.animation.geo import _graticule

    g = Georef.from_bounds(SWISS, BOUNDS, BIG)
    _, step, labels = _graticule(g, BIG)
    to_ll = pyproj.Transformer.from_crs(SWISS, "EPSG:4326", always_xy=True)
    x1, _, _, y2 = BOUNDS
    top = [(c, t) for r, c, t in labels if r == 0 and t.endswith(("E", "W", "°"))]
    left = [(r, t) for r, c, t in labels if c == 0 and t.endswith(("N", "S"))]
    assert [t for _, t in top] == ["4°E", "6°E", "8°E", "10°E", "12°E"]
    assert [t for _, t in left] == ["48°N", "46°N", "44°N"]
    for c, text in top:  # the meridian passes between the top row's pixels c - 1 and c
        lon = [to_ll.transform(x1 + (j + 0.5) * 1000.0, y2 - 500.0)[0] for j in (c - 1, c)]
        assert lon[0] < parse_degrees(text) <= lon[1], (c, text, lon)
    for r, text in left:  # latitude falls down the left column
        lat = [to_ll.transform(x1 + 500.0, y2 - (i + 0.5) * 1000.0)[1] for i in (r - 1, r)]
        assert lat[0] >= parse_degrees(text) > lat[1], (r, text, lat)
    assert step == 2


def test_km_labels_and_small_panels():
    g = Georef.from_bounds(SWISS, BOUNDS, BIG)
    draw, _ = map_overlay(g, BIG, "km")
    blank = np.full((*BIG, 3), 230, np.uint8)
    out = draw(blank)
    # "300 km" right of the first x line (x = 300 km at column 45), in black on white
    box = out[1:14, 47:95]
    assert (box == 255).all(axis=-1).any() and (box.max(axis=-1) < 80).sum() > 20
    # the y line of 400 km is row 80 (y2 = 480 km): its label below it at the left edge
    assert (out[82:95, 1:40].max(axis=-1) < 80).sum() > 20
    # panels under LABEL_MIN_PX a side carry the lines and the scale bar only
    small, _ = map_overlay(georef(), SHAPE, "km")
    changed = (small(np.full((*SHAPE, 3), 230, np.uint8)) != 230).any(axis=-1)
    bh, bw = _bar(10, "100 km").shape[:2]
    changed[-bh:, :bw] = False
    expected = expected_km_lines()
    expected[-bh:, :bw] = False
    assert np.array_equal(changed, expected)


@pytest.mark.parametrize("max_width", [None, 400])
def test_map_furniture_is_drawn_on_the_panel_as_shown(max_width):
    """Lines and labels are drawn at the panel's shown size, after it is upscaled or shrunk:
    drawn on the native grid and then shrunk, 10-pixel labels became unreadable smudges."""
    from radarcast.animation.colours import colour_scale
    from radarcast.animation.layout import Grid
    from radarcast.data.units import Units

    native = (300, 320)
    grid = Grid(1, 3, native, 2, title="t", col_titles=["a", "b", "c"], scale=colour_scale(Units()),
                legend=[], max_width=max_width)  # fmt: skip
    seen = []
    grid.overlay = lambda rgb: seen.append(rgb.shape) or rgb
    grid.cell(grid.canvas(), 0, 0, np.zeros((*native, 3), np.uint8))
    assert seen == [(grid.h, grid.w, 3)]
    assert (grid.h, grid.w) != native  # upscaled ×2, or shrunk to fit 400 px
    g = Georef.from_bounds("EPSG:3035", (4e6, 3e6, 4.32e6, 3.3e6), native)  # 1 km pixels
    shown = g.on_shape((grid.h, grid.w))
    assert (shown.x1, shown.y2, shown.x2, shown.y1) == (g.x1, g.y2, g.x2, g.y1)
    assert shown.xpixelsize == pytest.approx(320e3 / grid.w)
