"""Clean refusals found by the outside probes (issue 21): each was a traceback, a silent
default or lost data before its fix."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from radarcast.cli import app
from radarcast.cli._app import user_errors
from radarcast.errors import RadarcastError


def _refused(args: list[str], *needles: str, cwd: Path | None = None) -> str:
    """Run the CLI in this process; it must exit 1 with one line naming ``needles``."""
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        r = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})
    finally:
        os.chdir(old)
    out = r.output.strip()
    assert r.exit_code == 1, (r.exit_code, out, r.exception)
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    for n in needles:
        assert n in out, out
    return out


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "radarcast", *args], cwd=cwd, capture_output=True, timeout=120
    )


# --------------------------------------------------------------------------- synth


def test_synth_overwrite_replaces_only_its_own_folders(tmp_path):
    from radarcast.data.synthetic import MARKER, SynthConfig, write_synth

    small = SynthConfig(sequences=1, frames=3, height=16, width=16)
    user = tmp_path / "thesis"
    user.mkdir()
    (user / "chapter1.tex").write_text("years of work")
    with pytest.raises(RadarcastError, match="not written by radarcast synth"):
        write_synth(user, small, overwrite=True)
    assert (user / "chapter1.tex").read_text() == "years of work"

    out = write_synth(tmp_path / "syn", small)
    assert (out / MARKER).is_file()
    (out / "notes.txt").write_text("mine")  # a user's file inside a synth folder stays too
    with pytest.raises(RadarcastError, match="notes.txt, which radarcast synth did not write"):
        write_synth(out, small, overwrite=True)
    (out / "notes.txt").unlink()
    write_synth(out, SynthConfig(sequences=1, frames=2, height=16, width=16), overwrite=True)
    assert len(list(out.glob("*.png"))) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["syn", "thesis"]


def test_synth_into_the_current_folder_is_one_line(tmp_path):
    r = _cli("synth", ".", cwd=tmp_path)
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err, err
    assert "is the folder you are in" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [] and list(tmp_path.parent.glob(".*.tmp")) == []


# --------------------------------------------------------------------------- configs


def test_toml_values_are_checked_even_when_a_flag_replaces_them(tmp_path, tiny_dataset):
    toml = tmp_path / "run.toml"
    toml.write_text('steps = "abc"\n')
    _refused(["train", tiny_dataset, "--config", toml, "--steps", "1", "--out", tmp_path / "r"],
             "run.toml", "steps", "abc")
    assert not (tmp_path / "r").exists()


def test_a_model_too_large_for_memory_is_refused_before_allocation(tmp_path, tiny_dataset):
    import resource

    toml = tmp_path / "big.toml"
    toml.write_text('preset = "convlstm-1"\n\n[model_config]\nhidden = [100000000]\n')
    out = _refused(["train", tiny_dataset, "--config", toml, "--steps", "1",
                    "--out", tmp_path / "r"], "parameters", "would need about")
    assert "GiB" in out
    # nothing of that size was touched: this process's peak memory stays far below it
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 8 * 2**20  # KiB → 8 GiB


def test_preprocess_resize_checks_memory_before_allocating():
    from radarcast.data.preprocess import PreprocessConfig

    with pytest.raises(RadarcastError, match=r"--resize 100000x100000 would need about .* GiB"):
        PreprocessConfig(resize=(100000, 100000)).check()
    PreprocessConfig(resize=(512, 512)).check()


# --------------------------------------------------------------------------- flags


@pytest.mark.parametrize(
    "args, name",
    [
        (["forecast", "{ds}", "-o", "{tmp}/f.h5", "--n-in", "0"], "--n-in"),
        (["forecast", "{ds}", "-o", "{tmp}/f.h5", "--n-out", "0"], "--n-out"),
        (["forecast", "{ds}", "-o", "{tmp}/f.h5", "--batch-size", "0"], "--batch-size"),
        (["rover", "{ds}", "-o", "{tmp}/f.h5", "--n-out", "0"], "--n-out"),
        (["evaluate", "{ds}", "--out", "{tmp}/s", "--n-in", "0"], "--n-in"),
        (["evaluate", "{ds}", "--out", "{tmp}/s", "--n-out", "0"], "--n-out"),
        (["animate", "{ds}", "-o", "{tmp}/a.gif", "--window", "0", "--n-out", "0"], "--n-out"),
        (["animate", "{ds}", "-o", "{tmp}/a.gif", "--window", "0", "--n-in", "0"], "--n-in"),
    ],
)
def test_zero_is_refused_by_name_never_the_default(tmp_path, tiny_dataset, args, name):
    args = [a.format(ds=tiny_dataset, tmp=tmp_path) for a in args]
    _refused(args, name, "got 0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.h5"]


NAN_INF_ZERO = [  # (command line, option named in the one-line refusal); each exited 0
    # with a silent default or no effect, or ended in a traceback, before its check
    (["info", "{ds}", "--n-in", "0"], "--n-in"),
    (["info", "{ds}", "--n-out", "-1"], "--n-out"),
    (["synth", "{tmp}/s", "--seed", "-1"], "--seed"),
    (["synth", "{tmp}/s", "--growth", "nan"], "--growth"),
    (["synth", "{tmp}/s", "--growth", "inf"], "--growth"),
    (["synth", "{tmp}/s", "--speed", "nan"], "--speed"),
    (["synth", "{tmp}/s", "--speed", "inf"], "--speed"),
    (["synth", "{tmp}/s", "--rotation", "nan"], "--rotation"),
    (["synth", "{tmp}/s", "--cells", "nan"], "--cells"),
    (["synth", "{tmp}/s", "--cells", "inf"], "--cells"),
    (["forecast", "{ds}", "-o", "{tmp}/f.h5", "--seed", "-1"], "--seed"),
    (["rover", "{ds}", "-o", "{tmp}/f.h5", "--members", "2", "--seed", "-1"], "--seed"),
    (["rover", "{ds}", "-o", "{tmp}/f.h5", "--dbz-floor", "nan"], "--dbz-floor"),
    (["rover", "{ds}", "-o", "{tmp}/f.h5", "--robust", "nan"], "--robust"),
    (["rover", "{ds}", "-o", "{tmp}/f.h5", "--smoothness", "inf"], "--smoothness"),
    (["evaluate", "{ds}", "--out", "{tmp}/s", "--bootstrap", "2", "--seed", "-1"], "--seed"),
    (["preprocess", "{raw}", "-o", "{tmp}/p.h5", "--zr-a", "inf", "--zr-b", "1.6"], "--zr-a"),
    (["preprocess", "{raw}", "-o", "{tmp}/p.h5", "--max-start-end-corr", "nan"],
     "--max-start-end-corr"),
    (["preprocess", "{raw}", "-o", "{tmp}/p.h5", "--max-start-end-corr", "2"],
     "--max-start-end-corr"),
    (["preprocess", "{raw}", "-o", "{tmp}/p.h5", "--nodata", "0.5"], "--nodata"),
    (["train", "{ds}", "--out", "{tmp}/run", "--lr", "1e308"], "lr"),  # torch's overflow
    # found by the refuse2 scan: a numpy/torch traceback (†) or exit 0 with a meaningless file
    (["synth", "{tmp}/s", "--growth", "1e308"], "--growth"),  # † lam value too large
    (["synth", "{tmp}/s", "--cells", "1e308"], "--cells"),  # † lam value too large
    (["synth", "{tmp}/s", "--speed", "1e308"], "--speed"),
    (["synth", "{tmp}/s", "--rotation", "1e308"], "--rotation"),
    (["preprocess", "{raw}", "-o", "{tmp}/p.h5", "--dbz-gain", "1e308"], "--dbz-gain"),
    (["preprocess", "{raw}", "-o", "{tmp}/p.h5", "--dbz-offset", "1e308"], "--dbz-offset"),
    (["preprocess", "{raw}", "-o", "{tmp}/p.h5", "--cikm-level", "-1"], "--cikm-level"),
    (["rover", "{ds}", "-o", "{tmp}/f.h5", "--dbz-floor", "1e308"], "--dbz-floor"),  # † torch
    (["rover", "{ds}", "-o", "{tmp}/f.h5", "--smoothness", "1e308"], "--smoothness"),  # †
    (["rover", "{ds}", "-o", "{tmp}/f.h5", "--robust", "1e308"], "--robust"),
]


@pytest.fixture(scope="module")
def raw_frames(tmp_path_factory):
    from radarcast.data.synthetic import SynthConfig, write_synth

    cfg = SynthConfig(sequences=1, frames=4, height=16, width=16)
    return write_synth(tmp_path_factory.mktemp("raw") / "frames", cfg)


@pytest.mark.parametrize("args, name", NAN_INF_ZERO, ids=[" ".join(a[0][:1] + a[0][-2:])
                                                         for a in NAN_INF_ZERO])
def test_impossible_numbers_are_refused_by_name(tmp_path, tiny_dataset, raw_frames, args, name):
    from tests.conftest import run_cli

    args = [a.format(ds=tiny_dataset, tmp=tmp_path, raw=raw_frames) for a in args]
    r = run_cli(*args)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.h5"]  # nothing written


def test_library_calls_refuse_zero_instead_of_taking_the_default(tiny_dataset):
    """The `x or default` patterns behind the flags: a 0 given through the Python API is
    refused by name too, never read as "not given"."""
    from radarcast.config import count_or
    from radarcast.data.store import open_dataset
    from radarcast.evaluation.windows import _lengths
    from radarcast.forecasters import check_window_lengths, resolve, run_batched

    with open_dataset(tiny_dataset) as ds:
        with pytest.raises(RadarcastError, match="--n-in must be a whole number ≥ 1, got 0"):
            resolve("persistence", ds, n_in=0)
        with pytest.raises(RadarcastError, match="--n-out must be a whole number ≥ 1, got 0"):
            resolve("persistence", ds, n_out=0)
        fc = resolve("persistence", ds)
        with pytest.raises(RadarcastError, match="--n-in .* got 0"):
            check_window_lengths(fc, ds, 0)
        with pytest.raises(RadarcastError, match="--batch-size .* got 0"):
            run_batched(fc, np.zeros((2, ds.n_in, 4, 4), np.float32), batch_size=0)
        with pytest.raises(RadarcastError, match="--n-out .* got 0"):
            _lengths(ds, None, 0)
        assert _lengths(ds, None, None) == (ds.n_in, ds.n_out)
    with pytest.raises(RadarcastError, match="got 2.5"):
        count_or(2.5, 3, "--n-in")
    assert count_or(None, 3, "--n-in") == 3 and count_or(4, 3, "--n-in") == 4


# Leftovers of the rel helper's scan (files it could not edit) and what the refuse2 scan of
# every command's numeric options found: each line exited 0 (the value silently ignored, or
# the check left to the first file of a live run) or ended in a traceback before its check.
WATCH = ["nowcast", "--watch", "{tmp}/in", "--out-dir", "{tmp}/out", "--once"]
LEFTOVERS = [
    (["demo", "--quick", "--out", "{tmp}/d", "--seed", "-1"], "--seed"),  # numpy traceback
    ([*WATCH, "--settle", "inf"], "--settle"),  # OverflowError from select()
    ([*WATCH, "--settle", "1e308"], "--settle"),  # OverflowError from select()
    ([*WATCH, "--settle", "-1"], "--settle"),
    ([*WATCH, "--settle", "nan"], "--settle"),
    ([*WATCH, "--poll", "-1"], "--poll"),
    ([*WATCH, "--poll", "nan"], "--poll"),
    ([*WATCH, "--poll", "inf"], "--poll"),
    ([*WATCH, "--poll", "0"], "--poll"),
    ([*WATCH, "--members", "0"], "--members"),
    ([*WATCH, "--timestep", "0"], "--timestep"),
    ([*WATCH, "--downsample", "0"], "--downsample"),
    ([*WATCH, "--flow-downsample", "0"], "--flow-downsample"),
]


@pytest.mark.parametrize("args, name", LEFTOVERS, ids=[" ".join(a[0][:1] + a[0][-2:])
                                                     for a in LEFTOVERS])
def test_leftover_impossible_numbers_are_refused_by_name(tmp_path, args, name):
    from tests.conftest import run_cli

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    r = run_cli(*[a.format(tmp=tmp_path) for a in args])
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], r.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["in", "out"]  # nothing written


def test_library_configs_refuse_zero_and_impossible_numbers(tmp_path, tiny_dataset):
    """The same values through the Python API: refused where the value is held (the
    dataclass or the function), not only by the CLI's flags."""
    import math

    from radarcast.baselines.rover import RoverConfig
    from radarcast.data.info import summarize
    from radarcast.data.store import open_dataset
    from radarcast.data.synthetic import SynthConfig
    from radarcast.nowcast.watch import WatchConfig
    from radarcast.parallel.forecast import write_forecast_sharded

    with open_dataset(tiny_dataset) as ds:
        for kw, name in (({"n_in": 0}, "--n-in"), ({"n_out": 0}, "--n-out")):
            with pytest.raises(RadarcastError, match=f"{name} .* got 0"):
                ds.windows(**kw)
            with pytest.raises(RadarcastError, match=f"{name} .* got 0"):
                ds.window(0, **kw)
            with pytest.raises(RadarcastError, match=f"{name} .* got 0"):
                summarize(tiny_dataset, **kw)
        assert len(ds.windows()) == len(ds.windows(ds.n_in, ds.n_out)) > 0
    with pytest.raises(RadarcastError, match="--batch-size .* got 0"):
        write_forecast_sharded(tiny_dataset, "persistence", tmp_path / "f.h5", None,
                               batch_size=0)
    assert not (tmp_path / "f.h5").exists()
    for field in ("growth", "speed", "rotation", "cells", "lifetime"):
        for v in (math.nan, math.inf):
            with pytest.raises(RadarcastError, match=f"synth {field} must be a finite number"):
                SynthConfig(**{field: v}).check()
    with pytest.raises(RadarcastError, match="synth seed"):
        SynthConfig(seed=-1).check()
    for field in ("dbz_floor", "smoothness", "robust"):
        flag = "--" + field.replace("_", "-")
        for v in (math.nan, math.inf, -math.inf):
            with pytest.raises(RadarcastError, match=f"{flag} must be a finite number"):
                RoverConfig(**{field: v})
    with pytest.raises(RadarcastError, match="--robust must be ≥ 0"):
        RoverConfig(robust=-1.0)
    for kw, name in (({"settle_s": math.inf}, "--settle"), ({"settle_s": -1.0}, "--settle"),
                     ({"poll_s": 0.0}, "--poll"), ({"poll_s": math.nan}, "--poll")):
        with pytest.raises(RadarcastError, match=name):
            WatchConfig(tmp_path, "*", tmp_path, **kw)
    WatchConfig(tmp_path, "*", tmp_path, settle_s=0.0, poll_s=0.5)  # the edges are allowed


