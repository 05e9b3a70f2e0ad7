"""Leave-one-event-out check of the learned ROVER correction, on CPU.

    python bench/study_cv.py prepare                # each event as train / train+val / test file
    python bench/study_cv.py run [--seeds 0,1]      # 5 folds × seeds: train, score; ~4 min each
    python bench/study_cv.py report                 # tables from bench/results/study_cv.json

The main study (bench/study.py) holds out two fixed events. This script asks whether the
ConvLSTM that corrects ROVER's extrapolation beats ROVER on days it has not seen, over all
five 5-minute events: for each event, a small ``rover-convlstm-2`` (2 × 32 channels, 4×4
patches, soft CSI per lead, time-reversed 96 × 96 crops, 300 steps on CPU) is trained on the
other four (the last 45% of the first of them validates) and scored on it beside
persistence and ROVER (same windows, same scorer). Results: bench/results/study_cv.json and
docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import study  # noqa: E402  (the study's events, units and helpers)

CV = study.ROOT / ".carry" / "study_cv"
OUT = study.RESULTS / "study_cv.json"
EVENTS = list(study.EVENTS)
ROLES = {"train": "1,0,0", "trainval": "0.55,0.45,0", "test": "0,0,1"}
MODEL = {"hidden": (32, 32)}  # of rover-convlstm-2: small enough for 300 CPU steps
TRAIN = dict(loss="csi", crop=96, batch_size=8, lr=2e-3, steps=300, val_every=100,
             reverse_time=True, warmup_steps=30, patience=0, val_windows=0)  # fmt: skip


def prepare(_args) -> None:
    """Every event three times, differing only in the split: train, train+val, test."""
    CV.mkdir(parents=True, exist_ok=True)
    for name, ((scale, pattern, glob), folder, _role, _split) in study.EVENTS.items():
        for role, split in ROLES.items():
            study.cli("preprocess", str(study.RAW / folder / glob), "-o",
                      str(CV / f"{name}__{role}.h5"), "--input-scale", scale, *study.SCALE,
                      "--time-pattern", pattern, "--downsample", str(study.DOWNSAMPLE),
                      "--split", split, "--n-in", str(study.N_IN), "--n-out",
                      str(study.N_OUT), "--overwrite")  # fmt: skip


def fold(test: str, seed: int, work: Path) -> dict:
    """Train on every event but ``test``, score it; per-window counts of each method."""
    from radarcast.evaluation import evaluate
    from radarcast.training import TrainConfig, train

    others = [e for e in EVENTS if e != test]
    datasets = [CV / f"{others[0]}__trainval.h5", *(CV / f"{e}__train.h5" for e in others[1:])]
    run = work / f"{test}__seed{seed}"
    cfg = TrainConfig(datasets=tuple(map(str, datasets)), preset="rover-convlstm-2",
                      model_config=dict(MODEL), n_in=study.N_IN, n_out=study.N_OUT,
                      device="cpu", workers=1, seed=seed, out=str(run), **TRAIN)  # fmt: skip
    t0 = time.perf_counter()
    vals: list[dict] = []
    train(cfg, on_step=lambda r: vals.append(r) if r["event"] == "val" else None)
    t1 = time.perf_counter()
    sc = evaluate(CV / f"{test}__test.h5", ["persistence", "rover", str(run / "best.pt")],
                  thresholds=study.THRESHOLDS, units="mmh", split="test", n_in=study.N_IN,
                  n_out=study.N_OUT, options={"rover": {"device": "cpu"}})  # fmt: skip
    counts = {("model" if m.name == run.name else m.name): m.acc.counts.tolist()
              for m in sc.methods}  # fmt: skip
    best = min(vals, key=lambda v: v["val_loss"])
    return {"test": test, "seed": seed, "train": others, "validation": others[0],
            "train_s": round(t1 - t0, 1), "score_s": round(time.perf_counter() - t1, 1),
            "best_step": best["step"], "val": vals, "counts": counts}  # fmt: skip


def run_folds(args) -> None:
    doc = json.loads(OUT.read_text()) if OUT.exists() and not args.fresh else {"folds": []}
    done = {(f["test"], f["seed"]) for f in doc["folds"]}
    doc.update(model=MODEL, train=TRAIN, preset="rover-convlstm-2", machine=platform.platform(),
               cpu_count=os.cpu_count(), thresholds_mmh=study.THRESHOLDS)  # fmt: skip
    work = Path(args.work)
    for seed in (int(s) for s in args.seeds.split(",")):
        for test in EVENTS:
            if (test, seed) in done:
                continue
            print(f"== fold {test}, seed {seed}", flush=True)
            doc["folds"].append(fold(test, seed, work))
            OUT.write_text(json.dumps(doc, separators=(",", ":")))  # resumable after each fold
            print(table(doc), flush=True)


def _scores(counts: np.ndarray) -> np.ndarray:
    """(W, L, K, 4) per-window counts → mean over leads of the per-lead pooled CSI, (K,)."""
    from radarcast.metrics import csi, nanmean

    return nanmean(csi(counts.sum(axis=0)), axis=0)


def summary(doc: dict, n_boot: int = 1000) -> dict:
    """Per event and pooled over events: CSI per method (seeds averaged), the model's
    difference to ROVER with a 95% interval (windows resampled, paired, per seed)."""
    from radarcast.evaluation import interval, paired_bootstrap

    seeds = sorted({f["seed"] for f in doc["folds"]})
    out: dict = {"events": {}, "pooled": {}}
    groups = {e: [f for f in doc["folds"] if f["test"] == e] for e in EVENTS}
    groups["pooled"] = doc["folds"]
    for name, folds in groups.items():
        if not folds:
            continue
        entry: dict = {"seeds": len({f["seed"] for f in folds})}
        methods = ("persistence", "rover", "model")
        by_seed = [  # per seed: each method's per-window counts over the group's folds
            {m: np.concatenate([np.asarray(f["counts"][m]) for f in fs]) for m in methods}
            for fs in ([f for f in folds if f["seed"] == s] for s in seeds)
            if fs
        ]
        for method in methods:
            per_seed = [_scores(c[method]) for c in by_seed]
            entry[method] = np.mean(per_seed, axis=0).tolist()
            entry[f"{method}_per_seed"] = [p.tolist() for p in per_seed]
        diffs = []
        for c in by_seed:
            boot = paired_bootstrap({"model": c["model"], "rover": c["rover"]}, n_boot, seed=0)
            iv = interval(boot["model"]["csi"] - boot["rover"]["csi"])
            diffs.append(study.ci_pairs(iv))
        entry["model_minus_rover_ci_per_seed"] = diffs
        entry["windows"] = int(sum(len(f["counts"]["rover"]) for f in folds) / entry["seeds"])
        if name == "pooled":
            out["pooled"] = entry
        else:
            out["events"][name] = entry
    return out


def table(doc: dict) -> str:
    s = summary(doc, n_boot=200)
    head = " | ".join(f"≥ {t:g}" for t in study.THRESHOLDS)
    lines = [f"| test event | windows | method | CSI {head} |", "|---" * 7 + "|"]
    for name, e in [*s["events"].items(), ("all five", s["pooled"])]:
        if not e:
            continue
        for method in ("persistence", "rover", "model"):
            cells = " | ".join(f"{v:.3f}" for v in e[method])
            lines.append(f"| {name} | {e['windows']} | {method} | {cells} |")
    return "\n".join(lines)


def report(_args) -> None:
    doc = json.loads(OUT.read_text())
    doc["summary"] = summary(doc)
    OUT.write_text(json.dumps(doc, separators=(",", ":")))
    print(table(doc))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="stage", required=True)
    sub.add_parser("prepare")
    r = sub.add_parser("run")
    r.add_argument("--seeds", default="0")
    r.add_argument("--work", default="/tmp/study-cv", help="run folders (checkpoints)")
    r.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    sub.add_parser("report")
    args = p.parse_args(argv)
    {"prepare": prepare, "run": run_folds, "report": report}[args.stage](args)


if __name__ == "__main__":
    main()
