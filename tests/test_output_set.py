"""evaluate's outputs are one set: all or none under their final names (issue 21).

A Ctrl-C or kill during the plot left scores.json and scores.csv without skill.png, and the
rerun refused ("scores.json exists"). Now every file is written to a temporary first, the
renames run with SIGINT/SIGTERM deferred, and a set cut short between two renames (SIGKILL)
is recognised by its marker and replaced by a plain rerun.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

import radarcast.evaluation.outputs as outputs
from radarcast.evaluation import evaluate

NAMES = set(outputs.OUTPUT_NAMES.values())  # persistence has FSS: all six


@pytest.fixture
def scores(tiny_dataset):
    return evaluate(tiny_dataset, ["persistence"], split="all", preset="hko7")


def _final(out):
    return {p.name for p in out.iterdir()} if out.exists() else set()


def test_interrupt_during_the_plot_leaves_none(scores, tmp_path, monkeypatch):
    def ctrl_c(*a):
        raise KeyboardInterrupt
    monkeypatch.setattr(outputs, "_plot", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        scores.write(tmp_path / "out")
    assert _final(tmp_path / "out") == set()  # no json/csv without the png, no temporary
    monkeypatch.undo()
    scores.write(tmp_path / "out")  # the plain rerun succeeds
    assert _final(tmp_path / "out") == NAMES


def test_sigint_during_the_renames_waits_for_the_whole_set(scores, tmp_path, monkeypatch):
    from radarcast.data import store

    real, calls = store.place, []

    def place_then_ctrl_c(tmp, path, overwrite):
        calls.append(path.name)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between the first and second rename
        return real(tmp, path, overwrite)
    monkeypatch.setattr(store, "place", place_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        scores.write(tmp_path / "out")
    assert len(calls) == len(NAMES) and _final(tmp_path / "out") == NAMES


def test_set_cut_short_between_renames_is_replaced_by_a_plain_rerun(scores, tmp_path,
                                                                    monkeypatch):
    from radarcast.data import store

    real, calls = store.place, []

    def place_then_die(tmp, path, overwrite):
        calls.append(path.name)
        if len(calls) == 3:
            raise SystemExit(137)  # what a SIGKILL here leaves: two placed, marker standing
        return real(tmp, path, overwrite)
    monkeypatch.setattr(store, "place", place_then_die)
    with pytest.raises(SystemExit):
        scores.write(tmp_path / "out")
    left = _final(tmp_path / "out")
    assert outputs.MARKER in left and len(left & NAMES) == 2
    monkeypatch.undo()
    scores.write(tmp_path / "out")  # no --overwrite: the incomplete set is radarcast's own
    assert _final(tmp_path / "out") == NAMES
    # a complete set is still protected
    with pytest.raises(Exception, match="exists; pass --overwrite"):
        scores.write(tmp_path / "out")


@pytest.mark.nightly  # ~35 s: up to 12 CLI runs (pytest -m nightly tests/test_output_set.py)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_evaluate_subprocess_leaves_all_or_none(tiny_dataset, tmp_path, sig):
    """A real `radarcast evaluate`, signalled at a few moments; then a plain rerun."""
    cmd = [sys.executable, "-m", "radarcast", "evaluate", str(tiny_dataset), "-m",
           "persistence", "--split", "all", "--out"]
    for k, delay in enumerate((0.8, 1.6, 2.4)):
        out = tmp_path / f"o{k}"
        proc = subprocess.Popen([*cmd, str(out)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        left = _final(out) - {outputs.MARKER}
        placed = left & NAMES
        assert placed in (set(), NAMES) or outputs.MARKER in _final(out), left
        if proc.returncode == 0 or _final(out) == NAMES:  # the set was complete before the
            continue  # signal (killed while printing the tables): kept, refused without --overwrite
        r = subprocess.run([*cmd, str(out)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert _final(out) == NAMES
