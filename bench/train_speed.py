"""Training speed: a plain ConvLSTM next to radarcast's, step by step, in one run.

(a) ``reference``: the ConvLSTM most PyTorch code has, written here: float32, one
convolution over concat[x, h] giving the four gates, then separate sigmoid/tanh/multiply
kernels, NCHW, eager; same encoder–forecaster, head, loss (masked MSE), AdamW and gradient
clipping as radarcast. (b) ``radarcast``: radarcast's model and optimizer step exactly as
``radarcast train`` runs them (``prepare_model`` + ``build_step`` from radarcast.training:
bf16 autocast, channels_last, padded channels, fused gate arithmetic, fused AdamW).
Optional (c) ``radarcast-compile``: the same with ``--compile`` (whole model compiled);
(d) ``radarcast-inductor``: radarcast with the gate arithmetic compiled by torch.compile
instead of the hand-written Triton kernels (``radarcast.models.gates.FUSED_KERNEL``), the
previous code.

``--check`` runs first on the GPU: the Triton gate kernels against float64 on random
inputs (outputs and all gradients, several shapes and layouts, memory poisoned with NaN
before each run), and a small model's parameter gradients under bf16 autocast against the
float64 model; ‖out − ref‖/‖ref‖ per tensor, NaN never passes.

Each (config, variant) gets the same random inputs; after ``--warmup`` steps, ``--steps``
steps are timed one by one with CUDA events and the median is reported, with peak GPU
memory over the timed steps. FLOPs count the gate convolutions from the config alone:
2·(C_in + C_h)·4 C_h·k²·H·W per cell step and sample (C_in unpadded: C·p² for the first
encoder layer, 0 for the first forecaster layer), training = 3 × forward.

    python bench/train_speed.py [--configs 3x64,3x128,...] [--variants reference,radarcast]
    python bench/train_speed.py --check --out check.json   # numerics of the fast path
    python bench/train_speed.py --device cpu --tiny   # a smoke test of the script on CPU
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from gate_check import _device_name, run_checks  # bench/ is on sys.path when run as a script
from torch import nn

N_IN, N_OUT = 5, 15
BF16_PEAK_TFLOPS = 800.0  # dense bf16 matrix product measured on an H100 here (KINDS.md)
CONFIGS = {
    # name: (hidden, kernel, patch, grid, batch)
    "3x64": ((64, 64, 64), 3, 1, 100, 32),
    "3x128": ((128, 128, 128), 3, 1, 100, 32),
    "convlstm-1": ((128,), 3, 1, 101, 32),
    "convlstm-2": ((64, 64), 3, 1, 101, 32),
    "convlstm-3": ((64, 32, 32), 3, 1, 101, 32),
    "shi2015-480": ((64, 64), 3, 4, 480, 16),
}
TINY = {
    k: (tuple(min(h, 8) for h in v[0]), v[1], v[2], 16 if v[2] == 1 else 32, 2)
    for k, v in CONFIGS.items()
}


# ------------------------------------------------------------------- the usual ConvLSTM
class PlainCell(nn.Module):
    """The common ConvLSTM cell: conv(concat[x, h]) → 4 gates → separate element-wise ops."""

    def __init__(self, cin: int, ch: int, k: int):
        super().__init__()
        self.conv = nn.Conv2d(cin + ch, 4 * ch, k, padding=k // 2)

    def forward(self, x, h, c):
        z = h if x is None else torch.cat([x, h], dim=1)
        i, f, g, o = torch.split(self.conv(z), h.shape[1], dim=1)
        i, f, o, g = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g)
        c = f * c + i * g
        return o * torch.tanh(c), c


class PlainEncoderForecaster(nn.Module):
    """Same structure as radarcast's: encoder, state hand-over, forecaster, 1×1 head."""

    def __init__(self, hidden, k, patch):
        super().__init__()
        self.hidden, self.patch = hidden, patch
        depth = patch * patch
        self.enc = nn.ModuleList(
            PlainCell(i, h, k) for i, h in zip([depth, *hidden[:-1]], hidden, strict=True)
        )
        self.dec = nn.ModuleList(
            PlainCell(i, h, k) for i, h in zip([0, *hidden[:-1]], hidden, strict=True)
        )
        self.head = nn.Conv2d(sum(hidden), depth, 1)

    def forward(self, x, n_out):
        b, t, _, height, width = x.shape
        p = self.patch
        z = x.reshape(b * t, 1, height, width)
        z = F.pad(z, (0, (-width) % p, 0, (-height) % p))
        z = F.pixel_unshuffle(z, p) if p > 1 else z
        z = z.reshape(b, t, *z.shape[1:])
        hs = [z.new_zeros(b, n, *z.shape[-2:]) for n in self.hidden]
        cs = [v.clone() for v in hs]
        for s in range(t):
            inp = z[:, s]
            for j, cell in enumerate(self.enc):
                hs[j], cs[j] = cell(inp, hs[j], cs[j])
                inp = hs[j]
        out = []
        for _ in range(n_out):
            inp = None
            for j, cell in enumerate(self.dec):
                hs[j], cs[j] = cell(inp, hs[j], cs[j])
                inp = hs[j]
            out.append(self.head(torch.cat(hs, dim=1)))
        y = torch.stack(out, 1).flatten(0, 1)
        y = F.pixel_shuffle(y, p) if p > 1 else y
        return torch.sigmoid(y[..., :height, :width]).reshape(b, n_out, 1, height, width)


