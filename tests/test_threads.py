"""One helper decides torch's threads: free cores by default, --threads N on every command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO

from radarcast.errors import RadarcastError
from radarcast.threads import choose_threads, machine_load, usable_cores

COMPUTE_COMMANDS = ("forecast", "rover", "evaluate", "train", "animate", "demo")


@pytest.mark.parametrize(
    ("cores", "load", "expected"),
    [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 7.0, 1), (16, 3.0, 13), (1, 0, 1)],
)
def test_free_cores_by_default(cores, load, expected):
    assert choose_threads(None, cores=cores, load=load) == expected


def test_requested_wins_and_must_be_positive():
    assert choose_threads(3, cores=2, load=9.0) == 3
    with pytest.raises(RadarcastError, match="--threads must be ≥ 1"):
        choose_threads(0)


def test_measured_inputs_are_sane():
    assert usable_cores() >= 1
    assert machine_load() >= 0.0


def test_set_threads_reaches_torch_already_loaded(monkeypatch):
    import torch

    from radarcast.threads import set_threads

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "")  # restored after the test
    old = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)


def test_set_threads_before_torch_loads_sets_its_pool():
    code = "from radarcast.threads import set_threads; set_threads(1); import torch\n"
    code += "print(torch.get_num_threads())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.stdout.split() == ["1"], r.stderr


def test_every_compute_command_has_threads():
    import typer.main

    from radarcast.cli import app

    group = typer.main.get_command(app)
    for name in COMPUTE_COMMANDS:
        opts = {o for p in group.commands[name].params for o in p.opts}
        assert "--threads" in opts, name


def test_cli_refuses_zero_threads_in_one_line(tiny_dataset, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "radarcast", "forecast", str(tiny_dataset), "-o",
         str(tmp_path / "f.h5"), "--threads", "0"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert r.returncode == 1 and "--threads must be ≥ 1" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
