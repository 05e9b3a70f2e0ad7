"""preprocess: synth → dataset → read back, scale conversion, geometry, CLI end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, require_shared, run_cli
from PIL import Image

from radarcast.data.preprocess import PreprocessConfig, downsample, preprocess
from radarcast.data.store import open_dataset
from radarcast.data.synthetic import (
    TIME_PATTERN,
    SynthConfig,
    SynthSequence,
    sequence_start,
    write_synth,
)
from radarcast.data.units import Units, get_preset
from radarcast.errors import RadarcastError

SMALL = SynthConfig(sequences=2, frames=10, height=32, width=40, seed=5)


def _cli(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "radarcast", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_synth_png_round_trip(tmp_path):
    folder = write_synth(tmp_path / "syn", SMALL)
    cfg = PreprocessConfig(time_pattern=TIME_PATTERN, split=(1, 0, 0), n_in=2, n_out=2)
    out = preprocess([folder], tmp_path / "d.h5", cfg)
    ds = open_dataset(out)
    expected = np.concatenate([SynthSequence(SMALL, i).frames() for i in range(2)])
    np.testing.assert_array_equal(ds.frames(0, ds.n_frames), expected)
    starts = [sequence_start(SMALL, i) for i in range(2)]
    np.testing.assert_array_equal(
        ds.times, np.concatenate([s + 300 * np.arange(10) for s in starts])
    )
    assert ds.segments[10] != ds.segments[9]  # the time gap starts a segment
    assert ds.masks(0, ds.n_frames).all()


def test_npy_nodata_becomes_mask_and_scale_converted(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (2, 6, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "s.npy", a)
    cfg = PreprocessConfig(input_scale="fmi", split=(1, 0, 0), n_in=2, n_out=2)
    ds = open_dataset(preprocess([tmp_path / "s.npy"], tmp_path / "d.h5", cfg))
    lut = get_preset("fmi").rescale_lut(Units())
    flat = a.reshape(12, 8, 8)
    np.testing.assert_array_equal(ds.masks(0, 12), flat != 255)
    np.testing.assert_array_equal(ds.frames(0, 12), np.where(flat == 255, 0, lut[flat]))
    assert ds.segments[6] != ds.segments[5]  # second sequence: its own segment
    assert ds.times[6] - ds.times[5] == 600  # with an empty step before it


def test_downsample_block_mean_and_majority_mask():
    frame = np.array([[10, 20, 0, 0], [30, 40, 0, 0]], np.uint8)
    mask = np.array([[True, True, False, False], [True, False, True, False]])
    out, valid = downsample(frame, mask, 2)
    assert out.tolist() == [[20, 0]]  # mean of the valid 10, 20, 30
    assert valid.tolist() == [[True, False]]  # 3 of 4 valid; 1 of 4 is under half


def test_crop_and_resize(tmp_path):
    np.save(tmp_path / "s.npy", np.arange(5 * 20 * 30, dtype=np.int64).reshape(5, 20, 30) % 256)
    cfg = PreprocessConfig(crop=(2, 12, 5, 25), resize=(5, 10), split=(1, 0, 0), n_in=1, n_out=1)
    ds = open_dataset(preprocess([tmp_path / "s.npy"], tmp_path / "d.h5", cfg))
    assert ds.shape == (5, 5, 10)


def test_fmi_real_files_with_mask(tmp_path):
    folder = require_shared("radar", "fmi", "pgm", "20160928")
    paths = sorted(folder.glob("*.pgm.gz"))[:4]
    cfg = PreprocessConfig(
        input_scale="fmi",
        time_pattern="%Y%m%d%H%M_fmi",
        downsample=4,
        split=(1, 0, 0),
        n_in=2,
        n_out=2,
    )
    ds = open_dataset(preprocess(paths, tmp_path / "d.h5", cfg))
    assert ds.shape == (4, 306, 190)
    assert 0.3 < ds.masks(0)[0].mean() < 1.0
    assert np.all(np.diff(ds.times) == 300)


def test_frames_of_different_sizes_name_the_file(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(RadarcastError, match="b.png.*5x4"):
        preprocess([tmp_path], tmp_path / "d.h5")
    assert not (tmp_path / "d.h5").exists()


def test_duplicate_times_name_the_file(tmp_path):
    for name in ("x_202401010000.png", "y_202401010000.png"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / name)
    with pytest.raises(RadarcastError, match="y_202401010000.png"):
        preprocess([tmp_path], tmp_path / "d.h5", PreprocessConfig(time_pattern="%Y%m%d%H%M"))


# ----------------------------------------------------------------- command line
def test_cli_synth_preprocess_info(tmp_path):
    r = _cli("synth", tmp_path / "syn", "-n", 2, "--frames", 12, "--size", "24x32")
    assert r.returncode == 0, r.stderr
    r = _cli(
        "preprocess",
        tmp_path / "syn",
        "--time-pattern",
        TIME_PATTERN,
        "-o",
        tmp_path / "d.h5",
        "--n-in",
        2,
        "--n-out",
        3,
    )
    assert r.returncode == 0, r.stderr
    assert "windows" in r.stdout and "train" in r.stdout
    r = _cli("info", tmp_path / "d.h5")
    assert r.returncode == 0 and "24×32" in r.stdout


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["nothing*.png"], "no files match"),
        ("rgb", ["in"], "colour"),
        ("float", ["in/s.npy"], "float values"),
        ("cikm", ["in/c.txt"], "line 1"),
        ("sizes", ["in"], "earlier frames"),
        (None, ["in", "--format", "pysteps:nope"], "pysteps"),
        (  # they silently replaced the product's own geo-reference
            None,
            ["in", "--format", "pysteps:fmi_pgm", "--crs", "EPSG:3067", "--bounds", "0,0,4,6"],
            "--crs/--bounds are for plain images; --format pysteps:fmi_pgm takes the "
            "geo-reference from the product",
        ),
    ],
)
def test_cli_bad_input_one_line_exit_1_no_output(tmp_path, setup, args, message):
    src = tmp_path / "in"
    src.mkdir()
    if setup == "rgb":
        Image.fromarray(np.full((4, 4, 3), (200, 0, 0), np.uint8)).save(src / "a.png")
    elif setup == "float":
        np.save(src / "s.npy", np.full((2, 4, 4), 0.5))
    elif setup == "cikm":
        (src / "c.txt").write_text("a,1,1 2 3\n")
    elif setup in ("sizes", None):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(src / "a.png")
        Image.fromarray(np.zeros((6, 4), np.uint8)).save(src / "b.png")
    r = run_cli("preprocess", *args, "-o", tmp_path / "d.h5", cwd=tmp_path)
    assert r.returncode == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d.h5").exists()


def test_cli_existing_output_refused(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((3, 4, 4), np.uint8))
    (tmp_path / "d.h5").write_bytes(b"keep")
    r = run_cli("preprocess", tmp_path / "s.npy", "-o", tmp_path / "d.h5")
    assert r.returncode == 1 and "--overwrite" in r.stderr
    assert (tmp_path / "d.h5").read_bytes() == b"keep"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_signal_during_preprocess_leaves_no_output(tmp_path, sig):
    np.save(
        tmp_path / "s.npy",
        np.random.default_rng(0).integers(0, 256, (4000, 96, 96), dtype=np.uint8),
    )
    out = tmp_path / "d.h5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "radarcast", "preprocess", str(tmp_path / "s.npy"), "-o", str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".d.h5.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "preprocess ended before it could be interrupted"
    os.kill(proc.pid, sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert not out.exists()
    if sig == signal.SIGINT:
        assert not list(tmp_path.glob(".d.h5.*"))  # Ctrl-C also removes the temporary file


def test_name_order_times_from_start_and_timestep(tmp_path):
    for name in ("b.png", "a.png", "c.png"):
        Image.fromarray(np.full((4, 4), ord(name[0]), np.uint8)).save(tmp_path / name)
    cfg = PreprocessConfig(
        timestep_s=600, start="2021-06-01T12:00Z", split=(1, 0, 0), n_in=1, n_out=1
    )
    ds = open_dataset(preprocess([tmp_path], tmp_path / "d.h5", cfg))
    assert ds.frames(0, 3)[:, 0, 0].tolist() == [ord("a"), ord("b"), ord("c")]
    assert (ds.times - 1622548800).tolist() == [0, 600, 1200]


def test_meteoswiss_folder_with_a_checksum_and_its_grid_line(tmp_path):
    # pysteps formats read every file of a folder (the .md5 and README.txt too); and info's
    # grid line called MeteoSwiss' unnamed somerc CRS "unknown", which reads as no grid
    import shutil

    src = sorted(require_shared("radar", "mch", "20150515").glob("AQC*.gif"))[:3]
    (tmp_path / "in").mkdir()
    for p in src:
        shutil.copy(p, tmp_path / "in" / p.name)
    (tmp_path / "in" / f"{src[-1].name}.md5").write_text("0\n")
    (tmp_path / "in" / "README.txt").write_text("AQC\n")
    r = run_cli("preprocess", tmp_path / "in", "--format", "pysteps:mch_gif", "--time-pattern",
                "AQC%y%j%H%M?_", "--n-in", 1, "--n-out", 1, "--split", "1,0,0",
                "-o", tmp_path / "d.h5")  # fmt: skip
    assert r.returncode == 0, r.stderr
    with open_dataset(tmp_path / "d.h5") as ds:
        assert ds.shape == (3, 640, 710)
    from radarcast.data.info import summarize

    grid = dict(summarize(tmp_path / "d.h5")["rows"])["grid"]
    assert grid.startswith("CRS +proj=somerc +lon_0=7.4395") and "(unnamed);" in grid, grid
    assert "unknown" not in grid, grid


def test_grid_line_names_a_named_crs():
    pytest.importorskip("pyproj")
    from radarcast.data.georef import Georef

    named = Georef.from_bounds("EPSG:3035", (4e6, 3e6, 4.048e6, 3.048e6), (48, 48))
    assert named.crs_name().startswith("CRS ETRS89-extended / LAEA Europe (+proj=laea"), named
    bare = Georef.from_bounds("+proj=somerc +lat_0=46.95 +lon_0=7.44 +units=m", (0, 0, 4, 4),
                              (4, 4))  # fmt: skip
    assert bare.crs_name().startswith("CRS +proj=somerc") and bare.crs_name().endswith("(unnamed)")
    assert bare.describe().startswith(bare.crs_name() + "; x 0..4 m")
