"""Every random generator that training touches is seeded from the run's seed: two short
runs with the same seed write byte-identical last.pt files, RNG states included (issue 21:
last.pt saved Python's ``random`` state, which training never seeded)."""

from __future__ import annotations

import random

import numpy as np
import torch

from radarcast.checkpoint import load_checkpoint
from radarcast.training import TrainConfig, train


def _run(dataset, out, seed: int) -> bytes:
    cfg = TrainConfig(
        datasets=(str(dataset),), preset="convlstm-1", model_config={"hidden": (4,)},
        n_in=2, n_out=2, crop=16, batch_size=2, steps=2, val_every=2, val_windows=2,
        warmup_steps=1, workers=0, device="cpu", deterministic=True, seed=seed, out=str(out),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg)
    finally:
        torch.set_num_threads(threads)
    return (out / "last.pt").read_bytes()


def test_same_seed_runs_write_byte_identical_checkpoints(tiny_dataset, tmp_path):
    # the checkpoint records its run folder (train_config.out): both runs use the same one
    out = tmp_path / "run"
    random.seed(1), np.random.seed(1)  # noqa: NPY002 - whatever ran before must not matter
    first = _run(tiny_dataset, out, seed=5)
    (out / "last.pt").rename(tmp_path / "first.pt")
    for p in out.iterdir():
        p.unlink()
    random.seed(2), np.random.seed(2)  # noqa: NPY002
    second = _run(tiny_dataset, out, seed=5)
    a, b = load_checkpoint(tmp_path / "first.pt"), load_checkpoint(out / "last.pt")
    assert a["rng"]["python"] == b["rng"]["python"]
    assert torch.equal(a["rng"]["numpy"][1], b["rng"]["numpy"][1])
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert first == second  # torch.save's zip holds no time stamp: equal contents, equal bytes


def test_another_seed_changes_every_generator_state(tiny_dataset, tmp_path):
    _run(tiny_dataset, tmp_path / "a", seed=5)
    _run(tiny_dataset, tmp_path / "b", seed=6)
    a = load_checkpoint(tmp_path / "a" / "last.pt")["rng"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["rng"]
    assert a["python"] != b["python"]
    assert not torch.equal(a["numpy"][1], b["numpy"][1])
    assert not torch.equal(a["torch"], b["torch"])
