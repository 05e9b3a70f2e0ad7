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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radarcast.errors import RadarcastError

EventFn = Callable[[dict], None]
DEVICES = ("auto", "cpu", "cuda")
# What run_demo writes directly under out_dir; only these are replaced with overwrite.
OUTPUT_NAMES = tuple(
    "raw dataset.h5 convlstm forecasts scores animation.gif contact_sheet.png demo.json".split()
)
RUN_NAME = "convlstm"  # the run folder, hence the method name in tables and panels
FORECAST_METHODS = ("persistence", "rover", RUN_NAME)


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo. The defaults take ~5 minutes on a busy 2-core CPU (400 steps).

    ``train_sequences`` / ``val_sequences`` / ``test_sequences`` whole synthetic sequences
    go to each split; ``size`` is the square grid in pixels; ``speed`` the largest storm
    speed in pixels per 5-minute step; ``growth`` the synth growth/decay strength.
    ``hidden`` / ``kernel`` / ``patch`` shape the ConvLSTM (``patch`` × ``patch``
    space-to-depth keeps it cheap); ``steps`` optimizer steps of ``batch_size`` windows;
    ``thresholds`` in mm/h; ``rover`` ROVER's options (fields of
    :class:`~radarcast.baselines.rover.RoverConfig`; empty: its defaults); ``window`` the
    test window drawn (None: the rainiest).
    """

    train_sequences: int = 12
    val_sequences: int = 1
    test_sequences: int = 3
    frames: int = 36
    size: int = 64
    growth: float = 1.0
    speed: float = 1.0
    cells: float = 8.0
    seed: int = 0
    n_in: int = 5
    n_out: int = 10
    hidden: tuple[int, ...] = (32,)
    kernel: int = 3
    patch: int = 4
    steps: int = 400
    batch_size: int = 8
    lr: float = 2e-3
    loss: str = "bmse"
    thresholds: tuple[float, ...] = (0.5, 2.0, 5.0, 10.0)
    rover: dict = field(default_factory=dict)
    device: str = "auto"
    window: int | None = None

    @classmethod
    def quick(cls, **changes: Any) -> DemoConfig:
        """A seconds-long variant for tests and CI: tiny grid, few frames, a few steps."""
        small = dict(
            train_sequences=3,
            val_sequences=1,
            test_sequences=1,
            frames=14,
            size=32,
            n_in=4,
            n_out=4,
            hidden=(8,),
            patch=2,
            steps=4,
            batch_size=4,
        )
        return cls(**{**small, **changes})

    @property
    def sequences(self) -> int:
        return self.train_sequences + self.val_sequences + self.test_sequences

    def check(self) -> None:
        if self.device not in DEVICES:
            raise RadarcastError(
                f"unknown device {self.device!r}; choose one of: {', '.join(DEVICES)}"
            )
        if min(self.train_sequences, self.val_sequences, self.test_sequences) < 1:
            raise RadarcastError("the demo needs at least one sequence per split")
        if self.frames < self.n_in + self.n_out:
            raise RadarcastError(
                f"demo frames ({self.frames}) must be ≥ n_in + n_out ({self.n_in + self.n_out})"
            )
        if self.steps < 1 or self.batch_size < 1:
            raise RadarcastError("demo steps and batch_size must be ≥ 1")


@dataclass
class DemoStep:
    """One finished step: its name, what it wrote, how long it took, and a short summary."""

    name: str
    outputs: dict[str, Path]
    seconds: float
    summary: str = ""


@dataclass
class DemoResult:
    """Everything :func:`run_demo` did; ``scores`` is the :class:`~radarcast.evaluation.Scores`."""

    out_dir: Path
    config: DemoConfig
    steps: list[DemoStep] = field(default_factory=list)
    scores: Any = None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


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


# --------------------------------------------------------------------------- steps
def synth_config(config: DemoConfig):
    """The :class:`~radarcast.data.synthetic.SynthConfig` of the demo's data."""
    from radarcast.data.synthetic import SynthConfig

    return SynthConfig(
        sequences=config.sequences,
        frames=config.frames,
        height=config.size,
        width=config.size,
        seed=config.seed,
        growth=config.growth,
        speed=config.speed,
        cells=config.cells,
    )


def _synth(out: Path, config: DemoConfig, result, progress, emit):
    from radarcast.data.synthetic import write_synth

    raw = write_synth(out / "raw", synth_config(config), progress=progress)
    n = config.sequences * config.frames
    return {"frames": raw}, (
        f"{n} frames ({config.sequences} sequences × {config.frames}, "
        f"{config.size}×{config.size}, growth {config.growth:g})"
    )


def preprocess_config(config: DemoConfig, overwrite: bool = False):
    """The :class:`~radarcast.data.preprocess.PreprocessConfig` that reads the synth PNGs,
    with split fractions that put whole sequences into train, val and test."""
    from radarcast.data.preprocess import PreprocessConfig
    from radarcast.data.synthetic import TIME_PATTERN

    counts = np.array([config.train_sequences, config.val_sequences, config.test_sequences])
    return PreprocessConfig(
        time_pattern=TIME_PATTERN,
        timestep_s=300,
        split=tuple(float(f) for f in counts / counts.sum()),
        n_in=config.n_in,
        n_out=config.n_out,
        overwrite=overwrite,
    )


def _preprocess(out: Path, config: DemoConfig, result, progress, emit):
    from radarcast.data.preprocess import preprocess

    pcfg = preprocess_config(config)
    path = preprocess([out / "raw"], out / "dataset.h5", pcfg, progress=progress)
    counts = (config.train_sequences, config.val_sequences, config.test_sequences)
    return {"dataset": path}, (
        f"sequences train/val/test = {'/'.join(str(c) for c in counts)}; "
        f"windows of {config.n_in} → {config.n_out} frames"
    )