def test_an_external_forecast_refuses_zero_lengths(tmp_path, tiny_dataset):
    xr = pytest.importorskip("xarray")
    from radarcast.data.cf_forecast import CFForecast
    from radarcast.data.store import open_dataset

    with open_dataset(tiny_dataset) as ds:
        t0 = int(ds.times[2])
        data = np.zeros((1, 2, *ds.shape[1:]), np.float32)
        xr.Dataset(
            {"reflectivity": (("time", "lead_time", "y", "x"), data, {"units": "dBZ"})},
            coords={"time": np.array([t0], "datetime64[s]"),
                    "lead_time": np.array([300, 600], "timedelta64[s]")},
        ).to_netcdf(tmp_path / "f.nc")  # fmt: skip
        with CFForecast(tmp_path / "f.nc") as fc:
            for kw, name in (({"n_in": 0}, "--n-in"), ({"n_out": 0}, "--n-out")):
                with pytest.raises(RadarcastError, match=f"{name} .* got 0"):
                    fc.check_matches(ds, **kw)
            fc.check_matches(ds)  # the defaults still match
            assert list(fc.starts) == [0]


def test_impossible_thresholds_and_overlays_are_refused(tmp_path, tiny_dataset):
    _refused(["evaluate", tiny_dataset, "--out", tmp_path / "s", "--thresholds", "1e308",
              "--units", "pixel"], "1e+308", "0..255")
    _refused(["evaluate", tiny_dataset, "--out", tmp_path / "s", "--thresholds", "2,nan"],
             "--thresholds", "finite")
    for value in ("nan", "inf"):
        _refused(["animate", tiny_dataset, "-o", tmp_path / "a.gif", "--window", "0",
                  "--overlay", value], "--overlay", "finite")
    _refused(["animate", tiny_dataset, "-o", tmp_path / "a.gif", "--window", "0",
              "--units", "pixel", "--overlay", "1e308"], "--overlay", "0..255")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.h5"]


