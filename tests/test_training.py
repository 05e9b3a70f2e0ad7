"""Training: exact resume, SIGKILL recovery, atomic checkpoints, bad input, CLI end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from radarcast.checkpoint import load_checkpoint, save_checkpoint
from radarcast.errors import RadarcastError
from radarcast.training import TrainConfig, train

TINY_TOML = 'preset = "convlstm-1"\nn_in = 2\nn_out = 3\n\n[model_config]\nhidden = [4]\n'


def _cfg(dataset: Path, out: Path, **kw) -> TrainConfig:
    base = TrainConfig(
        datasets=(str(dataset),),
        preset="convlstm-1",
        model_config={"hidden": (4,)},
        n_in=2,
        n_out=3,
        crop=16,
        batch_size=4,
        steps=6,
        val_every=3,
        warmup_steps=2,
        lr=1e-2,
        workers=0,
        deterministic=True,
        device="cpu",
        out=str(out),
        val_windows=4,
    )
    return replace(base, **kw)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "radarcast", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


class _Stop(Exception):
    pass


def _stop_at(step: int):
    def on_step(rec: dict) -> None:
        if rec["event"] == "val" and rec["step"] == step:
            raise _Stop

    return on_step


def test_resume_is_bit_identical(tiny_dataset, tmp_path):
    full = train(_cfg(tiny_dataset, tmp_path / "full", augment=True, reverse_time=True))
    cfg = _cfg(tiny_dataset, tmp_path / "cut", augment=True, reverse_time=True)
    with pytest.raises(_Stop):
        train(cfg, on_step=_stop_at(3))
    mid = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert mid["step"] == 3
    train(cfg, resume=True)
    a = load_checkpoint(full / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert a["step"] == b["step"] == 6
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert any(not torch.equal(mid["state_dict"][k], v) for k, v in a["state_dict"].items())


def test_run_folder_contents(tiny_dataset, tmp_path):
    records = []
    out = train(_cfg(tiny_dataset, tmp_path / "run"), on_step=records.append)
    assert {p.name for p in out.iterdir()} == {"config.toml", "metrics.jsonl", "best.pt", "last.pt"}
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines == records
    assert [r["step"] for r in lines if r["event"] == "val"] == [3, 6]
    ck = load_checkpoint(out / "best.pt")
    assert ck["model"] == "convlstm" and ck["model_config"]["hidden"] == [4]
    assert ck["units"]["dbz_gain"] == pytest.approx(70 / 255)
    assert ck["train_config"]["n_in"] == 2


def test_existing_run_is_not_overwritten(tiny_dataset, tmp_path):
    train(_cfg(tiny_dataset, tmp_path / "run", steps=3))
    with pytest.raises(RadarcastError, match="--resume"):
        train(_cfg(tiny_dataset, tmp_path / "run", steps=3))


def test_new_run_in_a_dead_runs_folder_starts_its_log_afresh(tiny_dataset, tmp_path):
    # a run killed before its first last.pt leaves config.toml and a few log lines
    run = tmp_path / "run"
    run.mkdir()
    dead = '{"event": "step", "step": 1, "loss": 9.0}\n{"event": "step", "st'
    (run / "metrics.jsonl").write_text(dead)
    records = []
    train(_cfg(tiny_dataset, run, steps=3), on_step=records.append)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines == records  # only the new run's records
    assert (run / "metrics.dead.jsonl").read_text() == dead  # the dead run's, kept aside
    # --resume keeps the log it continues
    train(_cfg(tiny_dataset, run, steps=4), resume=True)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["event"] == "step"]
    assert steps == [1, 2, 3, 4]


def test_nan_loss_stops_and_names_the_step(tiny_dataset, tmp_path, monkeypatch):
    from radarcast.models import losses

    calls = []

    def poisoned(units=None):
        def loss(pred, target, mask=None):
            if torch.is_grad_enabled():
                calls.append(1)
                if len(calls) == 5:
                    return losses.mse(pred, target, mask) * float("nan")
            return losses.mse(pred, target, mask)

        return loss

    monkeypatch.setitem(losses.LOSSES, "mse", poisoned)
    with pytest.raises(RadarcastError, match="loss became nan at step 5"):
        train(_cfg(tiny_dataset, tmp_path / "run", steps=8, val_every=2))
    good = load_checkpoint(tmp_path / "run" / "last.pt")
    assert good["step"] == 4
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values())


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, model="convlstm", step=1)

    def broken_save(obj, f, *a, **k):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, model="convlstm", step=2)
    assert torch.load(path, weights_only=True)["step"] == 1
    assert list(tmp_path.iterdir()) == [path]


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "best.pt"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(RadarcastError, match="not a readable radarcast checkpoint"):
        load_checkpoint(path)


class _Payload:
    """An arbitrary Python object: weights_only loading must refuse it."""


def test_checkpoint_with_python_objects_is_refused_in_radarcasts_words(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "radarcast-checkpoint/1", "payload": _Payload()}, path)
    with pytest.raises(RadarcastError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message == (
        f"{path}: is not a radarcast checkpoint: it holds Python objects, "
        "which radarcast never loads"
    )
    assert "weights_only" not in message and "PyTorch" not in message


def test_training_seeds_pythons_random(monkeypatch):
    import random

    from radarcast.training import step

    random.seed(12345)
    before = random.random()
    cfg = step.TrainConfig(seed=7)
    monkeypatch.setattr(step, "build_model", lambda name, mcfg: torch.nn.Linear(1, 1))
    step._make_model(cfg, "convlstm", None, torch.device("cpu"))
    first = random.random()
    step._make_model(cfg, "convlstm", None, torch.device("cpu"))
    assert random.random() == first != before


def test_foreign_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(RadarcastError, match="not a radarcast checkpoint"):
        load_checkpoint(path)


def _wait_for(pred, timeout=120.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_sigkill_then_resume_from_last(tiny_dataset, tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    args = [
        str(tiny_dataset),
        "--config",
        "tiny.toml",
        "--out",
        "run",
        "--steps",
        "400",
        "--val-every",
        "4",
        "--crop",
        "16",
        "--batch-size",
        "2",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--no-augment",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "radarcast", "train", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for(lambda: (tmp_path / "run" / "last.pt").exists())
        assert _wait_for(lambda: _steps(tmp_path / "run")[-1:] >= [6])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    saved = load_checkpoint(tmp_path / "run" / "last.pt")["step"]
    assert saved >= 4 and saved % 4 == 0
    # a kill inside a checkpoint save leaves its hidden temporary file; resume removes it
    (tmp_path / "run" / f".last.pt.{proc.pid}.tmp").write_bytes(b"cut short")
    # the resume need not be another interpreter: in-process is the same command
    done = run_cli("train", *args, "--steps", str(saved + 4), "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not list((tmp_path / "run").glob(".*.tmp"))
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == saved + 4
    train_steps = [
        json.loads(x)["step"]
        for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        if json.loads(x)["event"] == "step"
    ]
    assert train_steps == list(range(1, saved + 5))  # no step logged twice


def _steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            pass
    return out


def test_cli_train_then_forecast_with_the_checkpoint(tiny_dataset, tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    r = _cli(
        "train",
        str(tiny_dataset),
        "--config",
        "tiny.toml",
        "--out",
        "run",
        "--steps",
        "4",
        "--val-every",
        "2",
        "--crop",
        "32",
        "--batch-size",
        "2",
        "--workers",
        "1",
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "best val loss" in r.stdout
    r = run_cli(
        "forecast",
        str(tiny_dataset),
        "-o",
        "fc.h5",
        "--method",
        "run/best.pt",
        "--split",
        "test",
        "--n-in",
        "2",
        "--n-out",
        "3",
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    from radarcast.data.forecast_file import open_forecast

    with open_forecast(tmp_path / "fc.h5") as fc:
        pred = fc.pred(np.arange(len(fc.starts)))
        n = len(fc.starts)
        assert fc.method == "run"
    from radarcast.data.store import open_dataset

    assert n == len(open_dataset(tiny_dataset).windows(2, 3, "test")) > 0
    assert pred.shape == (n, 3, 64, 64)
    # NaN input pixels through the forecaster interface itself
    from radarcast.data.store import open_dataset
    from radarcast.forecasters import resolve

    ds = open_dataset(tiny_dataset)
    f = resolve(str(tmp_path / "run" / "best.pt"), ds, n_in=2, n_out=5)
    assert f.name == "run"
    w = ds.window(0, 2, 5)
    x = w.x.astype(np.float32)
    x[0, :3, :3] = np.nan
    y = f(np.stack([x, x]))
    assert y.shape == (2, 5, 64, 64) and y.dtype == np.float32
    assert np.isfinite(y).all() and y.min() >= 0 and y.max() <= 255


BAD = [
    (["--n-in", "20", "--n-out", "20"], "no window of 20+20"),
    (["--crop", "100"], "crop 100 is larger than the 64x64 grid"),
    (["--preset", "convlstm-9"], "unknown preset 'convlstm-9'"),
    (["--model", "unet"], "unknown model 'unet'"),
    (["--device", "cuda"], "CUDA is not available"),
    (["--config", "bad.toml"], "unknown config key 'stpes'"),
]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error for --device cuda")
@pytest.mark.parametrize(("extra", "message"), BAD, ids=[m for _, m in BAD])
def test_cli_bad_input_is_one_line(tiny_dataset, tmp_path, extra, message):
    (tmp_path / "bad.toml").write_text("stpes = 3\n")
    base = ["--out", "run", "--steps", "2", "--workers", "0"]
    if "--n-in" not in extra:
        base += ["--n-in", "2", "--n-out", "3"]
    r = run_cli("train", str(tiny_dataset), *base, *extra, cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "run").exists()


def test_cli_empty_val_split_is_one_line(tmp_path):
    from radarcast.data.store import DatasetWriter
    from radarcast.data.units import Units

    path = tmp_path / "noval.h5"
    with DatasetWriter(path, units=Units(), timestep_s=300, command="test") as w:
        for i in range(30):
            w.append(np.full((16, 16), i, np.uint8), 1_600_000_000 + 300 * i)
        w.finish(fractions=(1.0, 0.0, 0.0))
    r = run_cli(
        "train",
        str(path),
        "--out",
        "run",
        "--n-in",
        "2",
        "--n-out",
        "3",
        "--crop",
        "8",
        cwd=tmp_path,
    )
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "the val split has no window of 2+3 frames" in lines[0], r.stderr
    assert not (tmp_path / "run").exists()


def test_cli_does_not_import_torch():
    code = "import sys, radarcast.cli; print('torch' in sys.modules)"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}, timeout=60
    )
    assert r.stdout.strip() == "False"


def test_loader_pools_several_files_and_crops(tiny_dataset, tmp_path):
    import shutil

    from radarcast.data.loader import Augment, WindowDataset
    from radarcast.data.store import open_dataset

    other = tmp_path / "other.h5"
    shutil.copy(tiny_dataset, other)
    one = WindowDataset([open_dataset(tiny_dataset)], "train", 2, 3)
    aug = Augment(crop=16, flips=True, rotations=True, reverse_time=True)
    both = WindowDataset([open_dataset(tiny_dataset), open_dataset(other)], "train", 2, 3, aug)
    assert len(both) == 2 * len(one) > 0
    item = both[(len(both) - 1, 123)]
    assert item["x"].shape == (2, 1, 16, 16) and item["y"].shape == (3, 1, 16, 16)
    assert item["mask_y"].dtype == torch.bool
    assert 0 <= float(item["x"].min()) and float(item["y"].max()) <= 1
    again = both[(len(both) - 1, 123)]
    assert torch.equal(item["y"], again["y"])  # the seed alone fixes crop and flips


def test_sampler_ranks_split_each_global_batch():
    from radarcast.data.loader import WindowSampler

    single = list(WindowSampler(23, seed=5, shuffle=True, global_batch=4))
    ranks = [
        list(WindowSampler(23, seed=5, shuffle=True, global_batch=4, rank=r, world=2))
        for r in range(2)
    ]
    assert len(single) == 20 and all(len(r) == 10 for r in ranks)
    for k in range(5):
        merged = ranks[0][2 * k : 2 * k + 2] + ranks[1][2 * k : 2 * k + 2]
        assert sorted(merged) == sorted(single[4 * k : 4 * k + 4])
    resumed = WindowSampler(23, seed=5, shuffle=True, global_batch=4)
    resumed.set_epoch(0, skip=8)
    assert list(resumed) == single[8:]


def test_early_stopping_after_patience(tiny_dataset, tmp_path, monkeypatch):
    import radarcast.training as training

    monkeypatch.setattr(training, "validate", lambda run: 1.0)  # never improves after the 1st
    records = []
    train(_cfg(tiny_dataset, tmp_path / "run", steps=10, val_every=2, patience=2), records.append)
    end = records[-1]
    assert end["event"] == "end" and end["stopped_by"] == "early stopping"
    assert end["step"] == 6
    assert load_checkpoint(tmp_path / "run" / "best.pt")["step"] == 2


def test_epochs_replace_steps(tiny_dataset, tmp_path):
    out = train(_cfg(tiny_dataset, tmp_path / "run", epochs=1, val_every=100))
    from radarcast.data.store import open_dataset

    windows = len(open_dataset(tiny_dataset).windows(2, 3, "train"))
    assert load_checkpoint(out / "last.pt")["step"] == windows // 4


def test_cli_help_names_every_model_and_loss():
    from typer.testing import CliRunner

    from radarcast.cli import app
    from radarcast.models import MODELS
    from radarcast.models.losses import LOSSES

    r = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for name in [*MODELS, *LOSSES]:
        assert name in r.output, name


def test_cli_trains_the_rover_correction_and_forecasts_with_it(tiny_dataset, tmp_path):
    """rover-convlstm-2 through the CLI: a summed, multi-scale loss from TOML, a checkpoint
    that rebuilds the ROVER-based model, and a forecast that starts out as ROVER's."""
    (tmp_path / "r.toml").write_text(
        'preset = "rover-convlstm-2"\nn_in = 3\nn_out = 3\nloss = "bmse+csi"\n'
        "loss_scales = [1, 2]\n\n[model_config]\nhidden = [4]\npatch = 2\n"
    )
    common = ["--device", "cpu", "--n-in", "3", "--n-out", "3"]
    r = run_cli("train", str(tiny_dataset), "--config", "r.toml", "--out", "run", "--steps", "2",
             "--val-every", "2", "--crop", "32", "--batch-size", "2", "--workers", "0",
             *common[:2], cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    for method, out in (("run/best.pt", "fc.h5"), ("rover", "rover.h5")):
        r = run_cli("forecast", str(tiny_dataset), "-o", out, "--method", method, "--split",
                 "test", *common, cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr
    from radarcast.data.forecast_file import open_forecast
    from radarcast.data.store import open_dataset
    from radarcast.forecasters import read_inputs

    with open_forecast(tmp_path / "fc.h5") as a, open_forecast(tmp_path / "rover.h5") as b:
        rows = np.arange(len(a.starts))
        pa, pb = a.pred(rows).astype(float), b.pred(rows).astype(float)
        last = read_inputs(open_dataset(tiny_dataset), a.starts, 3)[:, -1:]  # persistence
    assert pa.shape == pb.shape and pb.max() > 100  # the blob is there
    # two steps from its start, the model is still ROVER, not the persistence it would be
    # if the checkpoint had lost its motion setting
    assert np.abs(pa - pb).mean() < 0.1 * np.abs(last - pb).mean()
