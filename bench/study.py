"""The real-radar study: persistence, ROVER, pysteps LK, FC-LSTM and ConvLSTMs on held-out events.

    python bench/study.py prepare                    # CPU: raw files → .carry/study/*.h5
    python bench/study.py train --out DIR --budget S # GPU: train each model, score it on the tests
    python bench/study.py evaluate --models DIR/model_scores.npz --forecasts DIR/forecasts*.tar
                                                     # CPU: ROVER, pysteps, all scores, skill plots
    python bench/study.py figures                    # contact sheets + GIFs (docs/img/)

Data: pysteps-data (github.com/pySTEPS/pysteps-data) — MeteoSwiss AQC composites (3 events)
and FMI lowest-CAPPI composites (2 events), 5-min steps; BoM (6/10-min) and OPERA (15-min)
are kept out. Every event becomes one dataset on one pixel scale: reflectivity on the HKO-7
pixel scale (dBZ = 70·p/255 − 10) with MeteoSwiss' Z = 316 R^1.5 for rain rates, grids
averaged 2×2 (2 km). Split by whole events: train on MeteoSwiss 2015-05-15 and 2017-01-31
and FMI 2016-09-28 (the last 18 frames of MeteoSwiss 2015-05-15 validate), test on
MeteoSwiss 2016-07-11 and FMI 2017-05-09, 5 frames in → 12 out. Results: docs/results.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT.parent / "shared" / "data" / "pysteps-data" / "radar"
DATA = ROOT / ".carry" / "study"  # git-ignored; carried to the GPU machine
RESULTS = ROOT / "bench" / "results"
IMG = ROOT / "docs" / "img"
N_IN, N_OUT, DOWNSAMPLE, CROP = 5, 12, 2, 128
THRESHOLDS = (0.5, 2.0, 5.0, 10.0)  # mm/h
SCALE = ["--scale", "hko", "--zr-a", "316", "--zr-b", "1.5"]
MCH = ("mch", "AQC%y%j%H%M?_00005.801.gif", "*.gif")
FMI = ("fmi", "%Y%m%d%H%M_fmi*", "*.pgm.gz")
# name: (source, folder, role, train,val,test fractions)
EVENTS = {
    "mch_20150515": (MCH, "mch/20150515", "train", "0.55,0.45,0"),
    "mch_20170131": (MCH, "mch/20170131", "train", "1,0,0"),
    "fmi_20160928": (FMI, "fmi/pgm/20160928", "train", "1,0,0"),
    "mch_20160711": (MCH, "mch/20160711", "test", "0,0,1"),
    "fmi_20170509": (FMI, "fmi/pgm/20170509", "test", "0,0,1"),
}
TRAIN = [k for k, v in EVENTS.items() if v[2] == "train"]
TEST = [k for k, v in EVENTS.items() if v[2] == "test"]


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one study model is trained: preset, model_config overrides, loss, batch size,
    share of the training budget, crop, time-reversal augmentation, step cap, learning rate,
    seed."""

    preset: str
    loss: str = "bmse+csi"
    share: float = 1.0
    batch: int = 16
    crop: int = CROP
    reverse_time: bool = False
    overrides: dict = dataclasses.field(default_factory=dict)
    loss_scales: tuple[int, ...] = (1,)
    max_steps: int | None = None  # a cap below --max-steps
    lr: float = 1e-3
    seed: int = 0