def train_config(out: Path, config: DemoConfig):
    """The :class:`~radarcast.training.TrainConfig` of the demo's ConvLSTM."""
    from radarcast.training import TrainConfig

    return TrainConfig(
        datasets=(str(out / "dataset.h5"),),
        model="convlstm",
        model_config={
            "hidden": tuple(config.hidden),
            "kernel": config.kernel,
            "patch": config.patch,
        },
        n_in=config.n_in,
        n_out=config.n_out,
        crop=None,
        batch_size=config.batch_size,
        lr=config.lr,
        warmup_steps=max(1, min(50, config.steps // 10)),
        steps=config.steps,
        val_every=max(1, config.steps // 5),
        val_windows=64,
        patience=0,
        loss=config.loss,
        seed=config.seed,
        device=config.device,
        workers=0,
        out=str(out / RUN_NAME),
        log_every=max(1, config.steps // 100),
    )


def _train(out: Path, config: DemoConfig, result, progress, emit):
    from radarcast.training import train

    last: dict = {}

    def on_step(record: dict) -> None:
        last.update(record)
        emit({"event": "train", "step": "train", "record": record})
        if record.get("event") == "step":
            progress(record["step"], record["steps"])

    run = train(train_config(out, config), on_step=on_step)
    outputs = {
        "run": run,
        "checkpoint": run / "best.pt",
        "config": run / "config.toml",
        "metrics": run / "metrics.jsonl",
    }
    best = last.get("best_val", float("nan"))
    return outputs, f"{last.get('step', config.steps)} steps, best validation loss {best:.4g}"


def _forecast(out: Path, config: DemoConfig, result, progress, emit):
    from radarcast.data.store import open_dataset
    from radarcast.forecasters import resolve, write_forecast

    folder = out / "forecasts"
    folder.mkdir(exist_ok=True)
    specs = {
        "persistence": "persistence",
        "rover": "rover",
        RUN_NAME: str(out / RUN_NAME / "best.pt"),
    }
    outputs = {}
    with open_dataset(out / "dataset.h5") as ds:
        for k, (name, spec) in enumerate(specs.items()):
            options = {} if name == "persistence" else {"device": config.device}
            if name == "rover":
                options.update(config.rover)
            fc = resolve(spec, ds, n_in=config.n_in, n_out=config.n_out, options=options)
            outputs[name] = write_forecast(
                ds, fc, folder / f"{name}.h5", split="test", n_in=config.n_in
            )
            progress(k + 1, len(specs))
        n = len(ds.windows(config.n_in, config.n_out, "test"))
    return outputs, f"{n} test windows × 3 methods"


def _evaluate(out: Path, config: DemoConfig, result, progress, emit):
    from radarcast.evaluation import evaluate

    files = [out / "forecasts" / f"{m}.h5" for m in FORECAST_METHODS if m != "persistence"]
    scores = evaluate(
        out / "dataset.h5",
        methods=["persistence"],
        forecasts=files,
        thresholds=config.thresholds,
        units="mmh",
        split="test",
        n_in=config.n_in,
        n_out=config.n_out,
        progress=progress,
    )
    result.scores = scores
    paths = scores.write(out / "scores")
    return paths, _score_summary(scores)


def _score_summary(scores) -> str:
    label = scores.thresholds.labels[0]
    parts = [f"{m.name} {m.result()['csi_mean_over_leads'][0]:.3f}" for m in scores.methods]
    return f"CSI ≥ {label} (mean over leads): " + ", ".join(parts)


def rainiest_window(ds, n_in: int, n_out: int, threshold_px: float) -> int:
    """Number (within the test split) of the window whose frames hold the most pixels at
    or above ``threshold_px``: the most to look at in an animation."""
    starts = ds.windows(n_in, n_out, "test")
    frames = ds.frames(int(starts[0]), int(starts[-1]) + n_in + n_out)  # (T, H, W)
    wet = (frames >= threshold_px).sum(axis=(1, 2))  # (T,)
    totals = [wet[s - starts[0] : s - starts[0] + n_in + n_out].sum() for s in starts]
    return int(np.argmax(totals))


def _animate(out: Path, config: DemoConfig, result, progress, emit):
    from radarcast.animation import AnimateConfig, animate
    from radarcast.data.store import open_dataset

    window = config.window
    if window is None:
        with open_dataset(out / "dataset.h5") as ds:
            window = rainiest_window(
                ds, config.n_in, config.n_out, result.scores.thresholds.pixels[0]
            )
    files = [out / "forecasts" / f"{m}.h5" for m in FORECAST_METHODS]
    acfg = AnimateConfig(n_in=config.n_in, n_out=config.n_out, scale=3, fps=3.0)
    outputs = {}
    for name in ("animation.gif", "contact_sheet.png"):
        r = animate(
            out / "dataset.h5",
            out / name,
            forecasts=files,
            window=window,
            config=acfg,
            progress=progress,
        )
        outputs[Path(name).stem] = r.path
    return outputs, f"test window {window}: input | truth | {' | '.join(FORECAST_METHODS)}"


_STEP_TABLE = (
    ("synth", "synthetic storms: moving, growing, decaying", _synth),
    ("preprocess", "raw PNG frames → radarcast dataset", _preprocess),
    ("train", "a small ConvLSTM encoder–forecaster", _train),
    ("forecast", "persistence, ROVER and the ConvLSTM on every test window", _forecast),
    ("evaluate", "CSI/HSS/MSE per lead time and threshold", _evaluate),
    ("animate", "a GIF and a contact sheet of one test window", _animate),
)
