"""Animation speed: radarcast's numpy composer vs one matplotlib figure per frame.

4 panels (Input, Truth, 2 methods) of 480×480 pixels × 20 frames (5 inputs + 15 leads),
scale 1, on one core. "Composed" frames are finished RGB canvases (titles, stamps, colour
bar, legend); GIF and MP4 encoding of the same frames are timed separately. The matplotlib
baseline draws the same 4 panels with a discrete colour map and a colour bar per frame.
Prints a table and writes bench/results/animate_speed.json.

    python bench/animate_speed.py [--repeats 3] [--mpl-frames 5]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the goal states

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from radarcast import animation as A  # noqa: E402
from radarcast.data.units import Units  # noqa: E402

N_IN, N_OUT, SIZE, METHODS = 5, 15, 480, 2


def smooth_field(rng, shape) -> np.ndarray:
    """Rain-like uint8 pixels: low-pass filtered noise, about half of it dry."""
    noise = rng.normal(size=shape)
    k = np.fft.fftfreq(shape[-1])
    filt = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * 0.02**2))
    f = np.real(np.fft.ifft2(np.fft.fft2(noise) * filt))
    f = (f - f.mean()) / f.std()
    return np.clip(110 + 60 * f, 0, 255).astype(np.uint8)


def panels(seed: int = 0) -> A.WindowPanels:
    rng = np.random.default_rng(seed)
    shape = (SIZE, SIZE)
    x = np.stack([smooth_field(rng, shape) for _ in range(N_IN)])
    y = np.stack([smooth_field(rng, shape) for _ in range(N_OUT)])
    preds = np.stack([np.stack([smooth_field(rng, shape) for _ in range(N_OUT)])
                      for _ in range(METHODS)])
    mask = np.ones((SIZE, SIZE), bool)
    mask[:, :60] = False  # a strip outside radar coverage, drawn hatched
    return A.WindowPanels(
        source="bench", start=0, times=1_600_000_000 + 300 * np.arange(N_IN + N_OUT),
        x=x, mask_x=np.broadcast_to(mask, x.shape), y=y, mask_y=np.broadcast_to(mask, y.shape),
        methods=("rover", "convlstm"), preds=preds, pred_valid=np.ones(preds.shape, bool))


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def matplotlib_frames(p: A.WindowPanels, scale: A.ColourScale, n: int) -> list[np.ndarray]:
    """The slow way: one figure per frame with imshow panels and a colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap(scale.colours / 255.0)
    cmap.set_under("white")
    norm = BoundaryNorm(list(scale.levels) + [scale.levels[-1] + 5], cmap.N)
    out = []
    for t in range(n):
        k = max(t - N_IN, 0)
        images = [p.x[min(t, N_IN - 1)], p.y[k], *p.preds[:, k]]
        fig, axes = plt.subplots(1, 4, figsize=(4 * SIZE / 100 + 1, SIZE / 100 + 0.6), dpi=100)
        for ax, img, title in zip(axes, images, ["Input", "Truth", *p.methods], strict=True):
            im = ax.imshow(scale.values[img], cmap=cmap, norm=norm, interpolation="nearest")
            ax.set_title(title)
            ax.set_xticks([]), ax.set_yticks([])
        fig.colorbar(im, ax=axes, label="dBZ")
        fig.suptitle(f"valid {A.clock(p.times[t], True)}")
        fig.canvas.draw()
        out.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mpl-frames", type=int, default=5)
    args = ap.parse_args()
    p, n = panels(), N_IN + N_OUT
    scale = A.colour_scale(Units(), "dbz", "radar")
    rows = []
    for label, cfg in [("radarcast compose", A.AnimateConfig(scale=1)),
                       ("radarcast compose, overlay", A.AnimateConfig(scale=1, overlay=30.0))]:
        A.text_block.cache_clear()  # each run renders its stamps afresh
        sec, frames = best_of(lambda cfg=cfg: list(A.animation_frames(p, scale, cfg)),
                              args.repeats)
        rows.append({"what": label, "frames": n, "seconds": sec, "frames_per_s": n / sec})
    shape = frames[0].shape
    with tempfile.TemporaryDirectory() as tmp:
        for ext in (".gif", ".mp4"):
            if ext == ".mp4":
                try:
                    A.require_video()
                except ValueError:
                    continue
            path = Path(tmp) / f"bench{ext}"

            def encode(path=path):
                path.unlink(missing_ok=True)
                return A.write_output(path, iter(frames), 4.0)

            sec, _ = best_of(encode, args.repeats)
            rows.append({"what": f"encode {ext[1:].upper()} (imageio)", "frames": n,
                         "seconds": sec, "frames_per_s": n / sec,
                         "bytes": path.stat().st_size})
    m = args.mpl_frames
    sec, _ = best_of(lambda: matplotlib_frames(p, scale, m), 1)
    rows.append({"what": "matplotlib figure per frame", "frames": m, "seconds": sec,
                 "frames_per_s": m / sec})
    ours = rows[0]["frames_per_s"]
    print(f"4 panels of {SIZE}x{SIZE}, {n} frames, canvas {shape[1]}x{shape[0]} px, 1 thread")
    print(f"{'what':32s} {'frames':>6s} {'seconds':>8s} {'frames/s':>9s} {'vs compose':>10s}")
    for r in rows:
        print(f"{r['what']:32s} {r['frames']:6d} {r['seconds']:8.3f} {r['frames_per_s']:9.1f} "
              f"{r['frames_per_s'] / ours:10.3f}")
    out = Path(__file__).parent / "results" / "animate_speed.json"
    out.write_text(json.dumps({
        "benchmark": "animate_speed", "panels": 4, "size": SIZE, "frames": n, "scale": 1,
        "canvas": [shape[1], shape[0]], "goal_frames_per_s": 50, "repeats": args.repeats,
        "machine": platform.platform(), "python": platform.python_version(),
        "numpy": np.__version__, "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