MODELS = {  # trained one after another (or one process each: bench/study_gpu.sh)
    # the thesis networks: GPU run 2 trained them with MSE (commit 39273fb); run 4 with the
    # balanced loss plus the per-lead soft CSI
    "convlstm-1": Spec("convlstm-1"),
    "convlstm-2": Spec("convlstm-2"),
    "convlstm-3": Spec("convlstm-3"),
    "fc-lstm": Spec("fc-lstm", share=0.75),
    # GPU run 3 (docs/results.md), exactly as run: convlstm-2's stack (4×4 patches) moving
    # the last frame with a motion it learns itself, plus growth and decay
    # (radarcast.models.advection); larger crops; time-reversed windows (growth and decay
    # equally common); the soft CSI's first version, pooled over leads
    "advection-convlstm-2": Spec("advection-convlstm-2", loss="bmse+csi-pooled", crop=192,
                                 reverse_time=True),
    # GPU run 3: the stack correcting ROVER's extrapolation, on the soft CSI alone (in CPU
    # trials the balanced loss made it damp rain at long leads)
    "rover-convlstm-2": Spec("rover-convlstm-2", loss="csi-pooled", share=1.5, crop=192,
                             reverse_time=True),
    # run 4: both with the per-lead soft CSI; the ROVER correction also in the size of the
    # leave-one-event-out check (bench/study_cv.py: 2 × 32 channels, 96² crops, 300 steps)
    "advection-convlstm-2-lead": Spec("advection-convlstm-2", crop=192, reverse_time=True),
    "rover-convlstm-2-lead": Spec("rover-convlstm-2", loss="csi", crop=192, reverse_time=True,
                                  share=1.5, max_steps=1000),
    "rover-convlstm-2-small": Spec("rover-convlstm-2", loss="csi", crop=96, batch=8, lr=2e-3,
                                   reverse_time=True, overrides={"hidden": (32, 32)},
                                   max_steps=300),
}
# run 5: the run-4 winner with four seeds under the same load (is it ahead of ROVER by
# chance?); convlstm-2 on the soft CSI alone with time-reversed windows (does the pixel error
# term make the painting networks drop FMI's small cells?)
MODELS.update({f"rover-convlstm-2-small-s{k}": dataclasses.replace(
    MODELS["rover-convlstm-2-small"], seed=k) for k in range(4)})
MODELS["convlstm-2-csi"] = Spec("convlstm-2", loss="csi", reverse_time=True)
# run 6: run 5's recipe for the painting networks on the other thesis networks, one more seed
MODELS.update({f"{m}-csi": Spec(m, loss="csi", reverse_time=True)
               for m in ("convlstm-1", "convlstm-3", "fc-lstm")})
MODELS["convlstm-2-csi-s1"] = dataclasses.replace(MODELS["convlstm-2-csi"], seed=1)
RUNS = {  # what bench/study_gpu.sh trains (RUN=run6 by default)
    "run4": ["convlstm-1", "convlstm-2", "convlstm-3", "fc-lstm", "advection-convlstm-2-lead",
             "rover-convlstm-2-lead", "rover-convlstm-2-small"],
    "run5": [*(f"rover-convlstm-2-small-s{k}" for k in range(4)), "convlstm-2-csi"],
    "run6": ["convlstm-1-csi", "convlstm-3-csi", "fc-lstm-csi", "convlstm-2-csi-s1"],
}
BEST = "rover-convlstm-2-small-s0"
FIGURE_MODELS = ("convlstm-2", BEST, *RUNS["run4"][4:])  # whose FMI forecasts come back