def reference_step(hidden, k, patch, device):
    from radarcast.models.losses import mse
    from radarcast.training import TrainConfig

    cfg = TrainConfig()
    torch.backends.cudnn.benchmark = False  # the default; radarcast's runs turn it on
    model = PlainEncoderForecaster(hidden, k, patch).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def step(batch):
        b = {key: v.to(device) for key, v in batch.items()}
        loss = mse(model(b["x"], N_OUT), b["y"], b["mask_y"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        return loss.detach()

    return step


def radarcast_step(hidden, k, patch, device, compile_net=False, benchmark=True):
    from radarcast.models import build_model
    from radarcast.models.losses import get_loss
    from radarcast.training import TrainConfig, build_step, prepare_model

    cfg = TrainConfig(compile=compile_net)
    model = prepare_model(
        build_model("convlstm", {"hidden": hidden, "kernel": k, "patch": patch}),
        device,
        benchmark=benchmark,
    )
    return build_step(model, cfg, device, get_loss("mse"), N_OUT, total=10**6)


# ------------------------------------------------------------------------ measuring
def train_flops(hidden, k, patch, grid, batch) -> float:
    """FLOPs of one training step (3 × forward) of the gate convolutions, from the config."""
    hw = (-(-grid // patch)) ** 2
    enc = sum(
        2 * (ci + ch) * 4 * ch * k * k * hw
        for ci, ch in zip([patch * patch, *hidden[:-1]], hidden, strict=True)
    )
    dec = sum(
        2 * (ci + ch) * 4 * ch * k * k * hw
        for ci, ch in zip([0, *hidden[:-1]], hidden, strict=True)
    )
    return 3.0 * batch * (N_IN * enc + N_OUT * dec)


def make_batches(grid, batch, device, n=2):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        x = torch.rand(batch, N_IN, 1, grid, grid, generator=g)
        y = torch.rand(batch, N_OUT, 1, grid, grid, generator=g)
        m = torch.rand(batch, N_OUT, 1, grid, grid, generator=g) > 0.1
        out.append({"x": x.to(device), "y": y.to(device), "mask_y": m.to(device)})
    return out


def time_steps(step, batches, warmup, steps, device):
    cuda = device.type == "cuda"
    for i in range(warmup):
        step(batches[i % len(batches)])
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    marks, wall = [], []
    for i in range(steps):
        if cuda:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            loss = step(batches[i % len(batches)])
            b.record()
            marks.append((a, b))
        else:
            t0 = time.perf_counter()
            loss = step(batches[i % len(batches)])
            wall.append(1e3 * (time.perf_counter() - t0))
    if cuda:
        torch.cuda.synchronize()
        wall = [a.elapsed_time(b) for a, b in marks]
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    return statistics.median(wall), min(wall), max(wall), peak, float(loss)


def measure(name, spec, variant, device, args):
    hidden, k, patch, grid, batch = spec
    row = {
        "config": name,
        "variant": variant,
        "hidden": list(hidden),
        "kernel": k,
        "patch": patch,
        "grid": grid,
        "batch": batch,
        "n_in": N_IN,
        "n_out": N_OUT,
    }
    flops = train_flops(hidden, k, patch, grid, batch)
    row["tflop_per_step"] = flops / 1e12
    row["floor_ms"] = flops / (BF16_PEAK_TFLOPS * 1e12) * 1e3
    from radarcast.models import gates as convlstm

    convlstm.FUSED_KERNEL = "inductor" if variant == "radarcast-inductor" else "triton"
    try:
        torch.manual_seed(0)
        if variant == "reference":
            step = reference_step(hidden, k, patch, device)
        else:
            step = radarcast_step(
                hidden,
                k,
                patch,
                device,
                compile_net=variant == "radarcast-compile",
                benchmark=variant != "radarcast-no-cudnn-benchmark",
            )
        batches = make_batches(grid, batch, device)
        t0 = time.perf_counter()
        med, lo, hi, peak, loss = time_steps(step, batches, args.warmup, args.steps, device)
        row.update(
            ms_per_step=med,
            ms_min=lo,
            ms_max=hi,
            peak_gib=peak,
            last_loss=loss,
            seconds_total=time.perf_counter() - t0,
            steps_timed=args.steps,
        )
        row["samples_per_s"] = batch / med * 1e3
        row["tflops"] = flops / med / 1e9
        row["pct_of_bf16_floor"] = 100.0 * row["floor_ms"] / med
    except torch.cuda.OutOfMemoryError as e:
        row["error"] = "out of memory: " + str(e).splitlines()[0][:160]
    finally:
        step = batches = None
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        torch._dynamo.reset()  # each config compiles afresh, as a new training process would
        convlstm.FUSED_KERNEL = "triton"
    return row


def profile(name, spec, device, steps=3):
    """Kernel time table of radarcast's step (torch.profiler), top 25 by device time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    hidden, k, patch, grid, batch = spec
    step = radarcast_step(hidden, k, patch, device)
    batches = make_batches(grid, batch, device)
    for i in range(5):
        step(batches[i % 2])
    torch.cuda.synchronize()
    acts = [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    with prof(activities=acts) as p:
        for i in range(steps):
            step(batches[i % 2])
        torch.cuda.synchronize()
    print(f"profile of {name}, {steps} steps")
    try:
        table = p.key_averages().table(sort_by="self_device_time_total", row_limit=25)
    except (AttributeError, KeyError, ValueError):
        table = p.key_averages().table(sort_by="self_cuda_time_total", row_limit=25)
    print(table)


def add_ratios(rows):
    by = {(r["config"], r["variant"]): r for r in rows}
    for r in rows:
        ref = by.get((r["config"], "reference"))
        if r["variant"] == "reference" or not ref or "error" in ref or "error" in r:
            continue
        r["speedup_vs_reference"] = r["samples_per_s"] / ref["samples_per_s"]
        if r["peak_gib"] and ref["peak_gib"]:
            r["memory_vs_reference"] = r["peak_gib"] / ref["peak_gib"]


def print_table(rows):
    print(
        f"{'config':12} {'variant':17} {'ms/step':>8} {'samp/s':>7} {'TFLOP/s':>7} "
        f"{'%floor':>6} {'GiB':>6} {'x ref':>6} {'mem/ref':>7}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['config']:12} {r['variant']:17} {r['error'][:60]}")
            continue
        peak = f"{r['peak_gib']:6.1f}" if r["peak_gib"] is not None else "     -"
        sp = r.get("speedup_vs_reference")
        mem = r.get("memory_vs_reference")
        print(
            f"{r['config']:12} {r['variant']:17} {r['ms_per_step']:8.1f} "
            f"{r['samples_per_s']:7.1f} {r['tflops']:7.1f} {r['pct_of_bf16_floor']:6.1f} "
            f"{peak} {f'{sp:6.2f}' if sp else '     -'} {f'{mem:7.2f}' if mem else '      -'}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--variants", default="reference,radarcast")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (a CPU check of the script)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_speed.json"))
    ap.add_argument("--profile", default=None, help="print a kernel profile of this config")
    ap.add_argument("--check", action="store_true", help="numerics of the gate kernels only")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.check:
        raise SystemExit(run_checks(device, args.out))
    table = TINY if args.tiny else CONFIGS
    if args.profile:
        profile(args.profile, table[args.profile], device)
        return
    rows = []
    for spec in args.configs.split(","):
        name, _, only = spec.partition(":")  # "3x64:radarcast-compile" runs that variant only
        for variant in only.split("+") if only else args.variants.split(","):
            rows.append(measure(name, table[name], variant, device, args))
            add_ratios(rows)
            print(json.dumps(rows[-1]), flush=True)
            write(rows, device, args)  # after every row, so a killed run keeps what it did
    print_table(rows)
    print(f"wrote {args.out}")


def write(rows, device, args) -> None:
    payload = {
        "device": _device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "bf16_peak_tflops_assumed": BF16_PEAK_TFLOPS,
        "warmup": args.warmup,
        "steps": args.steps,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
