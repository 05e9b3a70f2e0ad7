"""The ConvLSTM gate arithmetic and its GPU kernels.

``gate_update`` is the reference (eager) function; on CUDA ``fused_gate_update`` runs it as
hand-written Triton kernels (:class:`FusedGates`) or through torch.compile
(:data:`FUSED_KERNEL` picks). CPU tensors always take the eager function.
"""

from __future__ import annotations

import torch

try:  # Triton comes with CUDA builds of PyTorch; CPU-only installs run without it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = tl = None


State = tuple[torch.Tensor, torch.Tensor]


def gate_update(gates: torch.Tensor, c: torch.Tensor, bias: torch.Tensor) -> State:
    """The gate arithmetic of one step: c' = σ(f)·c + σ(i)·tanh(g); h' = σ(o)·tanh(c').

    ``gates`` (B, 4 C_h, H, W) is the convolution without its ``bias`` (4 C_h,), which is
    added here: one pass over the gates instead of a separate bias kernel (and, fused, its
    gradient comes out of the same backward kernel). ``gates`` may be any float type (bf16
    under autocast); ``c`` (B, C_h, H, W) is in the state's precision (float32, or float64
    in the reference test). The arithmetic runs in ``c``'s precision; ``h'`` comes back in
    ``gates``' type, so that the next gate convolution reads it without a cast, and ``c'``
    in ``c``'s.
    """
    z = gates.to(c.dtype) + bias.to(c.dtype)[:, None, None]  # (B, 4 C_h, H, W)
    i, f, g, o = z.chunk(4, dim=1)  # each (B, C_h, H, W)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h.to(gates.dtype), c


def gate_update_nhwc(gates: torch.Tensor, c: torch.Tensor, bias: torch.Tensor) -> State:
    """:func:`gate_update` on channels-last data viewed as (B, H, W, 4 C_h) and (B, H, W, C_h).

    A channels_last tensor is this NHWC array in memory; handing the compiler the NHWC
    views (contiguous) makes its kernels walk memory in order. Given the NCHW-indexed
    channels_last tensors, its backward kernel wrote the gate gradients in a strided order
    and ran at a third of the memory bandwidth (H100 profile in docs/performance.md).
    """
    z = gates.to(c.dtype) + bias.to(c.dtype)  # (B, H, W, 4 C_h)
    i, f, g, o = z.chunk(4, dim=-1)  # each (B, H, W, C_h)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h.to(gates.dtype), c


_FUSED: dict = {}  # the compiled gate functions, made on first use (CUDA only)
FUSED_KERNEL = "triton"  # CUDA gate kernels: "triton" (hand-written) or "inductor" (compiled)


def _compiled(fn):
    if fn not in _FUSED:
        _FUSED[fn] = torch.compile(fn, fullgraph=True, dynamic=False)
    return _FUSED[fn]


def fused_gate_update(gates: torch.Tensor, c: torch.Tensor, bias: torch.Tensor) -> State:
    """:func:`gate_update` as one fused kernel forward and one backward.

    On CUDA with Triton (:data:`FUSED_KERNEL` ``"triton"``, float32 ``c``) this is
    :class:`FusedGates`: hand-written kernels that read each gate once each way and also
    reduce the bias gradient. Otherwise (``"inductor"``, other dtypes, or inside a
    ``torch.compile``'d model) the function is compiled by torch.compile; channels_last
    tensors go through :func:`gate_update_nhwc` on their NHWC views. CPU tensors take the
    eager function (no compiler needed), so CPU runs and tests see the same numbers.
    """
    if not gates.is_cuda:
        return gate_update(gates, c, bias)
    if FUSED_KERNEL == "triton" and _triton_fits(gates, c, bias):
        return FusedGates.apply(gates, c, bias)
    last = torch.channels_last
    if _layout(gates) == last and _layout(c) == last:
        nhwc = (0, 2, 3, 1)
        h, c = _compiled(gate_update_nhwc)(gates.permute(nhwc), c.permute(nhwc), bias)
        return h.permute(0, 3, 1, 2), c.permute(0, 3, 1, 2)  # channels_last (B, C_h, H, W)
    return _compiled(gate_update)(gates, c, bias)