def cli(*args: str) -> None:
    """Run ``radarcast ARGS`` as a subprocess (the reproducible command line)."""
    cmd = [sys.executable, "-m", "radarcast", *args]
    print("$ radarcast", " ".join(a.replace(str(ROOT) + "/", "") for a in args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


# --------------------------------------------------------------------------- prepare
def prepare(_args) -> None:
    """Each event → .carry/study/EVENT.h5 (HKO pixels, Z = 316 R^1.5, 2× averaged)."""
    DATA.mkdir(parents=True, exist_ok=True)
    for name, ((scale, pattern, glob), folder, _role, split) in EVENTS.items():
        cli("preprocess", str(RAW / folder / glob), "-o", str(DATA / f"{name}.h5"),
            "--input-scale", scale, *SCALE, "--time-pattern", pattern,
            "--downsample", str(DOWNSAMPLE), "--split", split,
            "--n-in", str(N_IN), "--n-out", str(N_OUT), "--overwrite")


# --------------------------------------------------------------------------- train (GPU)
SMOKE = {}  # crop/batch_size overrides and a forecast window limit for a quick CPU check
WORKERS = [6]  # loader processes per run (--workers)


def _config(label: str, out: Path, steps: int, device: str):
    from radarcast.training import TrainConfig

    spec = MODELS[label]
    return TrainConfig(
        datasets=tuple(str(DATA / f"{e}.h5") for e in TRAIN), preset=spec.preset,
        model_config=dict(spec.overrides), crop=SMOKE.get("crop", spec.crop),
        batch_size=SMOKE.get("batch_size", spec.batch), loss=spec.loss, lr=spec.lr,
        reverse_time=spec.reverse_time, loss_scales=spec.loss_scales, steps=steps,
        val_every=max(steps // 10, 5), val_windows=0, patience=0,
        warmup_steps=min(100, max(steps // 10, 1)), device=device,
        workers=SMOKE.get("workers", WORKERS[0]), out=str(out),
        log_every=1, seed=spec.seed,
    )


def _train_one(label: str, out: Path, budget: float, device: str, probe_steps: int,
               max_steps: int) -> dict:
    """Time ``probe_steps`` steps, then train for about ``budget`` seconds in all."""
    from radarcast.training import train

    t0 = time.perf_counter()
    ticks: list[float] = []  # wall clock at each step record: data, step, epoch turnovers
    train(_config(label, out / "probe", probe_steps, device),
          on_step=lambda r: ticks.append(time.perf_counter()) if r["event"] == "step" else None)
    shutil.rmtree(out / "probe")
    spec = MODELS[label]
    # the rate after cuDNN's autotuning and the workers' start; all of it for a short probe
    tail = ticks[len(ticks) // 2:] if len(ticks) >= 4 else ticks
    sec_per_step = max((tail[-1] - tail[0]) / max(len(tail) - 1, 1), 1e-6)
    left = budget - (time.perf_counter() - t0)
    cap = min(max_steps, spec.max_steps or max_steps)
    steps = int(np.clip(0.92 * left / sec_per_step, 10, cap))
    t1 = time.perf_counter()
    vals: list[dict] = []
    train(_config(label, out / label, steps, device),
          on_step=lambda r: vals.append(r) if r["event"] == "val" else None)
    return {"steps": steps, "train_s": round(time.perf_counter() - t1, 1),
            "probe_s": round(t1 - t0, 1), "s_per_step": round(sec_per_step, 4),
            "best_val": min(v["val_loss"] for v in vals), "val": vals,
            "loss": spec.loss, "lr": spec.lr, "seed": spec.seed, "preset": spec.preset,
            "model_config": spec.overrides,
            "batch_size": SMOKE.get("batch_size", spec.batch),
            "crop": SMOKE.get("crop", spec.crop), "reverse_time": spec.reverse_time,
            "loss_scales": list(spec.loss_scales)}


def _forecast_and_score(label: str, run: Path, fc_dir: Path, device: str) -> dict:
    """Forecast each test event with ``run/best.pt`` and score it on the spot (the scorer of
    the evaluate stage, same windows); returns per-window counts and error sums, so that the
    CPU side can add them to the baselines' and bootstrap all methods paired."""
    from radarcast.data.store import open_dataset
    from radarcast.evaluation import evaluate
    from radarcast.forecasters import resolve, write_forecast

    out = {}
    for event in TEST:
        ds = open_dataset(DATA / f"{event}.h5")
        fc = resolve(str(run / "best.pt"), ds, n_in=N_IN, n_out=N_OUT, options={"device": device})
        fc = dataclasses.replace(fc, name=label)
        path = fc_dir / f"{event}__{label}.h5"
        write_forecast(ds, fc, path, split="test", limit=SMOKE.get("limit"), overwrite=True)
        sc = evaluate(ds, ["persistence"], [path], thresholds=THRESHOLDS, units="mmh",
                      split="test", n_in=N_IN, n_out=N_OUT, limit=SMOKE.get("limit"))
        for m in sc.methods:
            out[f"{event}/{m.name}/counts"] = m.acc.counts
            out[f"{event}/{m.name}/sums"] = m.acc.sums
            out[f"{event}/{m.name}/window_ids"] = np.asarray(m.acc.window_ids)
        if event != TEST[0]:  # FMI's grid is large: keep the figure's windows of two models
            k = _pick(event, "front")
            path.unlink()
            if label not in FIGURE_MODELS:
                continue
            write_forecast(ds, fc, path, split="test", limit=SMOKE.get("limit") or k + 1,
                           overwrite=True)
    return out


def train_stage(args) -> None:
    """Train the models one after another, each for its share of ``--budget`` seconds; score
    each on the test events right away (on the GPU machine)."""
    WORKERS[0] = args.workers
    if args.smoke:
        SMOKE.update(crop=32, batch_size=2, limit=1, workers=0)
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    runs, fc_dir = work / "runs", work / "forecasts"
    fc_dir.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    labels = args.models or list(MODELS)
    start, summary, arrays = time.perf_counter(), {}, {}
    for i, label in enumerate(labels):
        left = args.budget - (time.perf_counter() - start)
        shares = [MODELS[m].share for m in labels[i:]]
        budget = left * shares[0] / sum(shares)
        print(f"== {label}: {budget:.0f} s", flush=True)
        _fresh_compiler()
        summary[label] = _train_one(label, runs, budget, args.device, args.probe_steps,
                                    args.max_steps)
        t = time.perf_counter()
        arrays.update(_forecast_and_score(label, runs / label, fc_dir, args.device))
        summary[label]["forecast_score_s"] = round(time.perf_counter() - t, 1)
        print(json.dumps({k: v for k, v in summary[label].items() if k != "val"}), flush=True)
        for f in (runs / label).glob("*.pt"):  # checkpoints stay on the GPU machine
            f.unlink()
        np.savez_compressed(out / "model_scores.npz", **arrays)
        _pack(out, runs, fc_dir, summary, args.budget, time.perf_counter() - start)
    if not args.keep:
        shutil.rmtree(runs)
        shutil.rmtree(fc_dir)


def _fresh_compiler() -> None:
    """Forget torch.compile graphs of the previous model: the ConvLSTM's compiled gate
    update is process-global and would hit dynamo's recompile limit after a few models."""
    import torch

    torch._dynamo.reset()
    torch._dynamo.config.recompile_limit = 64


def _pack(out: Path, runs: Path, fc_dir: Path, summary: dict, budget: float, total: float):
    """train_summary.json, runs.tar (logs, configs) and forecasts*.tar (the figures' forecast
    files), after every model."""
    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor()
    doc = {"device": dev, "torch": torch.__version__, "budget_s": budget,
           "total_s": round(total, 1), "models": summary}
    (out / "train_summary.json").write_text(json.dumps(doc, indent=1))
    with tarfile.open(out / "runs.tar", "w") as tar:
        for label in summary:
            for name in ("metrics.jsonl", "config.toml"):
                tar.add(runs / label / name, arcname=f"{label}/{name}")
    _tar_groups(sorted(fc_dir.glob("*.h5")), out, 4)  # 8 files come back: log, 3 + 4 tars


def _tar_groups(files: list[Path], out: Path, n_tars: int, total: int = 60_000_000) -> None:
    """``files``, in their order of priority up to ``total`` bytes (64 MiB come back in all),
    into at most ``n_tars`` tars out/forecasts{i}.tar of under 15.5 MB each (16 MiB come back
    per file); what does not fit stays behind."""
    for old in out.glob("forecasts*.tar"):
        old.unlink()
    limit, chosen, size = 15_500_000, [], 0
    for f in files:
        if f.stat().st_size < limit and size + f.stat().st_size <= total:
            chosen.append(f)
            size += f.stat().st_size
    groups: list[list[Path]] = [[]]
    for f in sorted(chosen, key=lambda f: -f.stat().st_size):
        group = next((g for g in groups if sum(x.stat().st_size for x in g)
                      + f.stat().st_size < limit), None)
        if group is None:
            groups.append(group := [])
        group.append(f)
    for i, group in enumerate(groups[:n_tars]):
        with tarfile.open(out / f"forecasts{i}.tar", "w") as tar:
            for f in group:
                tar.add(f, arcname=f.name)


def bundle(args) -> None:
    """bench/study_gpu.sh's per-model folders (WORK/MODEL/out) → the 8 files that come back
    from the GPU machine: models.tar (each model's scores, summary, run logs, its log.txt),
    train_summary.json (all models) and forecasts0-5.tar (every model's forecast files)."""
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dirs = sorted(d / "out" for d in work.iterdir() if (d / "out" / "model_scores.npz").exists())
    merged: dict = {}
    fc_dir = work / "all-forecasts"
    fc_dir.mkdir(exist_ok=True)
    with tarfile.open(out / "models.tar", "w") as tar:
        for extra in work.glob("*.txt"):
            tar.add(extra, arcname=extra.name)
        for d in dirs:
            label = d.parent.name
            for f in d.iterdir():
                if f.name.startswith("forecasts"):
                    with tarfile.open(f) as fc:
                        fc.extractall(fc_dir, filter="data")
                else:
                    tar.add(f, arcname=f"{label}/{f.name}")
            doc = json.loads((d / "train_summary.json").read_text())
            merged = merged or {**doc, "models": {}, "total_s": 0.0}
            merged["models"].update(doc["models"])
            merged["total_s"] = max(merged["total_s"], doc["total_s"])
    (out / "train_summary.json").write_text(json.dumps(merged, indent=1))
    # the growth case's event first (every model there), then the other event's figure files
    files = sorted(fc_dir.glob("*.h5"), key=lambda f: (not f.name.startswith(TEST[0]), f.name))
    _tar_groups(files, out, 6)
    print(f"bundled {len(dirs)} models into {out}")


# --------------------------------------------------------------------------- baselines (CPU)
def pysteps_forecast(event: str, out: Path) -> Path:
    """pysteps: Lucas–Kanade motion of the last 3 frames + semi-Lagrangian extrapolation of
    the last frame, on the pixel field (∝ dBZ; invalid pixels, and what enters from outside
    the grid, as dry)."""
    from pysteps import motion, nowcasts

    from radarcast.data.forecast_file import ForecastWriter
    from radarcast.data.store import open_dataset
    from radarcast.forecasters import read_inputs

    ds = open_dataset(DATA / f"{event}.h5")
    starts = ds.windows(N_IN, N_OUT, "test")
    lk, extrapolate = motion.get_method("LK"), nowcasts.get_method("extrapolation")
    config = {"method": "pysteps", "motion": "LK (last 3 frames)",
              "extrapolation": "semilagrangian", "field": "pixel (HKO dBZ scale)"}
    with ForecastWriter(out, ds, starts, method="pysteps-LK", config=config, n_in=N_IN,
                        n_out=N_OUT, split="test", overwrite=True) as writer:
        for s in starts:
            x = np.nan_to_num(read_inputs(ds, np.array([s]), N_IN)[0], nan=0.0)
            velocity = lk(x[-3:], verbose=False)
            fc = extrapolate(x[-1], velocity, N_OUT)  # NaN where advected from outside
            writer.write(np.nan_to_num(fc, nan=0.0)[None])  # dry, as ROVER's outside="zero"
        return writer.finish()


def baselines(event: str, fc_dir: Path) -> list[Path]:
    """ROVER and pysteps forecast files of the test windows (made once, then reused)."""
    ds = DATA / f"{event}.h5"
    rover, lk = fc_dir / f"{event}__rover.h5", fc_dir / f"{event}__pysteps-LK.h5"
    t = {}
    if not rover.exists():
        t0 = time.perf_counter()
        cli("rover", str(ds), "-o", str(rover), "--split", "test", "--device", "cpu")
        t["rover_s"] = time.perf_counter() - t0
    if not lk.exists():
        t0 = time.perf_counter()
        pysteps_forecast(event, lk)
        t["pysteps_s"] = time.perf_counter() - t0
    if t:
        print(event, {k: round(v, 1) for k, v in t.items()})
    return [rover, lk]


# --------------------------------------------------------------------------- evaluate
def ci_pairs(iv: dict) -> list:
    """{"low": (K,), "high": (K,)} → [[low, high] per threshold]."""
    return np.stack([iv["low"], iv["high"]], 1).tolist()


def _pooled(per_event: list, n_boot: int, seed: int = 0) -> dict:
    """Scores over the windows of all test events together, with paired bootstrap intervals
    (of each score, and of each method's difference to persistence and to ROVER)."""
    from radarcast.evaluation import interval, paired_bootstrap
    from radarcast.metrics import continuous_scores, csi, hss, nanmean

    names = [m.name for m in per_event[0].methods  # methods scored on every test event
             if all(m.name in [x.name for x in s.methods] for s in per_event)]
    counts = {n: np.concatenate([s.method(n).acc.counts for s in per_event]) for n in names}
    sums = {n: np.concatenate([s.method(n).acc.sums for s in per_event]) for n in names}
    boot = paired_bootstrap(counts, n_boot, seed)
    out: dict = {}
    for n in names:
        c = counts[n].sum(0)
        cont = continuous_scores(sums[n].sum(0))
        out[n] = {"csi": nanmean(csi(c), 0).tolist(), "hss": nanmean(hss(c), 0).tolist(),
                  "csi_ci": ci_pairs(interval(boot[n]["csi"])),
                  "hss_ci": ci_pairs(interval(boot[n]["hss"])),
                  "csi_per_lead": csi(c).tolist(),
                  "mse": float(nanmean(cont["mse"], 0)), "b_mse": float(nanmean(cont["b_mse"], 0))}
        for ref in ("persistence", "rover"):
            diff = boot[n]["csi"] - boot[ref]["csi"]
            out[n][f"csi_minus_{ref}_ci"] = ci_pairs(interval(diff))
    return out


def _summary(scores) -> dict:
    out = {}
    for m in scores.methods:
        r = m.result()
        b = scores.bootstrap["methods"][m.name]
        out[m.name] = {
            "csi": r["csi_mean_over_leads"].tolist(), "hss": r["hss_mean_over_leads"].tolist(),
            "csi_ci": ci_pairs(b["csi"]), "hss_ci": ci_pairs(b["hss"]),
            "mse": float(r["mse_mean_over_leads"]), "b_mse": float(r["b_mse_mean_over_leads"]),
        }
        if "csi_minus_rover" in b:
            out[m.name]["csi_minus_rover_ci"] = ci_pairs(b["csi_minus_rover"])
    return out


def _add_models(sc, event: str, arrays) -> None:
    """Append the models scored on the GPU machine (per-window counts and sums) to ``sc``,
    after checking that both machines scored persistence on the same windows identically."""
    from radarcast.evaluation import MethodScores
    from radarcast.metrics import ScoreAccumulator

    ref = sc.method("persistence").acc
    names = sorted({k.split("/")[1] for k in arrays if k.startswith(event + "/")})
    for name in [n for n in MODELS if n in names] + ["persistence"]:
        ids = arrays[f"{event}/{name}/window_ids"].tolist()
        if ids != ref.window_ids:
            raise SystemExit(f"{event}/{name}: scored on other windows than here")
        if name == "persistence":
            if not np.array_equal(arrays[f"{event}/{name}/counts"], ref.counts):
                raise SystemExit(f"{event}: persistence counts differ between the machines")
            continue
        acc = ScoreAccumulator.init(ref.thresholds, ref.n_leads, ref.units)
        acc.window_ids = list(ids)
        acc._counts = [arrays[f"{event}/{name}/counts"]]
        acc._sums = [arrays[f"{event}/{name}/sums"]]
        sc.methods.append(MethodScores(name, "GPU machine (bench/study.py train)",
                                       {"label": name}, acc))


def evaluate_stage(args) -> None:
    """Score persistence, ROVER and pysteps here; add the models scored on the GPU machine;
    bootstrap all methods together (paired, same seed)."""
    from radarcast.evaluation import bootstrap_intervals, evaluate

    fc_dir = DATA / "forecasts"
    fc_dir.mkdir(parents=True, exist_ok=True)
    for path in args.forecasts or ():
        with tarfile.open(path) as tar:
            tar.extractall(fc_dir, filter="data")
    arrays = {}
    for path in args.models or ():  # one file per GPU process or call
        arrays.update(np.load(path))
    doc, per_event = {"thresholds_mmh": THRESHOLDS, "bootstrap": args.bootstrap,
                      "events": {}}, []
    tag = f"_{args.tag}" if args.tag else ""
    for event in TEST:
        files = baselines(event, fc_dir)
        sc = evaluate(DATA / f"{event}.h5", ["persistence"], files, thresholds=THRESHOLDS,
                      units="mmh", split="test", n_in=N_IN, n_out=N_OUT)
        _add_models(sc, event, arrays)
        sc.bootstrap = bootstrap_intervals(sc.methods, args.bootstrap, seed=0, against=("rover",))
        tmp = DATA / "scores" / event
        sc.write(tmp, overwrite=True)
        shutil.copy(tmp / "scores.json", RESULTS / f"study_scores_{event}{tag}.json")
        if args.plot:  # a readable figure: the methods named, in that order
            keep = [sc.method(n) for n in args.plot if n in [m.name for m in sc.methods]]
            dataclasses.replace(sc, methods=keep).plot(IMG / f"study_skill_{event}{tag}.png")
        else:
            shutil.copy(tmp / "skill.png", IMG / f"study_skill_{event}{tag}.png")
        doc["events"][event] = {"windows": len(sc.starts), "scores": _summary(sc)}
        per_event.append(sc)
    doc["pooled"] = {"windows": int(sum(len(s.starts) for s in per_event)),
                     "scores": _pooled(per_event, args.bootstrap)}
    train_json = RESULTS / f"study_train{tag}.json"
    if train_json.exists():
        doc["training"] = json.loads(train_json.read_text())
    (RESULTS / f"study{tag}.json").write_text(json.dumps(doc, indent=1))
    for name, part in [*doc["events"].items(), ("pooled", doc["pooled"])]:
        print(table(name, part))


def table(name: str, part: dict) -> str:
    """Markdown table: mean CSI [95% CI] per threshold, HSS at 0.5/2, MSE, B-MSE."""
    head = " | ".join(f"CSI ≥ {t:g}" for t in THRESHOLDS)
    lines = [f"\n{name} ({part['windows']} windows)\n",
             f"| method | {head} | HSS ≥ 0.5 | HSS ≥ 2 | MSE | B-MSE |",
             "|---" * (len(THRESHOLDS) + 5) + "|"]
    for m, s in part["scores"].items():
        cells = [f"{c:.3f} [{lo:.3f}, {hi:.3f}]"
                 for c, (lo, hi) in zip(s["csi"], s["csi_ci"], strict=True)]
        hss = [f"{h:.3f} [{lo:.3f}, {hi:.3f}]" for h, (lo, hi) in
               list(zip(s["hss"], s["hss_ci"], strict=True))[:2]]
        lines.append(f"| {m} | {' | '.join(cells + hss)} | {s['mse'] * 1e3:.2f}e-3 | "
                     f"{s['b_mse'] * 1e3:.2f}e-3 |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures
def _pick(event: str, kind: str) -> int:
    """Test window to draw: 'growth' gains most wet pixels (≥ 0.5 mm/h) from t0 to +60 min;
    'front' has the largest wet area at t0."""
    from radarcast.data.store import open_dataset

    ds = open_dataset(DATA / f"{event}.h5")
    thr = float(ds.units.to_pixel(np.array([0.5]), "mmh")[0])
    starts = ds.windows(N_IN, N_OUT, "test")
    frames = ds.frames(0, ds.n_frames)
    wet = (frames >= thr).sum(axis=(1, 2)).astype(float)
    t0 = wet[starts + N_IN - 1]
    gain = wet[starts + N_IN + N_OUT - 1] - t0
    return int(np.argmax(gain if kind == "growth" else t0))


FIGURES = {  # case: (event, window choice of _pick); FMI's grid is large: a sheet only
    "growth": (TEST[0], "growth"), "front": (TEST[0], "front"), "showers": (TEST[1], "front"),
}


def figures(args) -> None:
    """Contact sheets (PNG) and animations (GIF) of a growing-storm case and a moving-front
    case (MeteoSwiss), and a contact sheet of FMI's scattered showers."""
    fc_dir = DATA / "forecasts"
    for case, (event, kind) in FIGURES.items():
        if args.cases and case not in args.cases:
            continue
        k = _pick(event, kind)
        big = event == TEST[1]  # 613×380: three leads, one baseline
        outputs = [(".png", ["--leads", "1,6,12" if big else "1,4,8,12"],
                    ("rover",) if big else ("rover", "pysteps-LK"))]
        if not big:
            outputs.append((".gif", ["--fps", "3"], ("rover",)))
        for ext, extra, methods in outputs:
            files = [fc_dir / f"{event}__{m}.h5" for m in (*methods, *args.models)]
            fargs = [a for f in files if f.exists() for a in ("-f", str(f))]
            cli("animate", str(DATA / f"{event}.h5"), "-o", str(IMG / f"study_{case}{ext}"),
                "--window", str(k), "--scale", "1", *fargs, *extra, "--overwrite")
            _shrink(IMG / f"study_{case}{ext}")


def _shrink(path: Path, colours: int = 64) -> None:
    """Re-quantise a GIF or PNG to ``colours`` colours (the radar colour map has 15 levels,
    the rest is text and anti-aliasing), so that the figures stay a few hundred kB."""
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        frames = [f.convert("RGB").quantize(colors=colours) for f in ImageSequence.Iterator(im)]
        duration = im.info.get("duration", 333)
    if len(frames) == 1:
        frames[0].save(path, optimize=True)
    else:
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration,
                       loop=0, optimize=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="stage", required=True)
    sub.add_parser("prepare")
    t = sub.add_parser("train")
    t.add_argument("--out", required=True,
                   help="train_summary.json, model_scores.npz, runs.tar, forecasts*.tar")
    t.add_argument("--work", default="/tmp/study-work", help="run folders, forecast files")
    t.add_argument("--budget", type=float, default=420.0, help="seconds for all models")
    t.add_argument("--device", default="cuda")
    t.add_argument("--probe-steps", type=int, default=40)
    t.add_argument("--max-steps", type=int, default=20000)
    t.add_argument("--models", nargs="*")
    t.add_argument("--workers", type=int, default=6, help="loader processes per model")
    t.add_argument("--smoke", action="store_true", help="tiny crops/batches, 1 forecast")
    t.add_argument("--keep", action="store_true", help="keep checkpoints and forecast files")
    e = sub.add_parser("evaluate")
    e.add_argument("--forecasts", nargs="*", help="forecasts*.tar from the train stage")
    e.add_argument("--models", nargs="*", help="model_scores.npz files from the train stage")
    e.add_argument("--bootstrap", type=int, default=1000)
    e.add_argument("--tag", default="", help="suffix of the result files (one per GPU run)")
    e.add_argument("--plot", nargs="*", help="methods of the skill plots (default: all)")
    b = sub.add_parser("bundle")
    b.add_argument("--work", required=True, help="bench/study_gpu.sh's WORK (WORK/MODEL/out)")
    b.add_argument("--out", required=True, help="models.tar, train_summary.json, forecasts*.tar")
    f = sub.add_parser("figures")
    f.add_argument("--models", nargs="+", default=[BEST], help="learned models to draw")
    f.add_argument("--cases", nargs="*", choices=list(FIGURES), help="default: all")
    args = p.parse_args(argv)
    {"prepare": prepare, "train": train_stage, "evaluate": evaluate_stage,
     "figures": figures, "bundle": bundle}[args.stage](args)


if __name__ == "__main__":
    main()
