"""Atomic no-clobber placement and stale temporaries (issue 21, items 3 and 4).

Before these fixes two runs writing the same name without --overwrite both succeeded (the
later silently replaced the first: the existence check came long before the rename), and a
killed run's hidden ``.OUT.PID.tmp`` stayed forever.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from radarcast.data.store import place, remove_stale_temporaries, temporary_path
from radarcast.errors import RadarcastError


def _race(n: int, work):
    """Run ``work(i, gate)`` in ``n`` processes (each its own PID, so its own temporary, as
    two CLI runs) that meet at ``gate`` before placing; [result, or the error's text]."""
    ctx = multiprocessing.get_context("fork")
    gate, results = ctx.Barrier(n, timeout=60), ctx.Queue()

    def run(i):
        try:
            results.put((i, str(work(i, gate))))
        except Exception as e:  # noqa: BLE001 - the test looks at it
            results.put((i, f"{type(e).__name__}: {e}"))

    procs = [ctx.Process(target=run, args=(i,)) for i in range(n)]
    for p in procs:
        p.start()
    out = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    return [out[i] for i in range(n)]


def test_two_forecast_writers_to_one_name_exactly_one_wins(tiny_dataset, tmp_path):
    from radarcast.data.forecast_file import open_forecast
    from radarcast.data.forecast_writer import ForecastWriter
    from radarcast.data.store import open_dataset

    ds = open_dataset(tiny_dataset)
    out = tmp_path / "fc.h5"

    def work(i, gate):
        w = ForecastWriter(out, ds, [0], method=f"writer{i}", config={}, n_in=3, n_out=4,
                           split=None)
        with w:
            w.write(np.full((1, 4, 64, 64), 10 * (i + 1), np.uint8))
            gate.wait()  # both have passed the existence check and written everything
            return w.finish()

    results = _race(2, work)
    refusal = f"RadarcastError: {out} exists; pass --overwrite to replace it"
    assert sorted(results) == sorted([str(out), refusal]), results
    winner = 1 - results.index(refusal)
    with open_forecast(out) as fc:
        assert fc.method == f"writer{winner}"
        assert int(fc.pred([0]).max()) == 10 * (winner + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fc.h5", "tiny.h5"]  # no temp left


def test_two_dataset_writers_race_and_overwrite_still_replaces(tmp_path):
    from radarcast.data.store import DatasetWriter
    from radarcast.data.units import Units

    out = tmp_path / "d.h5"

    def work(i, gate, overwrite=False):
        with DatasetWriter(out, units=Units(), timestep_s=300, command=f"w{i}",
                           overwrite=overwrite) as w:
            for k in range(3):
                w.append(np.full((8, 8), i + 1, np.uint8), 1_600_000_000 + 300 * k)
            if gate is not None:
                gate.wait()
            return w.finish(fractions=(1.0, 0.0, 0.0))

    results = _race(2, work)
    assert sorted(results) == sorted([str(out), f"RadarcastError: {out} exists; pass "
                                      "--overwrite to replace it"]), results
    work(7, None, overwrite=True)  # --overwrite replaces, as before
    with h5py.File(out) as f:
        assert int(f["frames"][0].max()) == 8


def test_place_refuses_folders_too_and_keeps_the_first(tmp_path):
    first, second = tmp_path / ".a.1.tmp", tmp_path / ".a.2.tmp"
    for d, text in ((first, "one"), (second, "two")):
        d.mkdir()
        (d / "x").write_text(text)
    place(first, tmp_path / "a.zarr", overwrite=False)
    with pytest.raises(RadarcastError, match="a.zarr exists; pass --overwrite"):
        place(second, tmp_path / "a.zarr", overwrite=False)
    assert (tmp_path / "a.zarr" / "x").read_text() == "one"
    assert not second.exists()


def test_place_without_hard_links_falls_back_to_noreplace_rename(tmp_path, monkeypatch):
    def no_links(*a, **k):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    for name, text in ((".b.1.tmp", "one"), (".b.2.tmp", "two")):
        (tmp_path / name).write_text(text)
    place(tmp_path / ".b.1.tmp", tmp_path / "b", overwrite=False)
    with pytest.raises(RadarcastError, match="exists"):
        place(tmp_path / ".b.2.tmp", tmp_path / "b", overwrite=False)
    assert (tmp_path / "b").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid  # reaped: no process has this id (until the system reuses it)


def test_stale_temporaries_of_dead_runs_are_removed_and_only_those(tmp_path):
    out = tmp_path / "fc.h5"
    dead, live = _dead_pid(), os.getppid()
    stale = tmp_path / f".fc.h5.{dead}.tmp"
    stale.write_bytes(b"x" * 4096)
    stale_dir = tmp_path / f".fc.h5.{dead + 0}.tmp.d"  # not our pattern: kept
    stale_dir.write_text("keep")
    stale_suffix = tmp_path / f".fc.{dead}.tmp.h5"  # the writers that keep the suffix
    stale_suffix.write_text("x")
    alive = tmp_path / f".fc.h5.{live}.tmp"
    alive.write_text("a live run is writing this")
    others = [tmp_path / n for n in (".other.h5.1.tmp", ".fc.h5.abc.tmp", "fc.h5.1.tmp")]
    for p in others:
        p.write_text("not ours")

    tmp = temporary_path(out)
    assert tmp.name == f".fc.h5.{os.getpid()}.tmp"
    assert not stale.exists() and not stale_suffix.exists()
    assert alive.exists() and stale_dir.exists() and all(p.exists() for p in others)
    assert remove_stale_temporaries(out) == []


def test_killed_forecast_temporary_is_cleaned_by_the_next_run(tiny_dataset, tmp_path):
    """A forecast killed mid-write (its PID now dead) left a temp; the next write removes it."""
    from radarcast.data.forecast_writer import ForecastWriter
    from radarcast.data.store import open_dataset

    out = tmp_path / "fc.h5"
    stale = tmp_path / f".fc.h5.{_dead_pid()}.tmp"
    with h5py.File(stale, "w") as f:
        f["pred"] = np.zeros((4, 64, 64), np.uint8)
    ds = open_dataset(tiny_dataset)
    with ForecastWriter(out, ds, [0], method="m", config={}, n_in=3, n_out=4, split=None) as w:
        w.write(np.zeros((1, 4, 64, 64), np.uint8))
        w.finish()
    assert not stale.exists() and out.is_file()
