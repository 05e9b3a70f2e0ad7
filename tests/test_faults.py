"""Environment faults: a read-only or full output folder, an input removed mid-run, and one
dataset read by two commands at once. Each ends in a clear one-line error or in the correct
result, never in a damaged or half-written file.

A real full disk and a real read-only folder are made inside a private mount namespace
(``unshare -m``: a tiny tmpfs, a read-only bind mount) that vanishes with the command; where
that is not allowed (not root) those tests skip, and the mocked failures below still run:
``os.replace`` or the frame compressor raising ENOSPC inside the library.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from radarcast.data.store import DatasetWriter, open_dataset
from radarcast.data.units import Units

REPO = Path(__file__).resolve().parents[1]


def _one_line_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout[-1000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def _write_dataset(path: Path, n: int = 40, size: int = 48) -> Path:
    yy, xx = np.mgrid[0:size, 0:size]
    with DatasetWriter(path, units=Units(), timestep_s=300, n_in=3, n_out=3, command="t") as w:
        for i in range(n):
            blob = 200 * np.exp(-((xx - 10 - 0.5 * i) ** 2 + (yy - 20) ** 2) / 40.0)
            w.append(blob.astype(np.uint8), 1_600_000_000 + 300 * i)
        w.finish((0.5, 0.25, 0.25))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("faults")
    ds = _write_dataset(folder / "d.h5")
    stack = np.random.default_rng(0).integers(0, 256, (40, 48, 48), dtype=np.uint8)
    np.save(folder / "noise.npy", stack)  # incompressible: ~90 KiB of frames
    return {"folder": folder, "dataset": ds, "noise": folder / "noise.npy"}


# --------------------------------------------------------------------------- namespaces
def _namespaces() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    r = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                       capture_output=True)
    return r.returncode == 0


NAMESPACES = _namespaces()
needs_namespaces = pytest.mark.skipif(
    not NAMESPACES, reason="needs root and `unshare -m` to mount a small tmpfs / ro bind"
)


def _in_namespace(mount: str, folder: Path, args: list, cwd: Path):
    """Run the CLI with ``folder`` replaced by a tiny tmpfs ('full') or made read-only
    ('ro') in a private mount namespace; returns (result, names in ``folder`` at exit)."""
    listing = cwd / "listing.txt"
    if mount == "full":
        setup = f"mount -t tmpfs -o size=16k tmpfs {shlex.quote(str(folder))}"
    else:
        q = shlex.quote(str(folder))
        setup = f"mount --bind {q} {q} && mount -o remount,bind,ro {q}"
    cmd = " ".join(shlex.quote(str(a)) for a in [sys.executable, "-m", "radarcast", *args])
    script = (f"{setup} || exit 99\n{cmd}\nrc=$?\n"
              f"ls -A {shlex.quote(str(folder))} > {shlex.quote(str(listing))}\nexit $rc\n")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=cwd, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode != 99, r.stderr
    return r, listing.read_text().split()


def _outputs(kind: str, data: dict, out_dir: Path) -> list:
    ds = data["dataset"]
    return {
        "preprocess": ["preprocess", data["noise"], "-o", out_dir / "o.h5"],
        "forecast": ["forecast", ds, "--split", "all", "-o", out_dir / "f.h5"],
        "evaluate": ["evaluate", ds, "--out", out_dir / "scores"],
        "animate": ["animate", ds, "--window", "0", "-o", out_dir / "a.gif"],
        "train": ["train", ds, "--config", data["folder"] / "tiny.toml", "--steps", "2",
                  "--val-every", "1", "--crop", "16", "--batch-size", "2", "--workers", "0",
                  "--device", "cpu", "--out", out_dir / "run"],
    }[kind]


COMMANDS = ["preprocess", "forecast", "evaluate", "animate", "train"]


@pytest.fixture(scope="module")
def with_toml(data):
    (data["folder"] / "tiny.toml").write_text(
        'preset = "convlstm-1"\nn_in = 2\nn_out = 2\nval_windows = 2\n'
        "\n[model_config]\nhidden = [64]\n"  # ~0.6 MB of checkpoint: more than the disk holds
    )
    return data


@needs_namespaces
@pytest.mark.parametrize("command", COMMANDS)
def test_full_disk(command, with_toml, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r, left = _in_namespace("full", out, _outputs(command, with_toml, out), tmp_path)
    _one_line_error(r)
    assert "No space left" in r.stderr or "space" in r.stderr.lower(), r.stderr
    # nothing half-written under the output name, and no temporary file left behind
    assert [n for n in left if n not in ("run", "scores")] == []


@needs_namespaces
@pytest.mark.parametrize("command", COMMANDS)
def test_read_only_output_folder(command, with_toml, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r, left = _in_namespace("ro", out, _outputs(command, with_toml, out), tmp_path)
    _one_line_error(r, "Read-only")
    assert left == []


# --------------------------------------------------------------------------- mocked faults
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _no_temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


def test_rename_fails_dataset_writer(tmp_path, monkeypatch):
    old = _write_dataset(tmp_path / "d.h5", n=5).read_bytes()
    monkeypatch.setattr(os, "replace", _enospc)
    with pytest.raises(OSError, match="No space"):
        _write_dataset_over(tmp_path / "d.h5")
    assert (tmp_path / "d.h5").read_bytes() == old
    assert _no_temporaries(tmp_path) == []


def _write_dataset_over(path: Path) -> None:
    with DatasetWriter(path, units=Units(), timestep_s=300, overwrite=True, command="t") as w:
        for i in range(8):
            w.append(np.full((16, 16), i, np.uint8), 1000 + 300 * i)
        w.finish()


def test_write_fails_midstream_dataset_writer(tmp_path, monkeypatch):
    """The compressor (where a disk write would fail) raises on the 4th frame."""
    import radarcast.data.store as store

    old = _write_dataset(tmp_path / "d.h5", n=5).read_bytes()
    calls = []
    real = store.compress_chunks

    def failing(*a):
        calls.append(1)
        return _enospc() if len(calls) == 4 else real(*a)

    monkeypatch.setattr(store, "compress_chunks", failing)
    with pytest.raises(OSError, match="No space"):
        _write_dataset_over(tmp_path / "d.h5")
    assert (tmp_path / "d.h5").read_bytes() == old
    assert _no_temporaries(tmp_path) == []


def test_rename_fails_forecast_and_scores(tmp_path, monkeypatch):
    from radarcast.evaluation import evaluate
    from radarcast.forecasters import resolve, write_forecast

    ds = open_dataset(_write_dataset(tmp_path / "d.h5"))
    fc = resolve("persistence", ds)
    scores = evaluate(ds)
    monkeypatch.setattr(os, "replace", _enospc)  # placement with --overwrite
    monkeypatch.setattr(os, "link", _enospc)  # the no-clobber placement (data/schema.place)
    with pytest.raises(OSError, match="No space"):
        write_forecast(ds, fc, tmp_path / "f.h5", split="all")
    with pytest.raises(OSError, match="No space"):
        scores.write(tmp_path / "scores")
    assert not (tmp_path / "f.h5").exists()
    assert list((tmp_path / "scores").iterdir()) == []
    assert _no_temporaries(tmp_path) == []


def test_rename_fails_checkpoint_keeps_the_old_one(tmp_path, monkeypatch):
    import torch

    from radarcast.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "last.pt", step=1)
    monkeypatch.setattr(os, "replace", _enospc)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path / "last.pt", step=2)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 1
    assert _no_temporaries(tmp_path) == []


# --------------------------------------------------------------------------- inputs vanish
def test_input_images_removed_mid_run(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(400):
        Image.fromarray(rng.integers(0, 256, (96, 96), dtype=np.uint8)).save(
            src / f"f{i:04d}.png", compress_level=0
        )
    proc = subprocess.Popen(
        [sys.executable, "-m", "radarcast", "preprocess", str(src), "-o", "d.h5"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".d.h5.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.01)
    for p in sorted(src.iterdir())[200:]:  # the second half disappears while it runs
        p.unlink()
    _, err = proc.communicate(timeout=120)
    r = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    if proc.returncode == 0:  # it was faster than the deletion: then the dataset is whole
        assert open_dataset(tmp_path / "d.h5").n_frames == 400
    else:
        _one_line_error(r, "f0")
        assert not (tmp_path / "d.h5").exists()
    assert _no_temporaries(tmp_path) == []


def _scores(folder: Path) -> dict:
    doc = json.loads((folder / "scores.json").read_text())
    return {k: v for k, v in doc.items() if k not in ("created_at", "created_by", "dataset")}


@pytest.fixture(scope="module")
def rover_scores(data) -> dict:
    """Scores of an undisturbed run of the command below (in-process: only the disturbed
    runs need a process of their own)."""
    folder = data["folder"]
    r = run_cli("evaluate", data["dataset"], "-m", "rover", "--limit", "4", "--out", "ref",
                cwd=folder)
    assert r.returncode == 0, r.stderr
    return _scores(folder / "ref")


def _has_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except OSError:  # the process ended, or a descriptor closed while listing
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see open files")
@pytest.mark.parametrize("action", ["remove", "replace"])
def test_dataset_removed_or_replaced_while_evaluating(data, rover_scores, tmp_path, action):
    """Once evaluate has the dataset open, removing or replacing the file (os.replace, as
    preprocess --overwrite does) does not change its result: it scores the file it opened."""
    ds = tmp_path / "d.h5"
    shutil.copy(data["dataset"], ds)
    args = ["evaluate", ds, "-m", "rover", "--limit", "4", "--out"]
    proc = subprocess.Popen([sys.executable, "-m", "radarcast", *map(str, args), "run"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 300  # a loaded machine can take long to import torch
    while not _has_open(proc.pid, ds) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is not None or _has_open(proc.pid, ds), "evaluate never opened the file"
    # HDF5 stats the file by name just after open(2) returns: let it finish opening first
    time.sleep(0.5)
    if action == "remove":
        ds.unlink()
    else:
        _write_dataset(tmp_path / "next.h5", n=30)
        os.replace(tmp_path / "next.h5", ds)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert _scores(tmp_path / "run") == rover_scores


# --------------------------------------------------------------------------- two readers
def test_evaluate_and_animate_read_one_dataset_at_once(data, tmp_path):
    ds, fc = data["dataset"], tmp_path / "f.h5"
    r = run_cli("forecast", ds, "--split", "all", "-o", fc, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    before = ds.read_bytes()
    args = {
        "evaluate": ["evaluate", ds, "-f", fc, "--split", "all", "--out"],
        "animate": ["animate", ds, "-f", fc, "--window", "3", "-o"],
    }
    outs = {"evaluate": "scores", "animate": "a.gif"}
    alone = {}  # each command on its own (in-process); then four processes at once
    for name in args:
        r = run_cli(*args[name], f"alone_{outs[name]}", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        alone[name] = tmp_path / f"alone_{outs[name]}"
    procs = [  # the two commands as two processes, started together
        subprocess.Popen([sys.executable, "-m", "radarcast", *map(str, args[name]),
                          f"both_{outs[name]}"], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for name in args
    ]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    assert _scores(tmp_path / "both_scores") == _scores(alone["evaluate"])
    assert (tmp_path / "both_a.gif").read_bytes() == alone["animate"].read_bytes()
    assert ds.read_bytes() == before  # readers never touch the dataset
