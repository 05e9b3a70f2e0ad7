"""`radarcast nowcast` from raw files: outputs, bad input, and watch mode on a live folder."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from radarcast.cli import app

PATTERN = "radar_%Y%m%dT%H%M"
T0 = "20240101T00"


def png_bytes(shift: int, size: int = 48) -> bytes:
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size]
    blob = 200 * np.exp(-((xx - 12 - 2 * shift) ** 2 + (yy - 20) ** 2) / 30.0)
    buf = io.BytesIO()
    Image.fromarray(blob.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def frames(folder: Path, minutes=(0, 5, 10), size: int = 48) -> list[Path]:
    folder.mkdir(exist_ok=True)
    out = []
    for k, m in enumerate(minutes):
        p = folder / f"radar_{T0}{m:02d}.png"
        p.write_bytes(png_bytes(k, size))
        out.append(p)
    return out


def invoke(*args):
    return CliRunner().invoke(app, ["nowcast", *map(str, args)])


def test_persistence_nowcast_imports_no_torch_nor_h5py_and_places_the_geotiff(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    frames(tmp_path / "in")
    out = tmp_path / "now.tif"
    code = (
        "import sys; from radarcast.cli import app\n"
        "try:\n"
        f"    app(['nowcast', '{tmp_path / 'in'}', '-o', '{out}', '--method', 'persistence',"
        f" '--time-pattern', '{PATTERN}', '--crs', 'EPSG:3035', '--bounds',"
        " '4000000,3000000,4048000,3048000', '--leads', '3'], prog_name='radarcast')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print([m for m in ('torch', 'h5py') if m in sys.modules])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("[]"), r.stdout  # raw files → GeoTIFF: no HDF5 either
    with rasterio.open(out) as src:
        assert src.count == 3 and src.crs.to_epsg() == 3035
        assert tuple(src.transform)[:6] == (1000.0, 0.0, 4000000.0, 0.0, -1000.0, 3048000.0)
        assert src.descriptions[0] == "lead +5 min"


def test_rover_nowcast_h5_carries_its_context(tmp_path):
    from radarcast.data.forecast_file import open_forecast
    from radarcast.data.store import parse_time

    paths = frames(tmp_path / "in")
    r = invoke(
        *paths,
        "-o",
        tmp_path / "r.h5",
        "--method",
        "rover",
        "--leads",
        "4",
        "--time-pattern",
        PATTERN,
    )
    assert r.exit_code == 0, r.output
    with open_forecast(tmp_path / "r.h5") as f:
        assert f.shape == (1, 4, 48, 48) and f.method == "rover"
        assert f.analysis_times.tolist() == [parse_time("2024-01-01T00:10Z")]
        assert f.timestep_s == 300 and f.georef is None
        pred = f.pred([0])[0]
    # the blob moves 2 px per step to the east: ROVER's first lead is east of the last input
    cols = np.arange(48)
    centre = (pred[0].sum(0) * cols).sum() / pred[0].sum()
    assert 16 + 1 < centre < 16 + 3


def test_rover_ensemble_nowcast_runs_on_the_default_device(tmp_path):
    # the default device of a live rover nowcast is numpy's (quickest start); the ensemble
    # has torch kernels only, and `--members` without `--device cpu` used to be refused
    from radarcast.data.forecast_file import open_forecast

    paths = frames(tmp_path / "in")
    r = invoke(*paths, "-o", tmp_path / "e.h5", "--method", "rover", "--members", "3",
               "--leads", "2", "--time-pattern", PATTERN)
    assert r.exit_code == 0, r.output
    with open_forecast(tmp_path / "e.h5") as f:
        assert f.members == 3 and f.shape[-2:] == (48, 48)


def test_ensemble_on_the_numpy_device_is_refused_in_its_own_words(tmp_path):
    paths = frames(tmp_path / "in")
    r = invoke(*paths, "-o", tmp_path / "e.h5", "--method", "rover", "--members", "3",
               "--device", "numpy", "--leads", "2", "--time-pattern", PATTERN)
    assert r.exit_code == 1
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and "--device numpy makes deterministic" in line, line
    assert "makes no ensemble" not in line, line  # not wrapped in a claim about rover
    assert not (tmp_path / "e.h5").exists()


def test_members_for_a_deterministic_method_is_refused_before_reading(tmp_path):
    paths = frames(tmp_path / "in")
    r = invoke(*paths, "-o", tmp_path / "p.h5", "--method", "persistence", "--members", "3",
               "--time-pattern", PATTERN)  # fmt: skip
    assert r.exit_code == 1
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and "--members: persistence makes no ensemble" in line
    assert not (tmp_path / "p.h5").exists()


def test_png_and_gif_outputs(tmp_path):
    paths = frames(tmp_path / "in", size=320)  # wide enough for each panel's title
    for name in ("s.png", "a.gif"):
        r = invoke(
            *paths,
            "-o",
            tmp_path / name,
            "--method",
            "persistence",
            "--leads",
            "2",
            "--time-pattern",
            PATTERN,
            "--units",
            "dBZ",
        )
        assert r.exit_code == 0, r.output
    from PIL import Image

    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 3  # the newest input, then 2 leads
    with Image.open(tmp_path / "s.png") as im:
        assert im.size[0] == 3 * 320


def _fake_checkpoint(path: Path) -> Path:
    from radarcast.checkpoint import save_checkpoint
    from radarcast.data.units import PRESETS

    units = {k: v for k, v in PRESETS["fmi"].to_dict().items() if k != "nodata"}
    return save_checkpoint(
        path, model="convlstm", model_config={}, state_dict={}, units=units, n_in=2, n_out=2
    )


BAD = {
    "fewer files": (
        lambda p: [p[0], p[1]],
        ["--method", "rover"],
        "2 input files; the method needs the 3 newest",
    ),
    "not consecutive": (lambda p: p, ["--method", "rover", "--timestep", "600"], "not consecutive"),
    "times from mtime": (lambda p: p, ["--method", "rover", "NOPATTERN"], "pass --time-pattern"),
    "other grid": (
        lambda p: [*p[:2], frames(p[0].parent.parent / "big", (10,), 64)[0]],
        ["--method", "rover"],
        "different grids",
    ),
    "other product": (
        lambda p: [*p[:2], p[2].rename(p[2].with_name("other_" + p[2].name))],
        ["--method", "rover"],
        "different products",
    ),
    "suffix": (lambda p: p, ["-o", "x.xyz"], "unknown output type '.xyz'"),
    "unwritable": (lambda p: p, ["-o", "/proc/radarcast-test.h5"], "/proc/radarcast-test.h5"),
    "crs alone": (lambda p: p, ["--crs", "EPSG:3035"], "give --crs and --bounds together"),
    "no crs tif": (lambda p: p, ["-o", "x.tif"], "no CRS — use --crs/--bounds at preprocess"),
    "degrees": (lambda p: p, ["--crs", "EPSG:4326", "--bounds", "5,45,12,51", "-o", "x.tif"],
                "CRS 'WGS 84' is geographic (degrees)"),  # fmt: skip
    "feet": (lambda p: p, ["--crs", "EPSG:2263", "--bounds", "0,0,4800,4800"],
             "is not a projection in metres (axis units: US survey foot)"),  # fmt: skip
    "method": (lambda p: p, ["--method", "magic"], "unknown method 'magic'"),
    "scale": (
        lambda p: p,
        ["--method", "CKPT"],
        (  # the four numbers named, not a bare tuple (0.5, -32.0, 223.0, 1.53)
            "trained on pixel scale dBZ = 0.5·p − 32, Z = 223·R^1.53, but",
            "radar_20240101T0010.png uses dBZ = 0.27451·p − 10, Z = 58.53·R^1.56",
        ),
    ),
    "crs for pysteps": (
        lambda p: p,
        ["--format", "pysteps:mch_gif", "--crs", "EPSG:3035", "--bounds", "0,0,48000,48000"],
        "--crs/--bounds are for plain images; --format pysteps:mch_gif takes the "
        "geo-reference from the product",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_one_line_exit_1_nothing_written(case, tmp_path):
    pick, extra, message = BAD[case]
    paths = pick(frames(tmp_path / "in"))
    ckpt = str(_fake_checkpoint(tmp_path / "c.pt")) if "CKPT" in extra else None
    extra = [ckpt if a == "CKPT" else a for a in extra]
    out = [] if "-o" in extra else ["-o", "now.h5"]
    pattern = [] if "NOPATTERN" in extra else ["--time-pattern", PATTERN]
    extra = [a for a in extra if a != "NOPATTERN"]
    args = [*paths, *out, "--method", "persistence", *pattern, *extra]
    before = set(tmp_path.rglob("*"))
    r = subprocess.run(
        [sys.executable, "-m", "radarcast", "nowcast", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 1, r.stderr
    for part in message if isinstance(message, tuple) else (message,):
        assert part in " ".join(r.stderr.split()), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert set(tmp_path.rglob("*")) == before


def test_scale_refusal_names_a_missing_zr():
    from radarcast.checkpoint import describe_scale
    from radarcast.data.units import Units

    assert describe_scale(Units(0.5, -32.0, None, None)) == "dBZ = 0.5·p − 32, no Z–R"
    assert describe_scale(Units(0.5, 3.25, 200.0, 1.6)) == "dBZ = 0.5·p + 3.25, Z = 200·R^1.6"


def test_watch_mode_partial_corrupt_good_late(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    out.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radarcast",
            "nowcast",
            "--watch",
            inbox,
            "--pattern",
            "*.png",
            "--out-dir",
            out,
            "--out-format",
            "nc",
            "--method",
            "persistence",
            "--leads",
            "2",
            "--time-pattern",
            PATTERN,
            "--crs",
            "EPSG:3035",
            "--bounds",
            "0,0,48000,48000",
            "--settle",
            "1",
            "--poll",
            "0.2",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )

    def wait_for(n: int, timeout: float = 90.0) -> list[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
            if len(names) >= n:
                return names
            time.sleep(0.2)
        return sorted(p.name for p in out.iterdir())

    try:
        (inbox / f"radar_{T0}00.png").write_bytes(png_bytes(0))
        assert wait_for(1) == ["nowcast_20240101T0000Z.nc"]
        data = png_bytes(1)  # a file written slowly: never read while it grows
        with open(inbox / f"radar_{T0}05.png", "wb") as f:
            for i in range(0, len(data), max(1, len(data) // 8)):
                f.write(data[i : i + max(1, len(data) // 8)])
                f.flush()
                time.sleep(0.3)
        (inbox / f"radar_{T0}10.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
        (inbox / f"radar_{T0}15.png").write_bytes(png_bytes(3))
        assert len(wait_for(3)) == 3
        (inbox / "radar_20231231T2355.png").write_bytes(png_bytes(0))  # late
        time.sleep(2.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "nowcast_20240101T0000Z.nc",
        "nowcast_20240101T0005Z.nc",
        "nowcast_20240101T0015Z.nc",
    ], (names, err)
    assert f"radar_{T0}10.png" in err and "cannot read" in err, err
    assert "radar_20231231T2355.png: late" in err, err
    assert "stopped after 3 nowcast(s)" in err, err
    assert "cannot read" not in err.split(f"radar_{T0}05.png")[0]  # partial file waited for


def test_watch_once_for_cron(tmp_path):
    frames(tmp_path / "in")
    (tmp_path / "out").mkdir()
    args = [
        "--watch",
        tmp_path / "in",
        "--pattern",
        "*.png",
        "--out-dir",
        tmp_path / "out",
        "--method",
        "persistence",
        "--time-pattern",
        PATTERN,
        "--once",
        "--settle",
        "0.1",
    ]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["nowcast_20240101T0010Z.h5"]
    r = invoke(*args)  # a second run finds the newest file done
    assert r.exit_code == 0 and "stopped after 0 nowcast(s)" in r.output

