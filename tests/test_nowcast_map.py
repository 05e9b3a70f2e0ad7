"""`radarcast nowcast -o X.gif` on geo-referenced inputs draws the animations' km lines and
scale bar (#17 Deliver 5), checked on the decoded GIF against a run without a CRS."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageSequence

from radarcast.animation.geo import _bar
from radarcast.nowcast.render import TITLE_PX
from tests.test_nowcast import PATTERN, frames, invoke

SIZE = 320  # 1 km pixels over 320 km: lines and bar every 50 km


def gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.asarray(f.convert("RGB")).astype(int) for f in ImageSequence.Iterator(im)]


def test_nowcast_gif_has_50_km_lines_and_bar_where_the_grid_says(tmp_path):
    paths = frames(tmp_path / "in", size=SIZE)
    out = {}
    for name, geo in (("geo.gif", ("--crs", "EPSG:3035", "--bounds", f"0,0,{SIZE}000,{SIZE}000")),
                      ("plain.gif", ())):  # fmt: skip
        out[name] = tmp_path / name
        r = invoke(*paths, "-o", out[name], "--method", "persistence", "--leads", "2",
                   "--time-pattern", PATTERN, "--units", "dBZ", *geo)  # fmt: skip
        assert r.exit_code == 0, r.output
    geo, plain = gif_frames(out["geo.gif"]), gif_frames(out["plain.gif"])
    assert len(geo) == len(plain) == 3
    bar = _bar(50, "50 km")
    bh, bw = bar.shape[:2]
    j = np.arange(SIZE)
    cols = np.flatnonzero(np.floor((j[1:] + 0.5) / 50) != np.floor((j[:-1] + 0.5) / 50)) + 1
    expected = np.zeros((SIZE, SIZE), bool)
    expected[np.ix_(np.arange(0, SIZE, 3), cols)] = True  # x lines, dotted
    rows = np.flatnonzero(np.diff(np.floor((SIZE - 0.5 - j) / 50)) != 0) + 1  # y lines
    expected[np.ix_(rows, np.arange(0, SIZE, 3))] = True
    outside = np.ones((SIZE, SIZE), bool)
    outside[-bh:, :bw] = False
    from radarcast.animation.geo import LABEL_SIZE
    outside[: LABEL_SIZE + 5, :] = False  # the x lines' labels along the top edge
    outside[:, :60] = False  # and the y lines' down the left (docs/animate.md, Maps)
    for a, b in zip(geo, plain, strict=True):  # the observation and each lead
        pa, pb = a[TITLE_PX:], b[TITLE_PX:]
        assert pa.shape[:2] == (SIZE, SIZE)
        assert np.abs(pa[-bh:, :bw] - bar).max() <= 8
        assert (pa[-4, 4:55] == 0).all()  # the 50 km bar: 50 pixels of 1 km
        changed = (pa != pb).any(axis=-1)
        assert np.array_equal(changed[outside], expected[outside])
