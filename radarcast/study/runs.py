"""The train and forecast stages: models trained by ``radarcast train``'s own code, every
method's forecasts written by ``radarcast forecast``'s own code.

A model method gives one run per seed and fold, ``runs/FOLD/ROW/`` (config.toml,
metrics.jsonl, best.pt, last.pt: kept as the study's outputs). A run killed part-way is
continued from its ``last.pt`` (training's exact resume) when the study is run again with
the same key. Forecast files: ``forecasts/FOLD/DATASET/ROW.h5``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from radarcast.errors import RadarcastError
from radarcast.study.config import MethodSpec, Study, hash_json
from radarcast.study.manifest import Manifest

PROBE_STEPS = 20
MAX_STEPS = 200_000
STEPS_FILE = "study_steps.json"  # the steps a run was given (a time budget's probe)


@dataclass(frozen=True)
class Row:
    """One row of the result tables: a method, or one seed of a model method."""

    name: str
    method: str
    seed: int | None = None


def rows(study: Study) -> list[Row]:
    """Every scored row except persistence (always scored live as evaluate's reference)."""
    out = []
    for m in study.methods.values():
        if m.kind == "persistence":
            continue
        seeded = m.kind == "model" or m.members is not None  # a model, an ensemble
        if seeded and len(m.seeds) > 1:
            out.extend(Row(f"{m.name}-s{s}", m.name, s) for s in m.seeds)
        else:
            out.append(Row(m.name, m.name, m.seeds[0] if seeded else None))
    return out


def train_config(study: Study, spec: MethodSpec, seed: int, datasets: list[Path], out: Path,
                 steps: int, device: str):
    """The TrainConfig of one run (study-set fields over the method's ``train`` table)."""
    from radarcast.config import from_dict
    from radarcast.training import TrainConfig

    s = study.settings
    fields = {"workers": 0, "patience": 0, **spec.train, "datasets": [str(d) for d in datasets],
              "preset": spec.preset, "steps": steps, "seed": seed, "n_in": s.n_in,
              "n_out": s.n_out, "device": device, "out": str(out)}
    return from_dict(TrainConfig, fields, f"methods.{spec.name}.train")


def _key_fields(cfg) -> dict:
    from radarcast.config import to_dict

    d = to_dict(cfg)
    for k in ("datasets", "out", "device", "workers", "steps"):
        d.pop(k)
    return d


def train_unit(study: Study, out: Path, fold, row: Row, files: dict[str, Path], m: Manifest,
               device: str, emit) -> dict | None:
    """Train one run unless done; returns the job for a parallel pool, or None when done or
    trained here (``study.settings.parallel`` == 1)."""
    spec = study.methods[row.method]
    run = out / "runs" / fold.name / row.name
    datasets = [files[n] for n in fold.trains()]
    probe = train_config(study, spec, row.seed, datasets, run, spec.steps or 1, device)
    key = hash_json({"train": _key_fields(probe), "steps": spec.steps, "minutes": spec.minutes,
                     "data": [m.output_hash(_unit_of(p)) for p in datasets]})
    unit = f"train/{fold.name}/{row.name}"
    if m.done(unit, key):
        return None
    resume = m.started(unit, key) is not None and all(
        (run / n).is_file() for n in ("last.pt", STEPS_FILE))
    if not resume:
        shutil.rmtree(run, ignore_errors=True)
        m.start(unit, key, {"device": device})
    job = {"unit": unit, "key": key, "cfg": probe, "steps": spec.steps, "minutes": spec.minutes,
           "resume": resume, "run": run,
           "defaults": [k for k in ("val_every", "warmup_steps") if k not in spec.train]}
    if study.settings.parallel > 1:
        return job
    emit(f"train {row.name} ({fold.name})" + (" (resumed)" if resume else ""))
    finish_train(m, job, run_job(job))
    return None


def _unit_of(path: Path) -> str:
    return f"prepare/{path.stem}"


def run_job(job: dict, start=None) -> dict:
    """Train one run (in this process or a pool worker, so that a probe of a time budget
    is timed under the load of the runs beside it: ``start``, a barrier, lets all of them
    begin together); seconds, steps, best validation."""
    import json

    from radarcast.training import train

    if start is not None:
        start.wait(timeout=900)  # every worker has imported torch and opened its data
    run: Path = job["run"]
    info: dict = {}
    if job["resume"]:
        info = json.loads((run / STEPS_FILE).read_text())
    elif job["steps"] is not None:
        info = {"steps": int(job["steps"])}
    else:
        info = probe_steps(job["cfg"], job["minutes"])
    if not job["resume"]:
        run.mkdir(parents=True, exist_ok=True)
        (run / STEPS_FILE).write_text(json.dumps(info))
    steps = info["steps"]
    cfg = dataclasses.replace(job["cfg"], steps=steps)
    defaults = {"val_every": max(1, steps // 10), "warmup_steps": min(100, max(1, steps // 10))}
    cfg = dataclasses.replace(cfg, **{k: defaults[k] for k in job["defaults"]})
    cfg = dataclasses.replace(cfg, val_every=min(cfg.val_every, steps),
                              warmup_steps=min(cfg.warmup_steps, steps))
    t0 = time.perf_counter()
    last: dict = {}
    train(cfg, on_step=lambda r: last.update(r) if r["event"] == "end" else None,
          resume=job["resume"])
    return {**info, "train_s": round(time.perf_counter() - t0, 2),
            "best_val": last.get("best_val"), "resumed": job["resume"]}


def finish_train(m: Manifest, job: dict, result: dict) -> None:
    run = job["run"]
    names = ("config.toml", "metrics.jsonl", "best.pt", "last.pt", STEPS_FILE)
    missing = [n for n in names if not (run / n).is_file()]
    if missing:
        raise RadarcastError(f"{run}: training wrote no {missing[0]}")
    m.finish(job["unit"], job["key"], [run / n for n in names], result)


def probe_steps(cfg, minutes: float) -> dict:
    """Steps that fit ``minutes``: time PROBE_STEPS steps (their second half, after the
    warm-up), in a folder that is removed after."""
    from radarcast.training import train

    ticks: list[float] = []
    probe = Path(cfg.out).with_name(f".{Path(cfg.out).name}.probe")
    shutil.rmtree(probe, ignore_errors=True)
    pcfg = dataclasses.replace(cfg, out=str(probe), steps=PROBE_STEPS, val_every=PROBE_STEPS,
                               warmup_steps=1)
    t0 = time.perf_counter()
    try:
        train(pcfg, on_step=lambda r: ticks.append(time.perf_counter())
              if r["event"] == "step" else None)
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    tail = ticks[len(ticks) // 2:]
    per_step = max((tail[-1] - tail[0]) / max(len(tail) - 1, 1), 1e-6)
    left = minutes * 60 - (time.perf_counter() - t0)
    steps = int(min(max(0.92 * left / per_step, 10), MAX_STEPS))
    return {"steps": steps, "probe_s_per_step": round(per_step, 5), "minutes": minutes}


def train_pool(m: Manifest, jobs: list[dict], workers: int, emit) -> None:
    """Run training jobs ``workers`` at a time, each in its own process (one GPU shared)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if not jobs:
        return
    emit(f"train {len(jobs)} runs, {workers} at a time")
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        # when all runs fit at once they start together, so each probe sees the others' load
        start = manager.Barrier(len(jobs)) if len(jobs) <= workers else None
        futures = {pool.submit(run_job, j, start): j for j in jobs}
        for f in as_completed(futures):
            job = futures[f]
            finish_train(m, job, f.result())
            emit(f"trained {job['unit']}")


def forecast_unit(study: Study, out: Path, fold, row: Row, name: str, files: dict[str, Path],
                  m: Manifest, device: str, emit) -> Path:
    """``forecasts/FOLD/DATASET/ROW.h5``: ``row``'s forecasts of the test windows."""
    from radarcast.data.store import open_dataset
    from radarcast.forecasters import resolve, write_forecast

    spec = study.methods[row.method]
    s = study.settings
    path = out / "forecasts" / fold.name / name / f"{row.name}.h5"
    data = m.output_hash(_unit_of(files[name]))
    if spec.kind == "model":
        train_unit_name = f"train/{fold.name}/{row.name}"
        model = m.output_hash(train_unit_name)
        spec_src, options = str(out / "runs" / fold.name / row.name / "best.pt"), {
            "device": device, **spec.options}
    else:
        model, spec_src = None, spec.kind
        options = {**({"device": device} if spec.kind == "rover" else {}), **spec.options}
        if spec.members is not None:  # forecast --method KIND --members N --seed S
            options.update(members=spec.members, seed=row.seed)
    key = hash_json({"kind": spec.kind, "options": spec.options, "model": model, "data": data,
                     "n_in": s.n_in, "n_out": s.n_out,
                     **({"members": spec.members, "seed": row.seed} if spec.members else {})})
    unit = f"forecast/{fold.name}/{name}/{row.name}"
    if m.done(unit, key):
        return path
    emit(f"forecast {row.name} on {name} ({fold.name})")
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open_dataset(files[name]) as ds:
        fc = resolve(spec_src, ds, n_in=s.n_in, n_out=s.n_out, options=options)
        fc = dataclasses.replace(fc, name=row.name)
        write_forecast(ds, fc, path, split="test", n_in=s.n_in, overwrite=True)
    m.finish(unit, key, [path], {"seconds": round(time.perf_counter() - t0, 2)})
    return path
