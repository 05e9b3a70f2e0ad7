"""Numerics of the ConvLSTM fast path, for ``bench/train_speed.py --check``.

The Triton gate kernels against float64 on random inputs (outputs and all gradients,
several shapes and layouts, memory poisoned with NaN before each run), and a small model's
parameter gradients under bf16 autocast against the float64 model, with each of
:data:`radarcast.models.gates.FUSED_KERNEL`'s kernels; ‖out − ref‖/‖ref‖ per tensor, NaN
never passes.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch


def _rel(a, b) -> float:
    """‖a − b‖ / ‖b‖ in float64 (NaN if either has a NaN)."""
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _poison(device) -> None:
    """Fill free cached memory with NaN so that an unwritten output element shows."""
    if device.type == "cuda":
        torch.full((1 << 28,), float("nan"), device=device)  # 1 GiB, freed to the cache


def gate_case(device, b, ch, hw, layout, dtype, use=(True, True), c_grad=True, slice_dh=False):
    """FusedGates vs float64 gate_update on fresh random inputs → rel. errors per tensor."""
    from radarcast.models.convlstm import FusedGates, gate_update

    fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
    g = (2 * torch.randn(b, 4 * ch, *hw, device=device)).to(dtype).contiguous(memory_format=fmt)
    c = torch.randn(b, ch, *hw, device=device).contiguous(memory_format=fmt)
    bias = torch.randn(4 * ch, device=device)
    dh = torch.randn(b, ch + 3 * slice_dh, *hw, device=device).to(dtype)
    dh = dh.contiguous(memory_format=torch.channels_last)[:, 1 : 1 + ch] if slice_dh else dh
    dc = torch.randn(b, ch, *hw, device=device)
    errs = {}
    specs = ((g, True), (c, c_grad), (bias, True))
    for name, fn, conv in (("fast", FusedGates.apply, lambda t: t), ("ref", gate_update, None)):
        conv = conv or (lambda t: t.double())
        leaves = [conv(t).detach().requires_grad_(r) for t, r in specs]
        _poison(device)
        outs = fn(*leaves)
        pairs = [(o, conv(d)) for o, d, u in zip(outs, (dh, dc), use, strict=True) if u]
        torch.autograd.backward([p[0] for p in pairs], [p[1] for p in pairs])
        errs[name] = [*outs, *(t.grad for t in leaves)]
    keys = ("h", "c", "d_gates", "d_c", "d_bias")
    res = {k: _rel(a, b) for k, a, b in zip(keys, errs["fast"], errs["ref"], strict=True)
           if a is not None and b is not None}  # fmt: skip
    res["shapes"] = f"b{b} c{ch} {hw[0]}x{hw[1]} {layout} {str(dtype)[6:]} use={use} " + (
        f"c_grad={c_grad} slice_dh={slice_dh}"
    )
    bf16_keys = ("h", "d_gates") if dtype != torch.float32 else ()
    res["ok"] = all(
        v == v and v < (1e-2 if k in bf16_keys else 1e-4)
        for k, v in res.items()
        if isinstance(v, float)
    )
    return res


def model_case(device, kernel):
    """A small model's parameter gradients under bf16 autocast vs the float64 model."""
    from radarcast.models import build_model, gates

    torch.manual_seed(0)
    ref = build_model("convlstm", {"hidden": (32, 48), "kernel": 3}).to(device).double()
    fast = build_model("convlstm", {"hidden": (32, 48), "kernel": 3}).to(device)
    fast.load_state_dict(ref.state_dict())
    fast.set_fast(True)
    gates.FUSED_KERNEL = kernel
    x, y = torch.rand(2, 2, 4, 1, 24, 20, device=device)
    with torch.autocast(device.type, torch.bfloat16):
        ((fast(x, 4) - y) ** 2).mean().backward()
    ((ref(x.double(), 4) - y.double()) ** 2).mean().backward()
    gates.FUSED_KERNEL = "triton"
    ga = torch.cat([p.grad.flatten() for p in fast.parameters()])
    gb = torch.cat([p.grad.flatten() for p in ref.parameters()])
    err = _rel(ga, gb)
    return {"shapes": f"model 32x48 24x20 b2 4->4 {kernel}", "param_grads": err, "ok": err < 5e-2}


def run_checks(device, out) -> int:
    """All numerics checks; prints them, writes JSON to ``out``; 0 if all pass."""
    big = (32, 64, (100, 100)) if device.type == "cuda" else (2, 64, (20, 20))  # 3x64's size
    cases = [
        gate_case(device, *big, "nhwc", torch.bfloat16),
        gate_case(device, 3, 48, (37, 29), "nhwc", torch.bfloat16),
        gate_case(device, 2, 64, (20, 24), "nchw", torch.bfloat16),
        gate_case(device, 2, 5, (11, 13), "nhwc", torch.float32),
        gate_case(device, 4, 32, (16, 16), "nhwc", torch.bfloat16, use=(True, False)),
        gate_case(device, 4, 32, (16, 16), "nhwc", torch.bfloat16, use=(False, True)),
        gate_case(device, 4, 16, (16, 16), "nhwc", torch.float16, c_grad=False),
        gate_case(device, 4, 64, (16, 16), "nhwc", torch.bfloat16, slice_dh=True),
        model_case(device, "triton"),
        model_case(device, "inductor"),
    ]
    for r in cases:
        nums = " ".join(f"{k}={v:.1e}" for k, v in r.items() if isinstance(v, float))
        print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['shapes']}: {nums}", flush=True)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({"device": _device_name(device), "cases": cases}, indent=1))
    return 0 if all(r["ok"] for r in cases) else 1


def _device_name(device) -> str:
    return torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor()
