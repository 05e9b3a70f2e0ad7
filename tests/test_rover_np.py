"""ROVER's numpy kernels (the live nowcast's torch-free path) agree with the torch kernels."""

from __future__ import annotations

import numpy as np
import pytest

from radarcast.baselines.rover import RoverConfig, make_forecaster
from radarcast.kernels import rover_np
from radarcast.kernels.flow import pixel_scale


def _moving_echo(h: int = 96, w: int = 136, steps: int = 3) -> np.ndarray:
    """(steps, h, w) pixels: two blobs drifting by (2.5, -1.5) px a step, a NaN patch."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for t in range(steps):
        x0, y0 = 40 + 2.5 * t, 50 - 1.5 * t
        f = 180 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / 150.0)
        f += 120 * np.exp(-((xx - x0 - 45) ** 2 + (yy - y0 + 10) ** 2) / 60.0)
        out.append(f + rng.uniform(0, 4, f.shape))
    x = np.stack(out).astype(np.float32)
    x[:, 5:9, 100:110] = np.nan
    return x


@pytest.mark.parametrize(
    "cfg", [RoverConfig(), RoverConfig(transform="arctan", outside="nan", downsample=1, robust=0.0)]
)
def test_numpy_kernels_match_torch(cfg):
    torch = pytest.importorskip("torch")
    from radarcast.kernels.advect import forecast_torch
    from radarcast.kernels.flow import motion_coarse

    x = _moving_echo()
    gain, offset = pixel_scale(None)
    flow_np = rover_np.motion_coarse(x, cfg, gain, offset)
    flow_t = motion_coarse(torch.from_numpy(x[None]), cfg, gain, offset)[0].numpy()
    assert np.abs(flow_t).max() > 1.0  # the echo moves: not two zero fields
    np.testing.assert_allclose(flow_np, flow_t, atol=1e-3)
    pred_np = rover_np.forecast(x[None], 6, cfg, gain, offset)
    pred_t = forecast_torch(torch.from_numpy(x[None]), 6, cfg).numpy()
    assert pred_np.dtype == np.float32 and pred_np.shape == pred_t.shape == (1, 6, 96, 136)
    both = np.isfinite(pred_np) & np.isfinite(pred_t)
    assert both.mean() > 0.9 and (np.isnan(pred_np) != np.isnan(pred_t)).mean() < 1e-3
    np.testing.assert_allclose(pred_np[both], pred_t[both], atol=0.05)


def test_sampling_matches_grid_sample():
    """Bilinear (zeros, border) and bicubic lookups, also far outside the grid."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    img = rng.normal(size=(2, 7, 9)).astype(np.float32)
    x = rng.uniform(-4, 12, size=(5, 6)).astype(np.float32)
    y = rng.uniform(-4, 10, size=(5, 6)).astype(np.float32)
    grid = torch.from_numpy(np.stack([(x + 0.5) * 2 / 9 - 1, (y + 0.5) * 2 / 7 - 1], -1))[None]
    timg = torch.from_numpy(img)[None]
    for mode, padding, got in (
        ("bilinear", "zeros", rover_np.sample_bilinear(img, x, y)),
        ("bilinear", "border", rover_np.sample_bilinear(img, x, y, border=True)),
        ("bicubic", "zeros", rover_np.sample_bicubic(img, x, y)),
    ):
        want = torch.nn.functional.grid_sample(
            timg, grid, mode=mode, padding_mode=padding, align_corners=False
        )[0].numpy()
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"{mode} {padding}")


def test_numpy_device_forecaster_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from radarcast.baselines.rover import make_forecaster\n"
        "fc = make_forecaster(None, 4, {'device': 'numpy'})\n"
        "out = fc.predict(np.zeros((1, 3, 32, 32), np.float32), 4)\n"
        "print(out.shape, fc.config['device'], 'torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["(1,", "4,", "32,", "32)", "numpy", "False"]


def test_unknown_device_lists_numpy():
    from radarcast.errors import RadarcastError

    with pytest.raises(RadarcastError, match="auto, cpu, cuda, numpy"):
        make_forecaster(None, 4, {"device": "tpu"})
