"""Watch mode under faults (#21): a file deleted before it is read, a full disk, and SIGTERM
in the middle of a write.

The watch loop runs in-process (the same app and signal handling as ``radarcast nowcast
--watch``); test_nowcast.py covers partial, corrupt and late files through a subprocess.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from radarcast.cli import app
from tests.test_nowcast import PATTERN, T0, png_bytes

ARGS = ["--pattern", "*.png", "--out-format", "nc", "--method", "persistence", "--leads", "2",
        "--time-pattern", PATTERN, "--crs", "EPSG:3035", "--bounds", "0,0,48000,48000",
        "--settle", "0", "--poll", "0.02"]  # fmt: skip


def _folders(tmp_path: Path, minutes=(0,)) -> tuple[Path, Path]:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    out.mkdir()
    for k, m in enumerate(minutes):
        (inbox / f"radar_{T0}{m:02d}.png").write_bytes(png_bytes(k))
    return inbox, out


def _watch(inbox: Path, out: Path, *extra: str):
    args = ["nowcast", "--watch", str(inbox), "--out-dir", str(out), *ARGS, *extra]
    return CliRunner().invoke(app, args)


def test_file_deleted_before_read_is_skipped(tmp_path, monkeypatch):
    import radarcast.nowcast as live

    inbox, out = _folders(tmp_path)
    real = live.read_latest

    def vanish_then_read(files, n, config):
        Path(files[-1]).unlink()  # gone between the listing and the read
        return real(files, n, config)

    monkeypatch.setattr(live, "read_latest", vanish_then_read)
    r = _watch(inbox, out, "--once")
    assert r.exit_code == 0, r.output
    assert f"radar_{T0}00.png" in r.output and "skipped" in r.output, r.output
    assert "stopped after 0 nowcast(s)" in r.output
    assert list(out.iterdir()) == []


def test_full_disk_leaves_no_file_and_watch_goes_on(tmp_path, monkeypatch):
    import radarcast.export.cf as cf

    inbox, out = _folders(tmp_path)
    real, calls = cf._write_netcdf4, []

    def full_disk(nc, *args):
        calls.append(1)
        if len(calls) == 1:  # half the file written, then the disk is full
            nc.createDimension("partial", 1)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(nc, *args)

    monkeypatch.setattr(cf, "_write_netcdf4", full_disk)

    def later_file():  # after the failed write, the next frame arrives and is written
        deadline = time.monotonic() + 30
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        (inbox / f"radar_{T0}05.png").write_bytes(png_bytes(1))
        while not list(out.glob("nowcast_*.nc")) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    t = threading.Thread(target=later_file)
    t.start()
    r = _watch(inbox, out)
    t.join()
    assert r.exit_code == 0, r.output
    assert "No space left on device" in r.output and "skipped" in r.output, r.output
    assert sorted(p.name for p in out.iterdir()) == ["nowcast_20240101T0005Z.nc"]
    assert "stopped after 1 nowcast(s)" in r.output


def test_sigterm_during_a_write_finishes_it_then_exits(tmp_path, monkeypatch):
    import netCDF4

    import radarcast.export.cf as cf

    inbox, out = _folders(tmp_path)
    real = cf._write_netcdf4

    def interrupted(nc, *args):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives with the file half written
        time.sleep(0.05)
        return real(nc, *args)

    monkeypatch.setattr(cf, "_write_netcdf4", interrupted)
    t0 = time.monotonic()
    r = _watch(inbox, out)  # no --once: only the signal ends it
    assert r.exit_code == 0, r.output
    assert time.monotonic() - t0 < 30
    assert "stopped after 1 nowcast(s)" in r.output, r.output
    names = [p.name for p in out.iterdir()]
    assert names == ["nowcast_20240101T0000Z.nc"]  # no temporary left beside it
    with netCDF4.Dataset(out / names[0]) as nc:
        assert nc["precip_intensity"].shape == (1, 2, 48, 48)


def test_a_failed_write_is_logged_with_the_users_output_name(tmp_path):
    """The skip line names the output a nowcast was going to, not the writer's hidden
    temporary (`.NAME.PID.tmp`) that the OSError carries."""
    import threading

    from radarcast.nowcast.watch import WatchConfig, watch

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    (folder / "a.png").write_bytes(b"x")

    def make(files, out_dir):
        raise OSError(30, "Read-only file system", str(out_dir / ".n.nc.4242.tmp"))

    lines = []
    cfg = WatchConfig(folder, "*", out, ".nc", settle_s=0.0, poll_s=0.01, once=True)
    watch(cfg, make, lambda name: None, lambda kind, msg: lines.append((kind, msg)),
          threading.Event())  # fmt: skip
    skips = [m for k, m in lines if k == "skip"]
    assert skips == [f"a.png: {out / 'n.nc'}: Read-only file system; skipped"], lines
