"""The CUDA speed settings (set_fast: channels_last, padded channels, fused gates) on CPU."""

from __future__ import annotations

import numpy as np
import torch

from radarcast.models import build_model
from radarcast.models.convlstm import (
    ConvLSTMCell,
    fused_gate_update,
    gate_update,
    gate_update_nhwc,
)
from radarcast.training import TrainConfig, TrainStep, build_step, prepare_model


def _x(b=2, t=3, size=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, 1, size, size, generator=g)


def test_set_fast_gives_the_same_forecast_on_cpu():
    torch.manual_seed(0)
    m = build_model("convlstm", {"hidden": (7, 5)})
    x = _x()
    ref = m(x, 4)
    m.set_fast(True, pad_to=16)
    assert m.encoder[0].pad_to == 16 and m.encoder[0].fused
    torch.testing.assert_close(m(x, 4), ref, rtol=1e-5, atol=1e-6)
    m.set_fast(False)
    assert m.encoder[0].pad_to == 0 and not m.encoder[0].fused
    torch.testing.assert_close(m(x, 4), ref, rtol=1e-5, atol=1e-6)


def test_padded_cell_matches_float64_unpadded_cell_and_gradients():
    torch.manual_seed(1)
    cell = ConvLSTMCell(1, 6, 3).double()
    rng = np.random.default_rng(3)
    x, h, c = (torch.from_numpy(rng.normal(size=(2, n, 5, 4))) for n in (1, 6, 6))
    w = cell.conv.weight
    want = cell(x, (h, c))
    (gw,) = torch.autograd.grad(want[0].sum() + want[1].sum(), w)
    cell.pad_to = 16  # 1 + 6 = 7 channels → 16
    got = cell(x, (h, c))
    (gw2,) = torch.autograd.grad(got[0].sum() + got[1].sum(), w)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw2, gw, rtol=1e-12, atol=1e-12)
    assert gw2.shape == w.shape == (24, 7, 3, 3)


def test_fused_gate_update_falls_back_to_eager_on_cpu():
    g = torch.randn(2, 12, 3, 3, dtype=torch.float64)
    c = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    bias = torch.randn(12, dtype=torch.float64)
    for a, b in zip(fused_gate_update(g, c, bias), gate_update(g, c, bias), strict=True):
        assert torch.equal(a, b)


def test_gate_update_keeps_c_precise_and_h_in_the_gate_type():
    g = torch.randn(1, 8, 2, 2).to(torch.bfloat16)
    h, c = gate_update(g, torch.randn(1, 2, 2, 2), torch.zeros(8))
    assert h.dtype == torch.bfloat16 and c.dtype == torch.float32


def test_train_step_returns_a_device_tensor_and_learns():
    torch.manual_seed(0)
    dev = torch.device("cpu")
    m = prepare_model(build_model("convlstm", {"hidden": (4,)}), dev)

    def loss_fn(p, t, mask):
        return ((p - t) ** 2).mean()

    step = build_step(m, TrainConfig(lr=1e-2, warmup_steps=1), dev, loss_fn, n_out=2, total=30)
    assert isinstance(step, TrainStep)
    x = _x(t=2)
    batch = {"x": x, "y": torch.full_like(x, 0.2), "mask_y": torch.ones_like(x, dtype=torch.bool)}
    losses = [step(batch) for _ in range(30)]
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in losses)
    assert float(losses[-1]) < 0.5 * float(losses[0])


def test_nhwc_gate_update_is_the_same_function_on_channels_last_views():
    g = torch.randn(2, 12, 4, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    c = torch.randn(2, 3, 4, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    bias = torch.randn(12, dtype=torch.float64)
    want = gate_update(g, c, bias)
    nhwc = (0, 2, 3, 1)
    got = gate_update_nhwc(g.permute(nhwc), c.permute(nhwc), bias)
    for a, b in zip(got, want, strict=True):
        assert a.is_contiguous()
        torch.testing.assert_close(a.permute(0, 3, 1, 2), b, rtol=1e-12, atol=1e-12)


_INTERPRETED_CHECK = """
import torch
from radarcast.models.convlstm import FusedGates, gate_update

torch.manual_seed(0)
for ch, layout, dtype in ((8, torch.channels_last, torch.bfloat16), (5, torch.contiguous_format,
                                                                     torch.float32)):
    g = (2 * torch.randn(2, 4 * ch, 5, 6)).to(dtype).contiguous(memory_format=layout)
    c = torch.randn(2, ch, 5, 6).contiguous(memory_format=layout)
    bias, dh, dc = torch.randn(4 * ch), torch.randn(2, ch, 5, 6).to(dtype), torch.randn(2, ch, 5, 6)
    res = []
    for fn, cast in ((FusedGates.apply, lambda t: t), (gate_update, lambda t: t.double())):
        leaves = [cast(t).detach().clone().requires_grad_() for t in (g, c, bias)]
        h1, c1 = fn(*leaves)
        torch.autograd.backward([h1, c1], [cast(dh), cast(dc)])
        res.append([h1, c1, *(t.grad for t in leaves)])
    for a, b in zip(*res):
        err = float((a.double() - b).norm() / b.norm())
        assert err < (1e-2 if a.dtype == torch.bfloat16 else 1e-5), (ch, err)
print("ok")
"""


def test_triton_gate_kernels_match_float64_under_the_interpreter():
    """The hand-written CUDA gate kernels (FusedGates), run by Triton's CPU interpreter."""
    import importlib.util
    import os
    import subprocess
    import sys

    import pytest

    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed (it comes with CUDA builds of PyTorch)")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run(
        [sys.executable, "-c", _INTERPRETED_CHECK], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_triton_path_is_refused_for_float64_state():
    from radarcast.models.convlstm import _triton_fits

    g = torch.randn(1, 8, 2, 2, dtype=torch.float64)
    c = torch.randn(1, 2, 2, 2, dtype=torch.float64)
    assert not _triton_fits(g, c, torch.zeros(8, dtype=torch.float64))
