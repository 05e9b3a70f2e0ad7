"""``radarcast study``: a comparison of nowcasting methods as one reproducible command.

Stages, each unit of work written atomically and skipped on a rerun when its inputs and
configuration are unchanged (:mod:`radarcast.study.manifest`)::

    prepare   data/NAME.h5, data/NAME__ROLE.h5        (radarcast preprocess / synth)
    (check)   no test window within n_in + n_out frames of a training frame
    train     runs/FOLD/ROW/{best,last}.pt, …          (radarcast train's code)
    forecast  forecasts/FOLD/EVENT/ROW.h5              (radarcast forecast's code)
    evaluate  evaluate/FOLD/EVENT/scores.json, evaluate/results.json   (radarcast evaluate)
    report    report.html, report.json                 (radarcast.study.report)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from radarcast.study.config import Study, load_study
from radarcast.study.manifest import Manifest

__all__ = ["Study", "StudyResult", "load_study", "run_study"]

STAGES = ("prepare", "train", "forecast", "evaluate", "report")


@dataclass(frozen=True)
class StudyResult:
    out: Path
    report: Path
    report_json: Path
    results: Path
    seconds: dict


def run_study(study: Study, out, *, device: str = "cpu", resume: bool = False,
              overwrite: bool = False, stop_after: str | None = None,
              emit: Callable[[str], None] | None = None) -> StudyResult | None:
    """Run (or continue) ``study`` in the folder ``out``; returns where the report is.

    ``device`` is 'cpu' or 'cuda' for training and the models' forecasts; ``resume`` lets a
    folder made from another version of the study file be reused where its units still
    match; ``overwrite`` empties the folder first; ``stop_after`` ends after that stage.
    ``emit`` receives one line per unit of work that runs.
    """
    import time

    from radarcast.study import data, runs, scoring

    user_emit = emit or (lambda _line: None)
    worked: set[str] = set()  # stages in which some unit ran (it emits a line)

    def emit(line: str) -> None:
        worked.add(STAGES[len(seconds)])
        user_emit(line)
    if stop_after is not None and stop_after not in STAGES:
        from radarcast.errors import RadarcastError

        raise RadarcastError(f"unknown stage {stop_after!r}; stages: {', '.join(STAGES)}")
    _check_device(device)
    out = Path(out)
    m = Manifest.open(out, study.digest(), str(study.path), resume, overwrite)
    s = study.settings
    window = s.n_in + s.n_out
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> bool:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now
        return stage == stop_after

    folds = data.folds(study)
    for name in study.datasets:
        data.prepare_event(study, name, out, m, emit)
    files = {f.name: {n: data.role_file(out, n, r, m, window) for n, r in f.roles.items()}
             for f in folds}
    for f in folds:
        data.check_leaks(f, files[f.name], s.n_in, s.n_out)
    if lap("prepare"):
        return None
    rows = runs.rows(study)
    jobs = [j for f in folds for r in rows if study.methods[r.method].kind == "model"
            for j in [runs.train_unit(study, out, f, r, files[f.name], m, device, emit)] if j]
    runs.train_pool(m, jobs, s.parallel, emit)
    if lap("train"):
        return None
    plan = []
    for f in folds:
        for event in f.tests():
            paths, units = [], [f"prepare/{files[f.name][event].stem}"]
            for r in rows:
                paths.append(runs.forecast_unit(study, out, f, r, event, files[f.name], m,
                                                device, emit))
                units.append(f"forecast/{f.name}/{event}/{r.name}")
            plan.append({"fold": f, "event": event, "dataset": files[f.name][event],
                         "files": paths, "units": units})
    if lap("forecast"):
        return None
    results = scoring.evaluate_unit(study, out, plan, m, emit)
    if lap("evaluate"):
        return None
    from radarcast.study import report

    html, doc = report.report_unit(study, out, plan, m, emit)
    lap("report")
    _write_timing(out, {k: v for k, v in seconds.items() if k in worked})
    return StudyResult(out, html, doc, results, seconds)


TIMING = "timing.json"  # this invocation's seconds per stage (a rerun's skipped stages: ~0)


def _write_timing(out: Path, seconds: dict) -> None:
    """``STUDY/timing.json``: per stage, the seconds of the latest run in which the stage did
    work (a rerun that skips a stage keeps its earlier time; one that skips all writes
    nothing). Read by ``radarcast report STUDY/report.json --update DOC.md``."""
    import json

    from radarcast.study.manifest import write_atomic

    if not seconds:
        return
    path = out / TIMING
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = {}
    merged = {k: seconds.get(k, old.get(k)) for k in STAGES if k in seconds or k in old}
    write_atomic(path, json.dumps(merged, indent=1))


def _check_device(device: str) -> None:
    from radarcast.errors import RadarcastError

    if device not in ("cpu", "cuda"):
        raise RadarcastError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RadarcastError("--device cuda: no CUDA device is available here")
