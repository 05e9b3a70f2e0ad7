"""The demo's steps, each a call into the library: synth, preprocess, train, forecast,
evaluate, animate (:data:`_STEP_TABLE` lists them in order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radarcast.demo.config import FORECAST_METHODS, RUN_NAME, DemoConfig


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
