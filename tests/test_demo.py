"""`radarcast demo --quick` end to end in a subprocess: every output exists and opens; its
refusals in-process (conftest.run_cli)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from radarcast.demo import OUTPUT_NAMES, DemoConfig, prepare_out_dir
from radarcast.errors import RadarcastError
from tests.conftest import REPO, run_cli


def _demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "radarcast", "demo", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = _demo("--quick", "--out", str(out), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc


def test_quick_demo_writes_dataset_and_forecasts(quick_demo):
    from radarcast.data.forecast_file import open_forecast
    from radarcast.data.store import open_dataset

    out, _ = quick_demo
    cfg = DemoConfig.quick()
    with open_dataset(out / "dataset.h5") as ds:
        assert ds.shape == (cfg.sequences * cfg.frames, cfg.size, cfg.size)
        assert ds.frames(0, ds.n_frames).max() > 0  # storms, not an empty grid
        n_test = len(ds.windows(cfg.n_in, cfg.n_out, "test"))
        assert n_test > 0
        for method in ("persistence", "rover", "convlstm"):
            ff = open_forecast(out / "forecasts" / f"{method}.h5")
            assert ff.method == method
            assert len(ff.starts) == n_test
            ff.check_matches(ds, cfg.n_in, cfg.n_out)
            ff.close()


def test_quick_demo_scores_hold_the_three_methods(quick_demo):
    out, _ = quick_demo
    doc = json.loads((out / "scores" / "scores.json").read_text())
    names = [m["name"] for m in doc["methods"]]
    assert names == ["persistence", "rover", "convlstm"]
    assert doc["thresholds"]["values"] == list(DemoConfig.quick().thresholds)
    first = (out / "scores" / "scores.csv").read_text().splitlines()[0]
    assert first.startswith("method,lead_min,threshold")
    record = json.loads((out / "demo.json").read_text())
    assert [s["name"] for s in record["steps"]] == [
        "synth",
        "preprocess",
        "train",
        "forecast",
        "evaluate",
        "animate",
    ]


def test_quick_demo_images_open(quick_demo):
    import imageio.v3 as iio

    out, _ = quick_demo
    cfg = DemoConfig.quick()
    gif = iio.imread(out / "animation.gif", index=None)  # (frames, H, W, 3)
    assert gif.shape[0] == cfg.n_in + cfg.n_out
    sheet = iio.imread(out / "contact_sheet.png")
    assert sheet.ndim == 3 and sheet.shape[0] > cfg.size and sheet.shape[1] > 5 * cfg.size
    skill = iio.imread(out / "scores" / "skill.png")
    assert skill.shape[0] > 100


def test_quick_demo_checkpoint_forecasts(quick_demo):
    from radarcast.data.store import open_dataset
    from radarcast.forecasters import resolve

    out, _ = quick_demo
    cfg = DemoConfig.quick()
    with open_dataset(out / "dataset.h5") as ds:
        fc = resolve(str(out / "convlstm" / "best.pt"), ds, options={"device": "cpu"})
        start = int(ds.windows(cfg.n_in, cfg.n_out, "test")[0])
        y = fc(ds.window(start, cfg.n_in, cfg.n_out).x[None])
    assert fc.name == "convlstm"
    assert y.shape == (1, cfg.n_out, cfg.size, cfg.size)
    assert np.isfinite(y).all()


def test_quick_demo_says_where_every_output_is(quick_demo):
    out, proc = quick_demo
    text = " ".join(proc.stdout.split())  # Rich wraps long lines
    for step in ("synth", "preprocess", "train", "forecast", "evaluate", "animate"):
        assert step in text
    for name in (
        "dataset.h5",
        "best.pt",
        "scores.json",
        "skill.png",
        "animation.gif",
        "contact_sheet.png",
        "rover.h5",
    ):
        assert name in text
    assert "CSI" in text and "convlstm" in text


def test_non_empty_out_dir_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    proc = run_cli("demo", "--quick", "--out", str(tmp_path))
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "--overwrite" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_overwrite_removes_only_the_demos_outputs(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    (tmp_path / "scores").mkdir()
    (tmp_path / "scores" / "scores.json").write_text("{}")
    (tmp_path / "dataset.h5").write_bytes(b"old")
    prepare_out_dir(tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert "dataset.h5" in OUTPUT_NAMES


def test_cuda_without_cuda_is_refused_before_any_work(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    out = tmp_path / "out"
    proc = run_cli("demo", "--quick", "--out", str(out), "--device", "cuda")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "CUDA is not available" in proc.stderr
    assert not out.exists()


def test_unknown_device_is_refused():
    with pytest.raises(RadarcastError, match="auto, cpu, cuda"):
        DemoConfig(device="tpu").check()