def _triton_fits(gates: torch.Tensor, c: torch.Tensor, bias: torch.Tensor) -> bool:
    """Whether :class:`FusedGates` handles these tensors (else the compiled function)."""
    if triton is None or torch.compiler.is_compiling():
        return False  # a compiled model lets Inductor fuse the plain arithmetic itself
    b, ch, height, width = c.shape
    return (
        c.dtype == torch.float32
        and bias.dtype == torch.float32
        and gates.dtype in (torch.bfloat16, torch.float16, torch.float32)
        and gates.shape == (b, 4 * ch, height, width)
        and bias.shape == (4 * ch,)
    )


# --------------------------------------------------------------- Triton gate kernels
# Both kernels see every (B, C, H, W) tensor through its own strides, so channels_last,
# NCHW and channel slices (gradients from a concat) all work; a program takes rows of
# pixels m = (b, y, x) × all channels. The arithmetic runs in float32.
# fmt: off
if triton is not None:

    @triton.jit
    def _sig(x):
        return 1.0 / (1.0 + tl.exp(-x))

    @triton.jit
    def _rows(m, s_b, s_h, s_w, HW, W):
        """Memory offsets of pixel rows m (B H W order) for strides (s_b, ·, s_h, s_w)."""
        b = m // HW
        r = m - b * HW
        y = r // W
        return (b * s_b + y * s_h + (r - y * W) * s_w)[:, None]

    @triton.jit
    def _gates_fwd(G, BIAS, C0, H, C1, M, HW, W,
                   g_b, g_c, g_h, g_w, c_b, c_c, c_h, c_w,
                   h_b, h_c, h_h, h_w, o_b, o_c, o_h, o_w,
                   CH: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr):
        m = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
        ch = tl.arange(0, BLOCK_C)
        mask = (m < M)[:, None] & (ch < CH)[None, :]
        g = G + _rows(m, g_b, g_h, g_w, HW, W) + ch[None, :] * g_c
        zi = tl.load(g, mask=mask).to(tl.float32) + tl.load(BIAS + ch, mask=ch < CH)[None, :]
        zf = tl.load(g + CH * g_c, mask=mask).to(tl.float32)
        zf += tl.load(BIAS + CH + ch, mask=ch < CH)[None, :]
        zg = tl.load(g + 2 * CH * g_c, mask=mask).to(tl.float32)
        zg += tl.load(BIAS + 2 * CH + ch, mask=ch < CH)[None, :]
        zo = tl.load(g + 3 * CH * g_c, mask=mask).to(tl.float32)
        zo += tl.load(BIAS + 3 * CH + ch, mask=ch < CH)[None, :]
        c0 = tl.load(C0 + _rows(m, c_b, c_h, c_w, HW, W) + ch[None, :] * c_c, mask=mask)
        c1 = _sig(zf) * c0 + _sig(zi) * (2.0 * _sig(2.0 * zg) - 1.0)
        h = _sig(zo) * (2.0 * _sig(2.0 * c1) - 1.0)
        hp = H + _rows(m, h_b, h_h, h_w, HW, W) + ch[None, :] * h_c
        tl.store(hp, h.to(H.dtype.element_ty), mask=mask)
        tl.store(C1 + _rows(m, o_b, o_h, o_w, HW, W) + ch[None, :] * o_c, c1, mask=mask)

    @triton.jit
    def _gates_bwd(G, BIAS, C0, DH, DC, DG, DC0, PART, M, HW, W,
                   g_b, g_c, g_h, g_w, c_b, c_c, c_h, c_w,
                   dh_b, dh_c, dh_h, dh_w, dc_b, dc_c, dc_h, dc_w,
                   dg_b, dg_c, dg_h, dg_w, d0_b, d0_c, d0_h, d0_w,
                   HAS_DH: tl.constexpr, HAS_DC: tl.constexpr, WRITE_DC0: tl.constexpr,
                   CH: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr,
                   TILES: tl.constexpr):
        pid = tl.program_id(0)
        ch = tl.arange(0, BLOCK_C)
        cm = ch < CH
        bi = tl.load(BIAS + ch, mask=cm)[None, :]
        bf = tl.load(BIAS + CH + ch, mask=cm)[None, :]
        bg = tl.load(BIAS + 2 * CH + ch, mask=cm)[None, :]
        bo = tl.load(BIAS + 3 * CH + ch, mask=cm)[None, :]
        acc_i = tl.zeros([BLOCK_C], tl.float32)
        acc_f = tl.zeros([BLOCK_C], tl.float32)
        acc_g = tl.zeros([BLOCK_C], tl.float32)
        acc_o = tl.zeros([BLOCK_C], tl.float32)
        for t in range(TILES):
            m = (pid.to(tl.int64) * TILES + t) * BLOCK_M + tl.arange(0, BLOCK_M)
            mask = (m < M)[:, None] & cm[None, :]
            g = G + _rows(m, g_b, g_h, g_w, HW, W) + ch[None, :] * g_c
            si = _sig(tl.load(g, mask=mask).to(tl.float32) + bi)
            sf = _sig(tl.load(g + CH * g_c, mask=mask).to(tl.float32) + bf)
            tg = 2.0 * _sig(2.0 * (tl.load(g + 2 * CH * g_c, mask=mask).to(tl.float32) + bg))
            tg -= 1.0
            so = _sig(tl.load(g + 3 * CH * g_c, mask=mask).to(tl.float32) + bo)
            c0 = tl.load(C0 + _rows(m, c_b, c_h, c_w, HW, W) + ch[None, :] * c_c, mask=mask)
            tc = 2.0 * _sig(2.0 * (sf * c0 + si * tg)) - 1.0
            dct = tl.zeros([BLOCK_M, BLOCK_C], tl.float32)
            if HAS_DC:
                dcp = DC + _rows(m, dc_b, dc_h, dc_w, HW, W) + ch[None, :] * dc_c
                dct += tl.load(dcp, mask=mask, other=0.0).to(tl.float32)
            dzo = tl.zeros([BLOCK_M, BLOCK_C], tl.float32)
            if HAS_DH:
                dhp = DH + _rows(m, dh_b, dh_h, dh_w, HW, W) + ch[None, :] * dh_c
                dh = tl.load(dhp, mask=mask, other=0.0).to(tl.float32)
                dct += dh * so * (1.0 - tc * tc)
                dzo = dh * tc * so * (1.0 - so)
            dzi = tl.where(mask, dct * tg * si * (1.0 - si), 0.0)
            dzf = tl.where(mask, dct * c0 * sf * (1.0 - sf), 0.0)
            dzg = tl.where(mask, dct * si * (1.0 - tg * tg), 0.0)
            dzo = tl.where(mask, dzo, 0.0)
            dg = DG + _rows(m, dg_b, dg_h, dg_w, HW, W) + ch[None, :] * dg_c
            ty = DG.dtype.element_ty
            tl.store(dg, dzi.to(ty), mask=mask)
            tl.store(dg + CH * dg_c, dzf.to(ty), mask=mask)
            tl.store(dg + 2 * CH * dg_c, dzg.to(ty), mask=mask)
            tl.store(dg + 3 * CH * dg_c, dzo.to(ty), mask=mask)
            if WRITE_DC0:
                d0 = DC0 + _rows(m, d0_b, d0_h, d0_w, HW, W) + ch[None, :] * d0_c
                tl.store(d0, dct * sf, mask=mask)
            acc_i += tl.sum(dzi, axis=0)
            acc_f += tl.sum(dzf, axis=0)
            acc_g += tl.sum(dzg, axis=0)
            acc_o += tl.sum(dzo, axis=0)
        part = PART + pid * 4 * CH + ch
        tl.store(part, acc_i, mask=cm)
        tl.store(part + CH, acc_f, mask=cm)
        tl.store(part + 2 * CH, acc_g, mask=cm)
        tl.store(part + 3 * CH, acc_o, mask=cm)

