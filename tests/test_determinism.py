"""Determinism: the same seed and data give identical synthetic frames, dataset contents
(every array and attribute except the creation time), forecasts, scores and CPU training
weights — run twice, compared bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from radarcast.data.synthetic import SynthConfig, write_synth

SYNTH = SynthConfig(sequences=2, frames=12, height=40, width=48, seed=7, growth=1.5)
VOLATILE = {"created_at"}  # the only attribute allowed to differ between identical runs


# one interpreter runs the whole chain, command after command (as `radarcast study` and the
# demo do): two such processes side by side are two independent runs, without paying ten
# interpreter start-ups with torch
CHAIN_SCRIPT = """
import json, sys
from radarcast.cli import app
for args in json.loads(sys.argv[1]):
    code = app(args, prog_name="radarcast", standalone_mode=False)
    if code:
        sys.exit(f"radarcast {' '.join(args)}: exit code {code}")
"""


def _chain(commands: list[list[str]], cwd: Path) -> None:
    r = subprocess.run([sys.executable, "-c", CHAIN_SCRIPT, json.dumps(commands)], cwd=cwd,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def _h5_contents(path: Path) -> dict:
    """Every dataset (bytes, dtype, shape, chunking, filters) and attribute of an HDF5 file."""
    out = {}

    def visit(name, obj):
        attrs = {k: np.asarray(v).tobytes() for k, v in obj.attrs.items() if k not in VOLATILE}
        if isinstance(obj, h5py.Dataset):
            out[name] = (obj.dtype.str, obj.shape, obj.chunks, obj.compression,
                         obj[...].tobytes(), attrs)
        else:
            out[name] = attrs

    with h5py.File(path, "r") as f:
        out["/"] = {k: np.asarray(v).tobytes() for k, v in f.attrs.items() if k not in VOLATILE}
        f.visititems(visit)
    return out


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fmt", ["png", "npy"])
def test_synth_is_identical_for_the_same_seed(tmp_path, fmt):
    a = _folder_bytes(write_synth(tmp_path / "a", SYNTH, fmt=fmt))
    b = _folder_bytes(write_synth(tmp_path / "b", SYNTH, fmt=fmt))
    assert a == b
    c = _folder_bytes(write_synth(tmp_path / "c", SynthConfig(**{**SYNTH.__dict__, "seed": 8}),
                                  fmt=fmt))
    assert c != a  # the seed does matter


CHAIN = [
    ["synth", "raw", "-n", "2", "--frames", "16", "--size", "40x48", "--seed", "7"],
    ["preprocess", "raw", "--time-pattern", "%Y%m%dT%H%M%S", "-o", "d.h5", "--n-in", "3",
     "--n-out", "3", "--split", "0.5,0.25,0.25"],
    ["forecast", "d.h5", "--split", "all", "-o", "persistence.h5"],
    ["forecast", "d.h5", "--split", "all", "--method", "rover", "--device", "cpu",
     "--limit", "4", "-o", "rover.h5"],
    ["evaluate", "d.h5", "-m", "rover", "--split", "all", "--limit", "6", "--bootstrap", "20",
     "--out", "scores"],
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same CLI chain (synth → preprocess → forecast → evaluate) run in two folders at
    the same time, by two processes."""
    from concurrent.futures import ThreadPoolExecutor

    folders = [tmp_path_factory.mktemp(name) for name in ("one", "two")]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda d: _chain(CHAIN, d), folders))
    return folders


def test_preprocessed_datasets_identical_but_for_creation_time(runs):
    one, two = (_h5_contents(d / "d.h5") for d in runs)
    assert one == two
    with h5py.File(runs[0] / "d.h5") as f:
        assert "created_at" in f.attrs  # the one excluded attribute exists


@pytest.mark.parametrize("name", ["persistence.h5", "rover.h5"])
def test_forecast_files_identical(runs, name):
    one, two = (_h5_contents(d / name) for d in runs)
    one["/"].pop("dataset_path")  # each run's own dataset path
    two["/"].pop("dataset_path")
    assert one == two
    assert one["pred"][4]  # and they hold predictions


def test_scores_identical(runs):
    docs = [json.loads((d / "scores" / "scores.json").read_text()) for d in runs]
    for doc in docs:
        doc.pop("created_at", None)
        doc["dataset"].pop("path", None)
    assert docs[0] == docs[1]
    csvs = [(d / "scores" / "scores.csv").read_bytes() for d in runs]
    assert csvs[0] == csvs[1]


def test_cpu_training_is_bit_identical(tmp_path, runs):
    from radarcast.training import TrainConfig, train

    def weights(out: str) -> dict:
        cfg = TrainConfig(
            datasets=(str(runs[0] / "d.h5"),), preset="convlstm-1",
            model_config={"hidden": (4,)}, n_in=2, n_out=2, crop=16, batch_size=2, steps=6,
            val_every=3, warmup_steps=2, workers=0, deterministic=True, device="cpu",
            augment=True, reverse_time=True, seed=11, out=str(tmp_path / out), val_windows=2,
        )
        run = train(cfg)
        return torch.load(run / "last.pt", weights_only=True)["state_dict"]

    a, b = weights("a"), weights("b")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
