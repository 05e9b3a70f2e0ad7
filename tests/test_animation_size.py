"""Animations of native grids stay small: --max-width, one palette, hatch on every panel."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from test_animation import HKO, cell_of, make_panels

from radarcast import animation as A
from radarcast.animation.gif import encode_gif, shared_palette


def test_max_width_bounds_the_canvas_and_keeps_the_aspect():
    panels = make_panels(shape=(200, 300), n_methods=2)
    scale = A.colour_scale(HKO, "dbz", "radar")
    wide = A.animation_grid(panels, scale, A.AnimateConfig(scale=2, max_width=None))
    small = A.animation_grid(panels, scale, A.AnimateConfig(scale=2, max_width=900))
    assert wide.width > 900 >= small.width
    assert small.width > 800  # the widest panels that fit, not much less
    assert abs(small.h / small.w - 200 / 300) < 0.02


def test_shrunk_cells_sample_the_native_grid():
    panels = make_panels(shape=(200, 300), n_methods=1)
    scale = A.colour_scale(HKO, "dbz", "radar")
    cfg = A.AnimateConfig(scale=1, max_width=700)
    grid = A.animation_grid(panels, scale, cfg)
    last = list(A.animation_frames(panels, scale, cfg))[-1]
    truth = scale.lut[panels.y[-1]]
    rows = np.arange(grid.h) * 200 // grid.h
    cols = np.arange(grid.w) * 300 // grid.w
    assert np.array_equal(cell_of(last, grid, 0, 1), truth[rows][:, cols])


def test_default_max_width_applies_to_gif_not_png():
    cfg = A.AnimateConfig()
    assert cfg.max_width == 1600
    with pytest.raises(Exception, match="--max-width"):
        A.AnimateConfig(max_width=50)


def test_shared_palette_gif_is_exact_and_smaller_than_a_generic_writer(tmp_path):
    panels = make_panels(shape=(120, 160), n_in=4, n_out=6, n_methods=2)
    panels.mask_y[:, :30] = False  # a no-data band: hatch
    scale = A.colour_scale(HKO, "dbz", "radar")
    frames = list(A.animation_frames(panels, scale, A.AnimateConfig(scale=1)))
    ours = encode_gif(frames, fps=4)
    generic = iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=250, loop=0)
    (tmp_path / "a.gif").write_bytes(ours)
    back = iio.imread(tmp_path / "a.gif", index=None)[..., :3]
    palette, _ = shared_palette(frames)
    exact = np.isin(
        (np.stack(frames).astype(np.uint32) * [65536, 256, 1]).sum(-1),
        (palette.astype(np.uint32) * [65536, 256, 1]).sum(-1),
    )
    assert np.array_equal(back[exact], np.stack(frames)[exact])  # palette colours exact
    assert exact.mean() > 0.99
    assert len(ours) < len(generic)


def test_forecast_panels_hatch_where_the_truth_has_no_data():
    panels = make_panels(shape=(20, 30), n_methods=2)
    panels.mask_y[:, :, :5] = False  # no data in the first 5 columns at every lead
    scale = A.colour_scale(HKO, "dbz", "radar")
    cfg = A.AnimateConfig(scale=1)
    grid = A.animation_grid(panels, scale, cfg)
    last = list(A.animation_frames(panels, scale, cfg))[-1]
    hatch = {tuple(c) for c in scale.nodata}
    for col in (1, 2, 3):  # Truth and both methods
        cell = cell_of(last, grid, 0, col)
        assert {tuple(c) for c in cell[:, :5].reshape(-1, 3)} == hatch, col
