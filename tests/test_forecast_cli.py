"""`radarcast forecast` and `radarcast rover` on a tiny dataset: end to end in a subprocess once,
then flags and refusals in-process (conftest.run_cli: the same app, no new interpreter)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from conftest import run_cli

from radarcast.data.forecast_file import open_forecast
from radarcast.data.store import open_dataset


def cli(*args: str):
    return subprocess.run(
        [sys.executable, "-m", "radarcast", *map(str, args)], capture_output=True, text=True
    )


def no_file_left(folder, name: str) -> bool:
    return not any(
        p.name.startswith(name) or p.name.startswith(f".{name}") for p in folder.iterdir()
    )


def test_forecast_persistence_and_rover_read_back(tiny_dataset, tmp_path):
    out_p, out_r = tmp_path / "p.h5", tmp_path / "r.h5"
    r = cli("forecast", tiny_dataset, "--method", "persistence", "-o", out_p, "--split", "all")
    assert r.returncode == 0, r.stderr
    r = cli(
        "forecast",
        tiny_dataset,
        "--method",
        "rover",
        "-o",
        out_r,
        "--split",
        "all",
        "--limit",
        "5",
        "--batch-size",
        "2",
        "--device",
        "cpu",
    )
    assert r.returncode == 0, r.stderr
    assert "5 windows" in r.stdout
    with open_dataset(tiny_dataset) as ds, open_forecast(out_p) as fp, open_forecast(out_r) as fr:
        fp.check_matches(ds, n_in=3, n_out=4)
        fr.check_matches(ds, n_in=3, n_out=4)
        assert fp.method == "persistence" and fr.method == "rover"
        assert len(fr.starts) == 5 and fr.pred([0]).shape == (1, 4, 64, 64)
        last = ds.frames(int(fp.starts[0]) + 2).astype(np.float32)  # the last input frame
        assert np.array_equal(fp.pred([0])[0, 0], last[0])
        assert not np.array_equal(fr.pred([0])[0, -1], last[0])  # ROVER moved the blob


def test_rover_flags_reach_the_saved_config(tiny_dataset, tmp_path):
    toml = tmp_path / "rover.toml"
    toml.write_text("[rover]\nsmoothness = 0.9\nlevels = 2\n")
    out = tmp_path / "r.h5"
    r = run_cli(
        "rover",
        tiny_dataset,
        "-o",
        out,
        "--split",
        "all",
        "--limit",
        "2",
        "--config",
        toml,
        "--smoothness",
        "0.25",
        "--iterations",
        "7",
        "--transform",
        "arctan",
    )
    assert r.returncode == 0, r.stderr
    with open_forecast(out) as f:
        assert f.config["smoothness"] == 0.25  # flag beats TOML
        assert f.config["levels"] == 2  # TOML beats default
        assert f.config["iterations"] == 7 and f.config["transform"] == "arctan"


def assert_refused(result, folder, name: str, words: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert no_file_left(folder, name)


def test_too_few_input_frames_is_refused(tiny_dataset, tmp_path):
    r = run_cli("rover", tiny_dataset, "-o", tmp_path / "x.h5", "--split", "all", "--frames", "4")
    assert_refused(r, tmp_path, "x.h5", "needs 4 input frames")


def test_existing_output_is_refused(tiny_dataset, tmp_path):
    out = tmp_path / "x.h5"
    out.write_bytes(b"keep me")
    r = run_cli("forecast", tiny_dataset, "-o", out, "--split", "all")
    assert r.returncode == 1 and "--overwrite" in r.stderr
    assert out.read_bytes() == b"keep me"


def test_unknown_method_is_refused(tiny_dataset, tmp_path):
    r = run_cli("forecast", tiny_dataset, "--method", "magic", "-o", tmp_path / "x.h5")
    assert_refused(r, tmp_path, "x.h5", "unknown method 'magic'")


def test_grid_too_small_is_refused(tiny_dataset, tmp_path):
    r = run_cli("rover", tiny_dataset, "-o", tmp_path / "x.h5", "--split", "all",
                "--downsample", "16")
    assert_refused(r, tmp_path, "x.h5", "too small")
