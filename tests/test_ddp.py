"""Two gloo processes under torchrun train to the same weights as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from radarcast.checkpoint import load_checkpoint
from radarcast.models import build_model
from radarcast.training import TrainConfig, train


def test_two_gloo_processes_match_one_process(tiny_dataset, tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('preset = "convlstm-1"\n\n[model_config]\nhidden = [4]\n')
    flags = [
        "--n-in",
        "2",
        "--n-out",
        "3",
        "--crop",
        "16",
        "--batch-size",
        "4",
        "--steps",
        "4",
        "--val-every",
        "2",
        "--lr",
        "0.01",
        "--seed",
        "3",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--config",
        str(toml),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "radarcast",
        "train",
        str(tiny_dataset),
        "--out",
        str(tmp_path / "ddp"),
        *flags,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    # warmup_steps is not a flag: the TOML default (100) applies to both runs alike
    single = TrainConfig(
        datasets=(str(tiny_dataset),),
        preset="convlstm-1",
        model_config={"hidden": (4,)},
        n_in=2,
        n_out=3,
        crop=16,
        batch_size=4,
        steps=4,
        val_every=2,
        lr=0.01,
        seed=3,
        workers=0,
        device="cpu",
        out=str(tmp_path / "one"),
    )
    torch.set_num_threads(1)
    train(single)
    a = load_checkpoint(tmp_path / "ddp" / "last.pt")
    b = load_checkpoint(tmp_path / "one" / "last.pt")
    assert a["step"] == b["step"] == 4
    for k, v in b["state_dict"].items():
        torch.testing.assert_close(a["state_dict"][k], v, rtol=1e-5, atol=1e-6, msg=k)
    torch.manual_seed(3)
    init = build_model("convlstm", {"hidden": (4,)}).state_dict()
    assert any(not torch.equal(init[k], v) for k, v in b["state_dict"].items())
    end = json.loads((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["processes"] == 2
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == [
        "best.pt",
        "config.toml",
        "last.pt",
        "metrics.jsonl",
    ]
