"""The synthetic growth case: where ROVER fails (growth, decay) and what a ConvLSTM does.

    python bench/growth_case.py [--steps 300] [--work DIR] [--device cpu]

1. Synthetic storms with strong growth and decay (``SynthConfig.growth``: cells live
   ``lifetime / growth`` steps) go through the demo pipeline (``radarcast.demo.run_demo``):
   preprocess with whole sequences per split, train a small ConvLSTM on the train split on
   CPU, forecast persistence / ROVER / ConvLSTM on every test window, score them with
   ``radarcast.evaluation.evaluate`` (CSI/HSS at 0.5/2/5/10 mm/h).
2. A control: the same storms with ``growth=0`` (pure advection, frozen intensities):
   the case ROVER is built for. The ConvLSTM trained on the growth data is scored there too.
3. Test windows of the growth data are split by what happens between t0 and the last lead:
   the wet area (≥ 0.5 mm/h) grows (×1.25 or more), decays (×0.8 or less) or neither;
   scores are recomputed from evaluate's per-window counts for each group.
4. ``radarcast animate`` draws the window that gains most wet pixels (GIF and contact sheet)
   into docs/img/.

Prints tables and writes bench/results/growth_case.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from radarcast.data.preprocess import preprocess
from radarcast.data.store import open_dataset
from radarcast.data.synthetic import write_synth
from radarcast.demo import DemoConfig, preprocess_config, run_demo, synth_config
from radarcast.evaluation import evaluate
from radarcast.metrics import bias, csi, hss

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "growth_case.json"
IMG = ROOT / "docs" / "img"
GROW, DECAY = 1.25, 0.8  # wet-area ratio (last lead / t0) that makes a window grow / decay


def growth_config(steps: int, device: str, seed: int) -> DemoConfig:
    """Strong growth: cells rise and fall within 10 steps (50 min), births throughout."""
    return DemoConfig(
        train_sequences=16,
        val_sequences=2,
        test_sequences=4,
        frames=36,
        size=64,
        growth=4.0,
        speed=1.0,
        cells=8.0,
        seed=seed,
        n_in=5,
        n_out=10,
        hidden=(32,),
        kernel=3,
        patch=4,
        steps=steps,
        batch_size=8,
        lr=2e-3,
        loss="bmse",
        device=device,
    )


def summarise(scores, rows=None) -> dict:
    """Mean-over-leads CSI/HSS/bias per method and threshold, from per-window counts."""
    out = {}
    for m in scores.methods:
        counts = m.acc.counts if rows is None else m.acc.counts[rows]  # (W, L, K, 4)
        pooled = counts.sum(axis=0)  # (L, K, 4)
        out[m.name] = {
            "csi": np.nanmean(csi(pooled), axis=0).tolist(),
            "hss": np.nanmean(hss(pooled), axis=0).tolist(),
            "bias": np.nanmean(bias(pooled), axis=0).tolist(),
            "csi_per_lead_lowest": csi(pooled)[:, 0].tolist(),
        }
        if rows is None:
            out[m.name]["mse"] = float(m.result()["mse_mean_over_leads"])
    return out


def window_groups(ds, starts, n_in: int, n_out: int, px: float) -> dict[str, np.ndarray]:
    """Rows of ``starts`` whose wet area (≥ ``px``) grows, decays or stays, t0 → last lead."""
    ratios, gains = [], []
    for s in starts:
        frames = ds.frames(int(s) + n_in - 1, int(s) + n_in + n_out)  # t0 .. last lead
        a0, a1 = int((frames[0] >= px).sum()), int((frames[-1] >= px).sum())
        ratios.append((a1 + 1) / (a0 + 1))
        gains.append(a1 - a0)
    r = np.array(ratios)
    return {
        "growing": np.flatnonzero(r >= GROW),
        "decaying": np.flatnonzero(r <= DECAY),
        "steady": np.flatnonzero((r > DECAY) & (r < GROW)),
        "ratios": r,
        "gains": np.array(gains),
    }


def make_control(work: Path, cfg: DemoConfig) -> Path:
    """The same storms without growth or decay (pure advection), as a dataset."""
    ctrl = cfg.__class__(**{**asdict(cfg), "growth": 0.0})
    raw = write_synth(work / "control-raw", synth_config(ctrl), overwrite=True)
    return preprocess([raw], work / "control.h5", preprocess_config(ctrl, overwrite=True))


def animate_case(work: Path, window: int, cfg: DemoConfig) -> dict[str, str]:
    """Draw one growth window with `radarcast animate` into docs/img/: a contact sheet, a
    GIF, and a sheet of hits / misses / false alarms at the lowest threshold."""
    IMG.mkdir(parents=True, exist_ok=True)
    lowest = f"{cfg.thresholds[0]:g}"
    outputs = {
        "growth_case.png": [],
        "growth_case.gif": ["--fps", "3"],
        "growth_case_overlay.png": ["--units", "mmh", "--overlay", lowest],
    }
    made = {}
    for name, extra in outputs.items():
        args = ["animate", str(work / "dataset.h5"), "-o", str(IMG / name)]
        args += ["--window", str(window), "--scale", "3", "--overwrite", *extra]
        for m in ("persistence", "rover", "convlstm"):
            args += ["-f", str(work / "forecasts" / f"{m}.h5")]
        subprocess.run([sys.executable, "-m", "radarcast", *args], check=True, cwd=ROOT)
        made[name] = " ".join(["radarcast", *args])
    return made


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip()


def print_table(title: str, summary: dict, labels: list[str]) -> None:
    print(f"\n{title}")
    head = "method".ljust(12) + "".join(f"CSI≥{t:<9}" for t in labels) + "HSS≥" + labels[0]
    print(head + "   bias≥" + labels[0])
    for name, s in summary.items():
        cells = "".join(f"{v:<13.3f}" for v in s["csi"])
        print(f"{name:<12}{cells}{s['hss'][0]:<11.3f}{s['bias'][0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="ConvLSTM optimizer steps")
    ap.add_argument("--work", type=Path, default=Path("/tmp/radarcast-growth"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-images", action="store_true", help="skip docs/img/")
    args = ap.parse_args()
    cfg = growth_config(args.steps, args.device, args.seed)
    load_before = os.getloadavg()
    tick = time.perf_counter()
    result = run_demo(args.work, cfg, overwrite=True)
    seconds = {s.name: round(s.seconds, 1) for s in result.steps}
    scores = result.scores
    labels = [f"{v:g}" for v in scores.thresholds.values]
    with open_dataset(args.work / "dataset.h5") as ds:
        groups = window_groups(ds, scores.starts, cfg.n_in, cfg.n_out, scores.thresholds.pixels[0])
    control_path = make_control(args.work, cfg)
    control = evaluate(
        control_path,
        ["persistence", "rover", str(args.work / "convlstm" / "best.pt")],
        thresholds=cfg.thresholds,
        units="mmh",
        split="test",
        options={"rover": {"device": args.device, **cfg.rover}},
    )
    doc = {
        "thresholds_mmh": list(scores.thresholds.values),
        "lead_min": scores.lead_min,
        "growth": {"windows": len(scores.starts), "all": summarise(scores)},
        "control_growth_0": {"windows": len(control.starts), "all": summarise(control)},
    }
    for g in ("growing", "decaying", "steady"):
        rows = groups[g]
        doc["growth"][g] = {"windows": len(rows), **summarise(scores, rows)} if len(rows) else {}
    print_table(
        f"growth {cfg.growth:g}: all {len(scores.starts)} test windows",
        doc["growth"]["all"],
        labels,
    )
    for g in ("growing", "decaying", "steady"):
        if doc["growth"][g]:
            w = doc["growth"][g].pop("windows")
            print_table(f"growth {cfg.growth:g}: {g} windows ({w})", doc["growth"][g], labels)
            doc["growth"][g] = {"windows": w, **doc["growth"][g]}
    print_table(
        f"control, growth 0: {len(control.starts)} test windows",
        doc["control_growth_0"]["all"],
        labels,
    )
    best = int(np.argmax(groups["gains"]))  # the largest gain of wet pixels
    images = {} if args.no_images else animate_case(args.work, best, cfg)
    doc.update(
        {
            "animated_window": best,
            "animate_commands": images,
            "config": asdict(cfg),
            "step_seconds": seconds,
            "train_steps": cfg.steps,
            "total_seconds": round(time.perf_counter() - tick, 1),
            "window_groups": {
                "rule": f"wet area (>= {labels[0]} mm/h) at last lead / at t0: "
                f">= {GROW} growing, <= {DECAY} decaying",
                "ratios": groups["ratios"].round(3).tolist(),
            },
            "command": " ".join(["python", *sys.argv]),
            "git_commit": _git("rev-parse", "HEAD"),
            "git_dirty_files": _git("status", "--porcelain", "radarcast").splitlines(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1))
    print(f"\nsteps (s): {seconds}; wrote {OUT}")


if __name__ == "__main__":
    main()