# fmt: on


_TILE = 1024  # elements per (rows × channels) tile of one gate
_BWD_TILES = 8  # tiles per backward program: one bias-gradient partial per 8 tiles


def _blocks(ch: int) -> tuple[int, int]:
    block_c = triton.next_power_of_2(ch)
    return max(1, _TILE // block_c), block_c


class FusedGates(torch.autograd.Function):
    """:func:`gate_update` with hand-written Triton kernels (CUDA, or Triton's interpreter).

    Forward: one pass reads the gates (B, 4 C_h, H, W), the bias and ``c`` and writes ``h``
    (gates' type) and ``c'`` (float32). It saves only its inputs: the bf16 gates are the
    smallest record, and the activations are recomputed from them in float32 (exactly the
    values of the forward). Backward: one pass reads gates, ``c``, ``dh``, ``dc'`` and writes
    every gate gradient (4 C_h channels) and ``dc`` once, plus per-program partial sums of
    the gate gradients, which sum to the bias gradient.
    """

    @staticmethod
    def forward(ctx, gates, c, bias):
        m, hw, w = c.shape[0] * c.shape[2] * c.shape[3], c.shape[2] * c.shape[3], c.shape[3]
        h, c1 = torch.empty_like(c, dtype=gates.dtype), torch.empty_like(c)
        block_m, block_c = _blocks(c.shape[1])
        grid = (triton.cdiv(m, block_m),)
        _gates_fwd[grid](gates, bias, c, h, c1, m, hw, w,
                         *gates.stride(), *c.stride(), *h.stride(), *c1.stride(),
                         CH=c.shape[1], BLOCK_M=block_m, BLOCK_C=block_c, num_warps=4)  # fmt: skip
        ctx.save_for_backward(gates, c, bias)
        ctx.set_materialize_grads(False)
        return h, c1

    @staticmethod
    def backward(ctx, dh, dc):
        gates, c, bias = ctx.saved_tensors
        if dh is None and dc is None:
            return None, None, None
        m, hw, w = c.shape[0] * c.shape[2] * c.shape[3], c.shape[2] * c.shape[3], c.shape[3]
        block_m, block_c = _blocks(c.shape[1])
        grid = (triton.cdiv(m, block_m * _BWD_TILES),)
        dg, dc0 = torch.empty_like(gates), torch.empty_like(c)
        part = torch.empty(grid[0], gates.shape[1], device=c.device, dtype=torch.float32)
        _gates_bwd[grid](gates, bias, c, c if dh is None else dh, c if dc is None else dc,
                         dg, dc0, part, m, hw, w,
                         *gates.stride(), *c.stride(), *(c if dh is None else dh).stride(),
                         *(c if dc is None else dc).stride(), *dg.stride(), *dc0.stride(),
                         HAS_DH=dh is not None, HAS_DC=dc is not None,
                         WRITE_DC0=ctx.needs_input_grad[1], CH=c.shape[1], BLOCK_M=block_m,
                         BLOCK_C=block_c, TILES=_BWD_TILES, num_warps=4)  # fmt: skip
        dbias = part.sum(0) if ctx.needs_input_grad[2] else None
        return dg, (dc0 if ctx.needs_input_grad[1] else None), dbias


def _layout(t: torch.Tensor) -> torch.memory_format:
    """channels_last when ``t`` (B, C, H, W) is laid out so, else the default NCHW."""
    if not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
