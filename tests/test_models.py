"""Models: shapes, gradients, learning, state hand-over, the cell against a float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radarcast.data.units import Units
from radarcast.errors import RadarcastError
from radarcast.models import MODELS, PRESETS, build_model, resolve_preset
from radarcast.models.convlstm import ConvLSTMCell
from radarcast.models.losses import LOSSES, BalancedLoss, get_loss, mae, mse

TINY = {
    "convlstm": {"hidden": (6, 4), "kernel": 3, "patch": 2},
    "fc-lstm": {"hidden": (12, 8), "patch": 4},
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
