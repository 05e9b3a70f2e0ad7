"""Batch-1 forecast latency (the operational case): plain eager vs radarcast's settings vs
a CUDA graph of the same forward.

For each model (3×64 on 100×100, shi2015 on 480×480 with 4×4 patches), batch 1, 5 → 15
frames, in inference mode:

- ``fp32-eager``: the model as built (float32, NCHW, gate arithmetic op by op);
- ``bf16-fast``: ``set_fast`` (channels_last, padded channels, fused gates) under bf16
  autocast, eager launches;
- ``bf16-fast-graph``: the same forward captured once in a CUDA graph and replayed (a
  static input buffer is filled, then one launch runs every kernel).

Median of ``--repeats`` forecasts timed with CUDA events after warm-up; the graph's output
is checked against the fp32 forecast (‖Δ‖/‖ref‖).

    python bench/infer_latency.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import platform
import statistics
from pathlib import Path

import torch
from _common import write_json  # noqa: E402  (bench/ is on sys.path when run as a script)

N_IN, N_OUT = 5, 15
MODELS = {"3x64-100": ((64, 64, 64), 1, 100), "shi2015-480": ((64, 64), 4, 480)}


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def graphed(forward, static_x: torch.Tensor):
    """Capture ``forward(static_x)`` in a CUDA graph; returns (replay, static output)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            forward(static_x)  # compile and autotune outside the capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = forward(static_x)
    return graph.replay, out


def run_model(name: str, repeats: int) -> list[dict]:
    from radarcast.models import build_model

    hidden, patch, grid = MODELS[name]
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model("convlstm", {"hidden": hidden, "patch": patch}).to(dev).eval()
    x = torch.rand(1, N_IN, 1, grid, grid, device=dev)
    rows = []

    with torch.inference_mode():
        ref = model(x, N_OUT)
        for _ in range(3):
            model(x, N_OUT)
        rows.append({"variant": "fp32-eager", "ms": _timed(lambda: model(x, N_OUT), repeats)})

        model.set_fast(True)

        def fast(inp):
            with torch.autocast("cuda", torch.bfloat16):
                return model(inp, N_OUT)

        for _ in range(3):
            fast(x)
        rows.append({"variant": "bf16-fast", "ms": _timed(lambda: fast(x), repeats)})
        out = fast(x)
        rows[-1]["rel_error_vs_fp32"] = float((out.float() - ref).norm() / ref.norm())
        static_x = x.clone()
        try:
            replay, out = graphed(fast, static_x)
        except RuntimeError as e:  # record why, keep the other rows
            rows.append({"variant": "bf16-fast-graph", "ms": None, "error": str(e)[:300]})
        else:

            def step():
                static_x.copy_(x)
                replay()

            rows.append({"variant": "bf16-fast-graph", "ms": _timed(step, repeats)})
            step()
            torch.cuda.synchronize()
            rows[-1]["rel_error_vs_fp32"] = float((out.float() - ref).norm() / ref.norm())
    for r in rows:
        r.update(model=name, hidden=list(hidden), patch=patch, grid=grid, n_in=N_IN, n_out=N_OUT)
        r["speedup_vs_fp32_eager"] = rows[0]["ms"] / r["ms"] if r["ms"] else None
    torch._dynamo.reset()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "infer_latency.json"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("infer_latency needs a CUDA GPU")
    rows = [r for name in args.models.split(",") for r in run_model(name, args.repeats)]
    print(f"{'model':12} {'variant':16} {'ms':>8} {'x fp32':>7}")
    for r in rows:
        if r["ms"] is None:
            print(f"{r['model']:12} {r['variant']:16} failed: {r['error'][:80]}")
            continue
        print(f"{r['model']:12} {r['variant']:16} {r['ms']:8.2f} {r['speedup_vs_fp32_eager']:7.2f}")
    payload = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "repeats": args.repeats,
        "rows": rows,
    }
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
