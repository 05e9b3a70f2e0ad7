"""An ensemble too large for the disk or the memory is refused before anything is written
(issue 21): `forecast --method rover --members 100000000` on a 64x64 dataset used to start
writing a 1.5 TiB file; now one line gives the size it would need and the free space."""

from __future__ import annotations

import re
import shutil
from collections import namedtuple

import pytest
from conftest import run_cli

from radarcast.baselines.ensemble_forecaster import check_file_fits
from radarcast.errors import RadarcastError

HUGE = "100000000"
SPACE = re.compile(r"need up to ([0-9.]+) GiB \(uncompressed\), only ([0-9.]+) GiB is free in ")


def _nothing_written(folder) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["tiny.h5"]


def _one_line(r) -> str:
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["forecast", "tiny.h5", "--method", "rover", "--members", HUGE, "-o", "big.h5"],
        ["rover", "tiny.h5", "--members", HUGE, "-o", "big.h5"],
        ["forecast", "tiny.h5", "--method", "rover", "--members", HUGE, "-o", "big.h5",
         "--workers", "2"],
    ],
    ids=["forecast", "rover", "sharded"],
)
def test_an_ensemble_file_larger_than_the_disk_is_refused_before_writing(tiny_dataset, args):
    folder = tiny_dataset.parent
    line = _one_line(run_cli(*args, cwd=folder))
    m = SPACE.search(line)
    assert m and line.startswith("error: big.h5: ") and f"--members {HUGE}" in line, line
    windows = int(line.split(": ")[2].split(" window")[0])
    need = windows * 10**8 * 4 * 64 * 64  # uint8 (N, M, n_out, H, W)
    assert float(m.group(1)) == pytest.approx(need / 2**30, abs=0.06)
    assert float(m.group(2)) == pytest.approx(shutil.disk_usage(folder).free / 2**30, rel=0.05)
    _nothing_written(folder)


def test_free_space_decides_and_no_space_check_overrides(tiny_dataset, monkeypatch):
    """With 256 KiB free, 3 members × 4 leads of 10 windows (480 KiB uncompressed) are
    refused, 2 windows (96 KiB) are not; --no-space-check writes the 10 anyway."""
    folder = tiny_dataset.parent
    real = shutil.disk_usage
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(2**30, 2**30 - 2**18, 2**18))
    args = ["forecast", "tiny.h5", "--method", "rover", "--members", "3", "--limit", "10",
            "--split", "all", "-o", "e.h5", "--device", "cpu"]  # fmt: skip
    line = _one_line(run_cli(*args, cwd=folder))
    assert "10 windows × --members 3 × 4 leads on a 64x64 grid" in line
    assert "only 0.0 GiB is free" in line
    _nothing_written(folder)
    two = ["forecast", "tiny.h5", "--method", "rover", "--members", "3", "--limit", "2",
           "--split", "all", "-o", "e.h5", "--device", "cpu"]  # fmt: skip
    assert run_cli(*two, cwd=folder).returncode == 0  # 2 windows: 96 KiB
    (folder / "e.h5").unlink()
    r = run_cli(*args, "--no-space-check", cwd=folder)
    assert r.returncode == 0, r.stderr
    monkeypatch.setattr(shutil, "disk_usage", real)
    from radarcast.data.forecast_file import open_forecast

    with open_forecast(folder / "e.h5") as f:
        assert f.members == 3 and len(f.starts) == 10


def test_check_file_fits_counts_the_uncompressed_member_array(tmp_path):
    assert check_file_fits(tmp_path / "a.h5", 7, 5, 12, 30, 20) == 7 * 5 * 12 * 30 * 20
    with pytest.raises(RadarcastError, match=r"a\.h5: 1 window × --members 1000000000000 × 12"):
        check_file_fits(tmp_path / "a.h5", 1, 10**12, 12, 640, 710)


def test_a_steps_ensemble_larger_than_memory_is_refused_before_pysteps_runs(tiny_dataset):
    """pysteps' STEPS holds all members at once (float64): 10^8 members of 64x64 started
    pysteps' nowcast (and its printout) before; now one line, nothing written."""
    pytest.importorskip("pysteps")
    folder = tiny_dataset.parent
    r = run_cli("forecast", "tiny.h5", "--method", "pysteps:steps", "--members", HUGE,
                "-o", "big.h5", cwd=folder)  # fmt: skip
    line = _one_line(r)
    assert re.search(rf"--members {HUGE} on a 64x64 grid with 4 leads needs about "
                     r"[0-9.]+ GiB, only [0-9.]+ GiB is available", line), line  # fmt: skip
    assert r.stdout == ""  # pysteps never started (it prints its settings first)
    _nothing_written(folder)
