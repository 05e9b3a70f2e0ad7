"""Kill tests for the commands test_kill.py does not reach: ``rover``, ``animate``, ``synth``
and ``export`` (CF netCDF) run as subprocesses and are stopped with SIGKILL or SIGINT at a
random point of their run (drawn per seed between 10% and 100% of an uninterrupted run's
duration, as in test_kill.py).

Afterwards the output name holds the previous result or the complete new one (equal to an
uninterrupted run's), never part of one; after SIGINT no temporary file is left; and a later
run of the same command succeeds. CI runs one SIGKILL and one SIGINT point of animate,
synth and export (about 30 s in all); ``RADARCAST_NIGHTLY=1`` adds four more of each and
rover's (a ROVER run takes several seconds on a loaded 2-core machine).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from test_kill import NIGHTLY, SIGNALS, _after, _kill_at_random, _rerun, _run

from radarcast.data.forecast_file import open_forecast

TRIALS = [("KILL", 0), ("INT", 0)] + [
    pytest.param(s, seed, marks=NIGHTLY, id=f"nightly-{s}-{seed}")
    for s in SIGNALS
    for seed in range(1, 5)
]
NIGHTLY_TRIALS = [pytest.param(*t, marks=NIGHTLY, id=f"nightly-{t[0]}-{t[1]}")
                  for t in (("KILL", 0), ("INT", 0))] + TRIALS[2:]
ROVER = ["rover", "data.h5", "--limit", "6", "--split", "all"]
ANIMATE = ["animate", "data.h5", "--window", "3", "--split", "all", "-m", "persistence"]
SYNTH = ["synth", "-n", "2", "--frames", "30", "--size", "96", "--seed", "4"]
EXPORT = ["export", "fc.h5"]


# per command: its uninterrupted run (the reference a killed run must equal if it replaced
# the old result, and the duration the kill time is drawn from) and a smaller "old" run
REFERENCE = {
    "rover": ([*ROVER, "-o", "rover.h5"],
              [*ROVER[:2], "-o", "old_rover.h5", "--limit", "1", "--split", "all"]),
    "animate": ([*ANIMATE, "-o", "anim.gif"],
                [*ANIMATE[:2], "-o", "old_anim.gif", "--window", "0", "--split", "all",
                 "-m", "persistence"]),
    "synth": ([*SYNTH, "synth"], ["synth", "-n", "1", "--frames", "3", "--size", "16",
                                  "old_synth"]),
    "export": ([*EXPORT, "-o", "fc.nc"], ["export", "data.h5", "-o", "old.nc"]),
}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A dataset and a forecast file; each command's reference runs on first use."""
    folder = tmp_path_factory.mktemp("kill_more")
    stack = np.random.default_rng(1).integers(0, 256, (60, 48, 48), dtype=np.uint8)
    np.save(folder / "raw.npy", stack)
    _rerun(["preprocess", "raw.npy", "-o", "data.h5", "--n-in", "3", "--n-out", "3"], folder)
    _rerun(["forecast", "data.h5", "-o", "fc.h5", "--split", "all", "--limit", "8"], folder)
    return {"folder": folder, "seconds": {}}


def _seconds(work: dict, command: str) -> float:
    if command not in work["seconds"]:
        uninterrupted, old = REFERENCE[command]
        work["seconds"][command] = _run(uninterrupted, work["folder"])
        _rerun(old, work["folder"])
    return work["seconds"][command]


def _setup(work: dict, tmp_path: Path) -> Path:
    for name in ("data.h5", "fc.h5"):
        shutil.copyfile(work["folder"] / name, tmp_path / name)
    return tmp_path


def _kill_over_old(work: dict, tmp_path: Path, base: list, old: str, out: str, sig: str,
                   seed: int) -> tuple[list, bool]:
    """Put the command's smaller "old" result at ``out``, run ``base`` onto it with
    --overwrite and kill it; its arguments, and whether ``out`` no longer holds the old
    bytes (then it must be the whole new result)."""
    command = base[0]
    _setup(work, tmp_path)
    seconds = _seconds(work, command)
    before = (work["folder"] / old).read_bytes()
    (tmp_path / out).write_bytes(before)
    args = [*base, "-o", out, "--overwrite"]
    _kill_at_random(args, tmp_path, seconds, sig, seed)
    return args, (tmp_path / out).read_bytes() != before


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# --------------------------------------------------------------------------- rover
@pytest.mark.parametrize("sig,seed", NIGHTLY_TRIALS)
def test_rover_killed(work, tmp_path, sig, seed):
    args, replaced = _kill_over_old(work, tmp_path, ROVER, "old_rover.h5", "out.h5", sig, seed)
    if replaced:  # then it is the whole new forecast
        with open_forecast(tmp_path / "out.h5") as f, \
                open_forecast(work["folder"] / "rover.h5") as ref:
            assert np.array_equal(f.starts, ref.starts)
            assert np.array_equal(f.pred(np.arange(len(f.starts))),
                                  ref.pred(np.arange(len(ref.starts))), equal_nan=True)
    _after(tmp_path, sig)
    _rerun(args, tmp_path)


# --------------------------------------------------------------------------- animate
@pytest.mark.parametrize("sig,seed", TRIALS)
def test_animate_killed(work, tmp_path, sig, seed):
    args, replaced = _kill_over_old(work, tmp_path, ANIMATE, "old_anim.gif", "out.gif", sig, seed)
    if replaced:  # then the whole new animation: every frame of an uninterrupted run's
        with Image.open(tmp_path / "out.gif") as a, \
                Image.open(work["folder"] / "anim.gif") as b:
            assert (a.n_frames, a.size) == (b.n_frames, b.size)
            for i in range(b.n_frames):
                a.seek(i), b.seek(i)
                assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))
    _after(tmp_path, sig)
    _rerun(args, tmp_path)


# --------------------------------------------------------------------------- synth
@pytest.mark.parametrize("sig,seed", TRIALS)
def test_synth_killed(work, tmp_path, sig, seed):
    seconds = _seconds(work, "synth")
    shutil.copytree(work["folder"] / "old_synth", tmp_path / "out")
    old = _tree(tmp_path / "out")
    args = [*SYNTH, "out", "--overwrite"]
    _kill_at_random(args, tmp_path, seconds, sig, seed)
    got = _tree(tmp_path / "out")
    assert got == old or got == _tree(work["folder"] / "synth"), sorted(got)[:5]
    _after(tmp_path, sig)
    _rerun(args, tmp_path)
    assert _tree(tmp_path / "out") == _tree(work["folder"] / "synth")


# --------------------------------------------------------------------------- export
@pytest.mark.parametrize("sig,seed", TRIALS)
def test_export_netcdf_killed(work, tmp_path, sig, seed):
    args, replaced = _kill_over_old(work, tmp_path, EXPORT, "old.nc", "out.nc", sig, seed)
    if replaced:  # then the complete new file
        with h5py.File(tmp_path / "out.nc", "r") as a, \
                h5py.File(work["folder"] / "fc.nc", "r") as b:
            assert np.array_equal(a["precip_intensity"][()], b["precip_intensity"][()],
                                  equal_nan=True)
    _after(tmp_path, sig)
    _rerun(args, tmp_path)
    assert os.path.getsize(tmp_path / "out.nc") > 0
