"""The ROVER ensemble's rain threshold, dry value, inflow, member move and precipitation
mask (issue #18's skill fixes of session 6, docs/ensembles.md)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from radarcast.baselines.ensemble_config import EnsembleConfig, rain_levels  # noqa: E402
from radarcast.baselines.rover_ensemble import _prepare, forecast_window  # noqa: E402
from radarcast.data.units import PRESETS, Units  # noqa: E402
from radarcast.errors import RadarcastError  # noqa: E402
from radarcast.kernels import noise  # noqa: E402


def _blob_texture(size=96, seed=0):
    """A textured rain blob in the middle of a dry (pixel 0) domain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    blob = np.exp(-((xx - size / 2) ** 2 + (yy - size / 2) ** 2) / (2 * (size / 6) ** 2))
    tex = rng.uniform(0.6, 1.0, (size, size))
    return np.where(blob > 0.2, 160.0 * blob * tex, 0.0).astype(np.float32)


def test_threshold_is_0_1_mmh_through_the_z_r_relation_and_dry_sits_below_it():
    for name in ("mch", "fmi"):
        units = PRESETS[name]
        floor, zero = rain_levels(units, EnsembleConfig())
        assert float(units.pixel_to_rain(np.float64(floor))) == pytest.approx(0.1, rel=1e-6)
        assert zero == floor  # dry_db = 0: dry pixels enter at the threshold
        _, zero5 = rain_levels(units, EnsembleConfig(dry_db=5.0))
        # 5 dB of rain rate lower: a tenth of the dB-rain, i.e. 0.1 → 0.0316 mm/h
        assert float(units.pixel_to_rain(np.float64(zero5))) == pytest.approx(0.1 / 10**0.5)
    no_zr = Units(zr_a=None, zr_b=None)
    floor, _ = rain_levels(no_zr, EnsembleConfig())  # rain_dbz without a Z–R relation
    assert float(no_zr.pixel_to_dbz(np.float64(floor))) == pytest.approx(10.0)


def test_light_rain_above_the_threshold_survives_in_the_members():
    """MeteoSwiss light rain of 0.2–1 mm/h was zeroed when the threshold sat at 1.2 mm/h."""
    units = PRESETS["mch"]
    rain = np.full((64, 64), 0.0)
    rain[16:48, 16:48] = 0.5  # light rain only
    px = np.where(rain > 0, units.rain_to_pixel(np.maximum(rain, 1e-6)), 0.0)
    x = np.stack([px] * 3).astype(np.float32)
    ens = forecast_window(x, 2, EnsembleConfig(members=4, seed=0), units=units)
    wet = units.pixel_to_rain(ens[:, 0]) > 0.1
    assert wet.mean() == pytest.approx((rain > 0.1).mean(), abs=0.03)


def test_a_motionless_field_stays_the_field_and_lead_1_spread_starts_near_zero():
    # the rain stays where it is, its pixel-scale texture changes a little from frame to
    # frame (3 identical frames say there is nothing to forecast: correlation 1 at every
    # scale, and the AR(2) then keeps the members together, as the data ask)
    rng = np.random.default_rng(5)
    base = _blob_texture()
    x = np.stack([np.where(base > 0, base * rng.uniform(0.99, 1.01, base.shape), 0.0)
                  for _ in range(3)]).astype(np.float32)  # fmt: skip
    # no bps: its direction follows ROVER's (here ~0) motion, and any sub-pixel shift
    # changes a pixel-scale texture; this is about the stochastic field alone
    cfg = EnsembleConfig(members=8, seed=3, motion="none")
    ens = forecast_window(x, 6, cfg)
    floor, _ = rain_levels(None, cfg)
    truth = np.where(x[-1] >= floor, x[-1], 0.0)  # what is rain at the threshold
    wet = truth > 0
    err = np.abs(ens.mean(axis=0) - truth)[:, wet].mean(axis=1) / truth[wet].mean()
    assert err[0] < 0.03 and err[-1] < 0.05  # the ensemble mean stays the field
    spread = ens.std(axis=0)[:, wet].mean(axis=1)
    assert spread[0] < 0.1 * truth[wet].std()  # the spread starts near zero...
    assert spread[-1] > 1.3 * spread[0]  # ...and grows