# --------------------------------------------------------------------------- text


def test_a_name_that_is_not_utf8_is_one_line_and_leaves_nothing(tmp_path, tiny_dataset):
    bad = os.fsencode(tmp_path) + b"/out\xff.h5"
    r = subprocess.run(
        [sys.executable.encode(), b"-m", b"radarcast", b"forecast", os.fsencode(tiny_dataset),
         b"-o", bad, b"--split", b"all", b"--limit", b"1"],
        capture_output=True, timeout=120,
    )
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1 and "Traceback" not in err, err
    assert "not valid UTF-8" in err and "out\\xff.h5" in err and len(err.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["tiny.h5"]  # no hidden partial file either


def test_library_warnings_never_reach_the_error_line(capsys):
    @user_errors
    def command() -> None:
        warnings.warn("pickle protocol 5 is not supported here", UserWarning, stacklevel=1)
        warnings.warn("Image size exceeds limit, could be decompression bomb", RuntimeWarning,
                      stacklevel=1)
        raise RadarcastError("x.png: not an image radarcast can read")

    saved = sys.warnoptions[:]
    sys.warnoptions.clear()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # as a fresh interpreter would show them, on stderr
            warnings.showwarning = lambda m, c, f, n, file=None, line=None: sys.stderr.write(
                warnings.formatwarning(m, c, f, n, line)
            )
            with pytest.raises(typer.Exit):
                command()
    finally:
        sys.warnoptions[:] = saved
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == ["error: x.png: not an image radarcast can read"], err
