"""`radarcast nowcast` and its watch mode take only files of the reader's kind from a
folder (no checksum or README as a frame), and refuse bad watch flags before watching."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import require_shared, run_cli
from test_nowcast import PATTERN, frames, invoke

MCH = ["--format", "pysteps:mch_gif", "--time-pattern", "AQC%y%j%H%M?_"]


def mch_with_strays(folder: Path) -> list[Path]:
    """Three consecutive MeteoSwiss GIFs in ``folder`` (16:20-16:30), the newest's checksum
    ``X.gif.md5`` and a README.txt beside them."""
    src = sorted(require_shared("radar", "mch", "20150515").glob("AQC*.gif"))[7:10]
    folder.mkdir()
    for p in src:
        shutil.copy(p, folder / p.name)
    (folder / f"{src[-1].name}.md5").write_text("d41d8cd98f00b204e9800998ecf8427e\n")
    (folder / "README.txt").write_text("MeteoSwiss AQC composites\n")
    return [folder / p.name for p in src]


def synth_with_strays(folder: Path) -> list[Path]:
    """``frames`` (00:00-00:10 PNGs) with the newest's checksum and a README.txt beside them."""
    paths = frames(folder)
    (folder / f"{paths[-1].name}.md5").write_text("d41d8cd98f00b204e9800998ecf8427e\n")
    (folder / "README.txt").write_text("radar frames\n")
    return paths


def test_a_folder_gives_only_files_of_the_readers_kind(tmp_path):
    # a checksum named after the newest GIF was taken as the newest frame ("inputs are of
    # different products: ...gif and ...gif.md5"): pysteps formats had no suffixes
    from radarcast.data.forecast_file import open_forecast

    mch_with_strays(tmp_path / "in")
    r = invoke(tmp_path / "in", *MCH, "--method", "rover", "--leads", "2", "-o", tmp_path / "y.h5")
    assert r.exit_code == 0, r.output
    with open_forecast(tmp_path / "y.h5") as f:
        assert f.analysis_times.tolist() == [1431707400]  # 2015-05-15T16:30Z, the newest GIF


@pytest.mark.parametrize("fmt", ["auto", "images"])
def test_a_folder_of_images_gives_only_images(fmt, tmp_path):
    # with --format auto a README.txt was a CIKM input ("does not match --time-pattern")
    synth_with_strays(tmp_path / "in")
    r = invoke(tmp_path / "in", "--format", fmt, "--time-pattern", PATTERN,
               "--method", "persistence", "--leads", "1", "-o", tmp_path / "y.h5")  # fmt: skip
    assert r.exit_code == 0, r.output


def _watch_once(folder: Path, out: Path, *extra) -> str:
    out.mkdir()
    r = invoke("--watch", folder, "--out-dir", out, "--method", "persistence", "--leads", "1",
               "--once", "--settle", "0.1", *extra)  # fmt: skip
    assert r.exit_code == 0, r.output
    return r.output


def test_watch_takes_no_sidecar_for_the_newest_frame(tmp_path):
    # the .md5 was the newest file (the only one due at start), was skipped as unreadable,
    # and the GIF it belongs to was never nowcast
    mch_with_strays(tmp_path / "in")
    log = _watch_once(tmp_path / "in", tmp_path / "out", *MCH)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["nowcast_20150515T1630Z.h5"], log
    assert "md5" not in log and "README" not in log, log


@pytest.mark.parametrize("fmt", ["auto", "images"])
def test_watch_of_images_ignores_other_files(fmt, tmp_path):
    synth_with_strays(tmp_path / "in")
    log = _watch_once(tmp_path / "in", tmp_path / "out", "--format", fmt, "--time-pattern", PATTERN)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["nowcast_20240101T0010Z.h5"], log
    assert "skip" not in log, log


WATCH_BAD = {
    "no folder": (["--watch", "nodir", "--out-dir", "out"], "--watch nodir: no such folder"),
    "no out dir": (["--watch", "in", "--out-dir", "nodir2"], "--out-dir nodir2: no such folder"),
    "out format": (
        ["--watch", "in", "--out-dir", "out", "--out-format", "foo"],
        "--out-format foo: unknown output type; choose one of: h5, nc, tif, tiff, zarr, grib2,",
    ),
    "-o": (
        ["--watch", "in", "--out-dir", "out", "-o", "x.nc"],
        "-o is for one nowcast; --watch writes into --out-dir",
    ),
    "files": (
        ["in", "--watch", "in", "--out-dir", "out"],
        "FILES are for one nowcast; --watch reads its folder",
    ),
}


@pytest.mark.parametrize("case", WATCH_BAD)
def test_bad_watch_flags_one_line_before_watching(case, tmp_path):
    # the "info watching ..." line used to come first; --out-format foo spoke of "x.foo";
    # -o with --watch was ignored
    args, message = WATCH_BAD[case]
    frames(tmp_path / "in")
    (tmp_path / "out").mkdir()
    before = set(tmp_path.rglob("*"))
    r = run_cli("nowcast", *args, "--method", "persistence", "--once", "--settle", "0",
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert set(tmp_path.rglob("*")) == before
