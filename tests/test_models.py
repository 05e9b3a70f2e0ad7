"""Models: shapes, gradients, learning, state hand-over, the cell against a float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radarcast.data.units import Units
from radarcast.errors import RadarcastError
from radarcast.models import MODELS, PRESETS, build_model, resolve_preset
from radarcast.models.convlstm import ConvLSTMCell
from radarcast.models.losses import (
    CSI_THRESHOLDS_MMH,
    LOSSES,
    BalancedLoss,
    SoftCSILoss,
    block_means,
    get_loss,
    mae,
    mse,
)

TINY = {
    "convlstm": {"hidden": (6, 4), "kernel": 3, "patch": 2},
    "fc-lstm": {"hidden": (12, 8), "patch": 4},
    "advection-convlstm": {"hidden": (6, 4), "kernel": 3, "patch": 2},
}


def test_every_registered_model_has_a_tiny_config():
    assert set(TINY) == set(MODELS)


@pytest.fixture(params=sorted(MODELS))
def model(request):
    torch.manual_seed(0)
    return build_model(request.param, TINY[request.param])


def _batch(b=2, t_in=3, t_out=4, size=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, t_in, 1, size, size, generator=g)
    y = torch.rand(b, t_out, 1, size, size, generator=g)
    return x, y


def test_output_shape_range_and_no_nan(model):
    x, _ = _batch(size=13)  # 13 is not a multiple of the patch: padded, then cropped
    y = model(x, 5)
    assert y.shape == (2, 5, 1, 13, 13)
    assert torch.isfinite(y).all()
    assert (y >= 0).all() and (y <= 1).all()


def test_every_parameter_gets_a_gradient(model):
    x, y = _batch()
    mse(model(x, 4), y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_loss_falls_on_a_fixed_batch(model):
    x, _ = _batch()
    y = 0.2 + 0.6 * x[:, -1:].expand(-1, 4, -1, -1, -1)  # (B, 4, 1, H, W): learnable
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(12):
        opt.zero_grad()
        loss = mse(model(x, 4), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0]


def test_forecaster_starts_from_the_encoders_last_state(model):
    """Forecaster layer l's first (h, c) is exactly encoder layer l's final (h, c)."""
    enc_out, fc_in = {}, {}
    for layer, cell in enumerate(model.encoder):
        cell.register_forward_hook(lambda m, args, out, i=layer: enc_out.__setitem__(i, out))

    def remember_first(i, args):
        if i not in fc_in:
            fc_in[i] = tuple(s.clone() for s in args[1])

    for layer, cell in enumerate(model.forecaster):
        cell.register_forward_pre_hook(lambda m, args, i=layer: remember_first(i, args))
    x, _ = _batch()
    model(x, 3)
    assert len(enc_out) == len(fc_in) == len(model.encoder)
    for layer in enc_out:
        for got, want in zip(fc_in[layer], enc_out[layer], strict=True):
            assert torch.equal(got, want)
        assert enc_out[layer][0].abs().sum() > 0


def _reference_cell(x, h, c, w, b):
    """ConvLSTM step in float64 numpy, written independently: gates i, f, g, o."""
    z = np.concatenate([x, h], axis=1)  # (B, Cin + Ch, H, W)
    k = w.shape[-1]
    pad = k // 2
    zp = np.pad(z, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    bsz, _, hh, ww = z.shape
    out = np.zeros((bsz, w.shape[0], hh, ww))
    for dy in range(k):
        for dx in range(k):
            patch = zp[:, :, dy : dy + hh, dx : dx + ww]  # (B, Cin + Ch, H, W)
            out += np.einsum("oc,bchw->bohw", w[:, :, dy, dx], patch)
    out += b[None, :, None, None]
    i, f, g, o = np.split(out, 4, axis=1)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    c2 = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c2), c2


def test_cell_matches_a_float64_reference():
    torch.manual_seed(1)
    cell = ConvLSTMCell(3, 5, 3).double()
    with torch.no_grad():
        cell.conv.bias.normal_()
    rng = np.random.default_rng(2)
    x, h, c = (rng.normal(size=(2, n, 7, 6)) for n in (3, 5, 5))
    got_h, got_c = cell(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
    want_h, want_c = _reference_cell(
        x, h, c, cell.conv.weight.detach().numpy(), cell.conv.bias.detach().numpy()
    )
    np.testing.assert_allclose(got_h.detach().numpy(), want_h, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_c.detach().numpy(), want_c, rtol=1e-10, atol=1e-12)


def test_pad_channels_pads_the_first_gate_convolution():
    m = build_model("convlstm", {"hidden": (7,), "pad_channels": 16})
    assert m.encoder[0].conv.in_channels == 16
    assert m(torch.rand(1, 2, 1, 8, 8), 2).shape == (1, 2, 1, 8, 8)


def test_every_preset_builds_its_model():
    for name, (model_name, fields) in PRESETS.items():
        small = {**fields, "hidden": tuple(min(h, 4) for h in fields["hidden"])}
        m = build_model(model_name, small)
        assert isinstance(m, MODELS[model_name]), name


def test_thesis_presets_have_the_thesis_layers():
    assert PRESETS["convlstm-1"][1]["hidden"] == (128,)
    assert PRESETS["convlstm-2"][1]["hidden"] == (64, 64)
    assert PRESETS["convlstm-3"][1]["hidden"] == (64, 32, 32)
    assert PRESETS["fc-lstm"][1]["hidden"] == (2048, 2048)


def test_unknown_model_lists_the_choices():
    with pytest.raises(RadarcastError, match="convlstm, fc-lstm"):
        build_model("unet")


def test_unknown_preset_lists_the_choices():
    with pytest.raises(RadarcastError, match="convlstm-2"):
        resolve_preset("convlstm-9", None)


def test_unknown_model_config_key_is_named():
    with pytest.raises(RadarcastError, match="'hiden'"):
        build_model("convlstm", {"hiden": (4,)})


# ----------------------------------------------------------------------------- losses
def test_mse_and_mae_ignore_masked_pixels():
    pred = torch.tensor([0.0, 1.0, 0.5])
    target = torch.tensor([0.0, 0.0, 0.0])
    mask = torch.tensor([True, False, True])
    assert float(mse(pred, target, mask)) == pytest.approx(0.125)
    assert float(mae(pred, target, mask)) == pytest.approx(0.25)


def test_balanced_weights_follow_hko7_rain_rates():
    units = Units()
    loss = BalancedLoss(units)
    rates = np.array([0.1, 1.0, 3.0, 7.0, 20.0, 50.0])  # one per weight band
    t = torch.tensor(units.rain_to_pixel(rates) / 255.0, dtype=torch.float32)
    assert loss.weights(t).tolist() == [1.0, 1.0, 2.0, 5.0, 10.0, 30.0]


def test_balanced_loss_value():
    units = Units()
    t = torch.tensor(units.rain_to_pixel(np.array([0.1, 50.0])) / 255.0, dtype=torch.float32)
    p = t + 0.1
    want = (1 * 0.01 + 30 * 0.01) / 2 + (1 * 0.1 + 30 * 0.1) / 2
    assert float(get_loss("bmse", units)(p, t)) == pytest.approx(want, rel=1e-5)


def test_balanced_loss_needs_a_zr_relation():
    with pytest.raises(RadarcastError, match="Z-R"):
        BalancedLoss(Units(zr_a=None, zr_b=None))


def test_unknown_loss_lists_the_choices():
    with pytest.raises(RadarcastError, match=", ".join(LOSSES)):
        get_loss("huber")


def test_channels_last_and_bf16_autocast_paths_run_on_cpu():
    """The CUDA settings (channels_last, bf16 autocast) exercised on CPU."""
    torch.manual_seed(0)
    m = build_model("convlstm", {"hidden": (8, 8), "pad_channels": 16})
    x, _ = _batch()
    ref = m(x, 3)
    m = m.to(memory_format=torch.channels_last)
    m.memory_format = torch.channels_last
    torch.testing.assert_close(m(x, 3), ref, rtol=1e-5, atol=1e-6)
    with torch.autocast("cpu", torch.bfloat16):
        y = m(x, 3)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, ref, rtol=0, atol=0.05)


def test_balanced_weight_at_an_edge_takes_the_upper_band():
    loss = BalancedLoss(Units())
    assert loss.weights(loss.edges.clone()).tolist() == [1.0, 2.0, 5.0, 10.0, 30.0]


# --------------------------------------------------------------------------- advection head
def _advection(source=True, max_step=6.0):
    torch.manual_seed(0)
    # fmt: off
    return build_model("advection-convlstm", {"hidden": (6, 4), "kernel": 3, "patch": 2,
                                              "max_step": max_step, "source": source})
    # fmt: on


def test_sample_back_moves_a_blob_by_whole_pixels_with_dry_inflow():
    from radarcast.models.advection import sample_back

    frame = torch.zeros(1, 1, 10, 12)
    frame[0, 0, 4:6, 3:5] = 1.0
    disp = torch.zeros(1, 2, 10, 12)
    disp[:, 0], disp[:, 1] = 3.0, -2.0  # 3 px towards larger columns, 2 px towards row 0
    out = sample_back(frame, disp)
    want = torch.zeros_like(frame)
    want[0, 0, 2:4, 6:8] = 1.0
    torch.testing.assert_close(out, want)
    # the rows that came from above the grid are dry
    assert out[0, 0, 8:].abs().sum() == 0


def test_advection_head_without_motion_or_source_is_persistence():
    model = _advection(source=False)
    with torch.no_grad():
        model.motion.weight.zero_()
    x, _ = _batch(size=10)
    y = model(x, 4)
    torch.testing.assert_close(y, x[:, -1:].expand(-1, 4, -1, -1, -1))


def _columns(frame, cols):
    """frame[:, cols] with 0 for columns outside the grid."""
    inside = (cols >= 0) & (cols < frame.shape[1])
    return frame[:, cols.clamp(0, frame.shape[1] - 1)] * inside


def test_advection_head_carries_the_last_frame_at_its_speed():
    """A constant motion output of 1.5 px per lead (x) and −1 px (y) moves the last frame
    k·(1.5, −1) pixels at lead k: the bilinear lookup matches a shift done by hand."""
    model = _advection(source=False, max_step=4.0)
    with torch.no_grad():
        model.motion.weight.zero_()
        model.motion.bias.copy_(torch.atanh(torch.tensor([1.5, -1.0]) / 4.0))
    x = torch.zeros(1, 3, 1, 24, 24)
    x[0, -1, 0, 10:14, 6:10] = torch.tensor([0.2, 0.9, 0.4, 0.7])[:, None]
    y = model(x, 3)
    for k in (1, 2, 3):
        got = y[0, k - 1, 0]
        dy, dx = -1.0 * k, 1.5 * k
        grid = torch.arange(24, dtype=torch.float32)
        # bilinear interpolation in x of the frame shifted by whole rows in y
        src = torch.roll(x[0, -1, 0], shifts=int(dy), dims=0)
        lo = torch.floor(grid - dx).long()
        frac = (grid - dx) - lo
        want = _columns(src, lo) * (1 - frac) + _columns(src, lo + 1) * frac
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_advection_config_is_checked():
    with pytest.raises(RadarcastError, match="max_step"):
        build_model("advection-convlstm", {"max_step": 0})
    with pytest.raises(RadarcastError, match="kernel"):
        build_model("advection-convlstm", {"kernel": 2})


def test_rover_base_without_heads_is_rover_and_the_forecaster_reads_it():
    from radarcast.baselines.rover import forecast

    torch.manual_seed(0)
    # fmt: off
    model = build_model("advection-convlstm", {"hidden": (6, 4), "patch": 2, "motion": "rover",
                                               "source": False})
    # fmt: on
    assert model.forecaster[0].in_channels == 4  # the 2×2 patches of ROVER's frame
    with torch.no_grad():
        model.motion.weight.zero_()
    x = torch.zeros(1, 3, 1, 32, 32)
    for t in range(3):  # a blob moving 2 px per step towards larger columns
        x[0, t, 0, 10:18, 6 + 2 * t : 14 + 2 * t] = 0.6
    y = model(x, 4)[:, :, 0]
    want = forecast(x[0, :, 0].numpy() * 255, 4) / 255
    np.testing.assert_allclose(y[0].detach().numpy(), np.clip(want, 0, 1), atol=1e-6)
    assert y[0, -1, 10:18, 19:25].mean() > 0.5  # and ROVER did move it


def test_rover_motion_config_is_checked():
    with pytest.raises(RadarcastError, match="motion"):
        build_model("advection-convlstm", {"motion": "magic"})
    with pytest.raises(RadarcastError, match="rover"):
        build_model("advection-convlstm", {"motion": "rover", "rover": {"frames": 1}})


# ----------------------------------------------------------------------- soft CSI, scales
def _rain_fields(seed=0, b=3, t=4, size=20):
    """Truth and a forecast in pixel/255 (away from the thresholds by > 3 pixels) that is
    right less often at later leads."""
    units = Units()
    edges = units.to_pixel(np.array(CSI_THRESHOLDS_MMH), "mmh")
    rng = np.random.default_rng(seed)
    levels = np.concatenate([[0.0], edges]) + 5.0  # one value inside each band
    truth = rng.choice(levels, size=(b, t, 1, size, size))
    right = rng.random(truth.shape) < np.linspace(0.95, 0.3, t)[None, :, None, None, None]
    pred = np.where(right, truth, rng.choice(levels, size=truth.shape))
    return units, edges, torch.tensor(pred / 255.0), torch.tensor(truth / 255.0)


def test_soft_csi_with_a_sharp_temperature_is_evaluates_csi_mean_over_leads():
    from radarcast.metrics import contingency_counts, csi

    units, edges, pred, truth = _rain_fields()
    loss = SoftCSILoss(units, temperature=1e-4)
    counts = contingency_counts(pred[:, :, 0].numpy() * 255, truth[:, :, 0].numpy() * 255, edges)
    want = 1.0 - csi(counts).mean()  # (L, K) per lead and threshold, then the mean
    assert float(loss(pred, truth)) == pytest.approx(want, abs=1e-6)
    pooled = csi(counts.sum(axis=0, keepdims=True)).mean()  # leads pooled: another number
    assert abs((1.0 - pooled) - want) > 1e-3
    loss_pooled = SoftCSILoss(units, temperature=1e-4, pool_leads=True)
    assert float(loss_pooled(pred, truth)) == pytest.approx(1.0 - pooled, abs=1e-6)


def test_soft_csi_ignores_masked_pixels_and_rewards_the_truth():
    units, _, pred, truth = _rain_fields(seed=1)
    loss = SoftCSILoss(units)
    assert float(loss(truth, truth)) < float(loss(pred, truth))
    mask = (pred == truth).bool()  # only the pixels the forecast got right
    assert float(loss(pred, truth, mask)) == pytest.approx(float(loss(truth, truth, mask)))


def test_block_means_use_valid_pixels_only():
    pred = torch.arange(16.0).reshape(1, 1, 1, 4, 4) / 16
    target = torch.zeros(1, 1, 1, 4, 4)
    mask = torch.ones(1, 1, 1, 4, 4, dtype=torch.bool)
    mask[..., 0, 0] = False  # one of the top-left block's four pixels is invalid
    mask[..., 2:, 2:] = False  # the whole bottom-right block
    p, t, valid = block_means(pred, target, mask, 2)
    assert p.shape == (1, 1, 1, 2, 2)
    assert float(p[0, 0, 0, 0, 0]) == pytest.approx((1 + 4 + 5) / 3 / 16)
    assert valid[0, 0, 0].tolist() == [[True, True], [True, False]]


def test_coarse_scales_see_a_storm_that_pixels_miss():
    """A blob forecast 6 px off: moving it closer lowers the 8× loss, not the pixel loss."""
    target = torch.zeros(1, 1, 1, 32, 32)
    target[..., 8:12, 8:12] = 0.8

    def at(dx):
        p = torch.zeros_like(target)
        p[..., 8:12, 8 + dx : 12 + dx] = 0.8
        return p

    plain, coarse = get_loss("mse"), get_loss("mse", scales=(8,))
    assert float(plain(at(6), target)) == pytest.approx(float(plain(at(5), target)))
    assert float(coarse(at(5), target)) < float(coarse(at(6), target))


def test_summed_losses_and_scales_are_checked():
    units, _, pred, truth = _rain_fields(seed=2)
    both = get_loss("bmse+csi", units)(pred, truth)
    parts = get_loss("bmse", units)(pred, truth) + get_loss("csi", units)(pred, truth)
    assert float(both) == pytest.approx(float(parts))
    with pytest.raises(RadarcastError, match="bmse\\+csi"):
        get_loss("bmse+huber", units)
    with pytest.raises(RadarcastError, match="loss_scales"):
        get_loss("mse", units, scales=(0,))
