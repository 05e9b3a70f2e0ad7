"""The whole workflow on built-in synthetic data: ``run_demo(out_dir, config) → DemoResult``.

Steps, each timed, each writing into ``out_dir``::

    synth      raw/               PNG frames of moving, growing and decaying storm cells
    preprocess dataset.h5         the radarcast/1 dataset (whole sequences per split)
    train      convlstm/          a small ConvLSTM: config.toml, best.pt, last.pt, metrics.jsonl
    forecast   forecasts/*.h5     persistence, ROVER and the ConvLSTM on every test window
    evaluate   scores/            scores.json, scores.csv, skill.png
    animate    animation.gif, contact_sheet.png   input | truth | persistence | rover | convlstm

``demo.json`` records the config and every step's outputs and time. Progress goes through
``on_event(record)``; nothing here prints.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from radarcast.demo.config import (  # noqa: F401  (re-exported: the old import path)
    DEVICES,
    FORECAST_METHODS,
    OUTPUT_NAMES,
    RUN_NAME,
    DemoConfig,
    DemoResult,
    DemoStep,
    EventFn,
)
from radarcast.demo.steps import (  # noqa: F401  (re-exported: the old import path)
    _STEP_TABLE,
    _animate,
    _evaluate,
    _forecast,
    _preprocess,
    _score_summary,
    _synth,
    _train,
    preprocess_config,
    rainiest_window,
    synth_config,
    train_config,
)
from radarcast.errors import RadarcastError


# --------------------------------------------------------------------------- driver
def prepare_out_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Create ``out_dir``; refuse a non-empty one unless ``overwrite``, which then removes
    only the demo's own outputs (:data:`OUTPUT_NAMES`), never anything else."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RadarcastError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise RadarcastError(f"{out} is not empty; pass --overwrite or choose another --out")
        for name in OUTPUT_NAMES:
            p = out / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
    if not out.parent.exists():
        raise RadarcastError(f"folder {out.parent} does not exist")
    out.mkdir(exist_ok=True)
    return out


def check_device(device: str) -> None:
    """Refuse 'cuda' before any work when torch sees no CUDA device."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RadarcastError("--device cuda asked for, but CUDA is not available")


def run_demo(
    out_dir: str | os.PathLike,
    config: DemoConfig = DemoConfig(),
    on_event: EventFn | None = None,
    overwrite: bool = False,
) -> DemoResult:
    """Run synth → preprocess → train → forecast → evaluate → animate into ``out_dir``.

    ``on_event(record)`` receives ``{"event": "start", "step", "what"}`` before a step,
    ``{"event": "progress", "step", "done", "total"}`` while it runs, each training record
    of :func:`radarcast.training.train` as ``{"event": "train", "record"}``, and
    ``{"event": "end", "step", "seconds", "outputs", "summary"}`` after it. A non-empty
    ``out_dir`` is refused unless ``overwrite``.
    """
    config.check()
    check_device(config.device)
    out = prepare_out_dir(out_dir, overwrite)
    result = DemoResult(out, config)
    emit = on_event or (lambda record: None)
    for name, what, fn in _STEP_TABLE:
        emit({"event": "start", "step": name, "what": what})
        tick = time.perf_counter()
        outputs, summary = fn(out, config, result, _progress(emit, name), emit)
        step = DemoStep(name, outputs, time.perf_counter() - tick, summary)
        result.steps.append(step)
        emit(dict(event="end", step=name, seconds=step.seconds, outputs=outputs, summary=summary))
    _write_record(result)
    return result


def _progress(emit: EventFn, step: str) -> Callable[[int, int], None]:
    return lambda done, total: emit(
        {"event": "progress", "step": step, "done": done, "total": total}
    )


def _write_record(result: DemoResult) -> Path:
    path = result.out_dir / "demo.json"
    doc = {
        "config": asdict(result.config),
        "steps": [
            dict(
                name=s.name,
                seconds=round(s.seconds, 3),
                summary=s.summary,
                outputs={k: str(p) for k, p in s.outputs.items()},
            )
            for s in result.steps
        ],
        "total_seconds": round(result.seconds, 3),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)
    return path