def test_inflow_of_the_moved_frames_does_not_decorrelate_the_small_scales():
    """Pixels that flow in from outside the grid used to enter the moved earlier frames at
    0, far below the threshold: an edge that is not in the latest frame, which took the
    small-scale correlations (hence AR coefficients) of real windows from ~0.46 to ~0.15."""
    size, shift = 96, 3
    big = np.zeros((size, size + 3 * shift), np.float32)
    big[:, 3 * shift :] = _blob_texture(size)
    big[:, : 3 * shift + 4] = 60.0  # rain at the inflow edge
    frames = np.stack([big[:, (2 - k) * shift : (2 - k) * shift + size] for k in range(3)])
    x = torch.as_tensor(frames)  # the rain moves right by `shift` pixels per step
    flow = torch.zeros(1, 2, size, size)
    flow[:, 0] = shift
    cfg = EnsembleConfig(bands=5)
    win = _prepare(x, flow, 1, cfg, floor=10.0)
    assert float(win.rho1[1:].min()) > 0.9


def test_dilated_mask_is_pysteps_compute_dilated_mask():
    utils = pytest.importorskip("pysteps.nowcasts.utils")
    from scipy.ndimage import generate_binary_structure, iterate_structure

    rng = np.random.default_rng(1)
    rain = np.zeros((2, 60, 70), bool)
    rain[0, 20:25, 30:33] = True
    rain[1] = rng.uniform(size=(60, 70)) > 0.995
    ours = noise.dilated_mask(torch.as_tensor(rain), 2, 10).numpy()
    kr = iterate_structure(generate_binary_structure(2, 1), 2)
    for i in range(2):
        np.testing.assert_allclose(ours[i], utils.compute_dilated_mask(rain[i], kr, 10),
                                   atol=1e-6)  # fmt: skip


def test_incremental_mask_keeps_rain_near_rain():
    x = np.stack([_blob_texture()] * 3)
    cfg = EnsembleConfig(members=4, seed=0, mask="incremental", mask_rim=2)
    ens = forecast_window(x, 3, cfg)
    yy, xx = np.mgrid[0:96, 0:96]
    far = np.hypot(yy - 48, xx - 48) > 96 / 6 * 1.8 + 3 * 4  # beyond blob + 3 leads of growth
    assert not np.any(ens[:, :, far] > 0)


def test_bad_rain_and_mask_options_are_refused():
    with pytest.raises(RadarcastError, match="choose one of: incremental, none"):
        EnsembleConfig(mask="obs")
    with pytest.raises(RadarcastError, match="rain_mmh must be > 0"):
        EnsembleConfig(rain_mmh=0.0)
    with pytest.raises(RadarcastError, match="mask_radius and mask_rim must be ≥ 0"):
        EnsembleConfig(mask_rim=-1)


def test_moving_members_keeps_the_rain_area_and_values():
    """A sub-pixel move of a rain square keeps its area and its values; sampling the field
    alone (dry = 0) ate a column at each lead (an edge pixel needs ~90 % rain weight)."""
    from radarcast.baselines.rover_ensemble import _Trajectories, _warp_rain

    field = torch.zeros(2, 40, 40)
    field[:, 10:30, 10:30] = 60.0
    flow = torch.zeros(1, 2, 40, 40)
    flow[:, 0] = 0.4  # 0.4 pixel per step to the right
    paths = _Trajectories(flow, 1, np.zeros((2, 2)), EnsembleConfig(motion="none"))
    paths.advance(1)
    out = _warp_rain(paths, field, floor=59.0)
    assert int((out[0] > 0).sum()) == 20 * 20
    np.testing.assert_allclose(out[out > 0].numpy(), 60.0, rtol=1e-5)
    old = paths.warp(field)
    assert int((old[0] >= 59.0).sum()) < 20 * 20  # what the plain bilinear sampling gave
