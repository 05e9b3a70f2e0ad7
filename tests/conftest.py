"""Shared fixtures: small synthetic datasets, the real data folder when present, and
``run_cli`` (a command in-process, for tests whose point is not the process itself)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# A suite started in the background (`cmd &` from a script) inherits SIGINT ignored, and so
# does every command it starts: the Ctrl-C tests (in-process and of subprocesses) would
# never see their interrupt. SIGINT as a terminal gives it: Python's handler here, and, as
# Python handlers are not inherited through exec, the default in every child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
SHARED_DATA = REPO.parent / "shared" / "data" / "pysteps-data"


def require_shared(*parts: str) -> Path:
    """The path under ../shared/data/pysteps-data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real radar data not present at {path}")
    return path


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def run_cli(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``radarcast ARGS`` inside this process with typer's CliRunner; the result reads
    like ``subprocess.run(..., capture_output=True, text=True)``'s (returncode, stdout,
    stderr apart).

    It is the same app, option parsing and one-line error handler as ``python -m radarcast``
    without a new interpreter importing torch (1–2 s a run); tests whose point is the process
    itself (signals, exit at start-up, imports, several processes at once) use a subprocess.
    An exception that is not a user error propagates (a traceback is a bug), and the thread
    settings a command applies (``--threads``) are put back afterwards. Not for a failed
    HDF5 write: the CLI ends its process there (``os._exit``, see cli/_app.py).
    """
    import torch  # loaded here, so that a command's thread count cannot become its default
    from typer.testing import CliRunner

    from radarcast.cli import app

    saved_env = {k: os.environ.get(k) for k in THREAD_VARS}
    saved_threads = torch.get_num_threads()
    old_cwd = os.getcwd()
    argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args]
    try:
        if cwd is not None:
            os.chdir(cwd)
        r = CliRunner().invoke(app, argv, catch_exceptions=False)
    finally:
        os.chdir(old_cwd)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        torch.set_num_threads(saved_threads)
    return subprocess.CompletedProcess(["radarcast", *argv], r.exit_code, r.stdout, r.stderr)


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """A 64x64, 60-frame dataset with one moving blob, a time gap at 30 and HKO units."""
    return write_tiny_dataset(tmp_path / "tiny.h5")


def write_tiny_dataset(path: Path) -> Path:
    """The ``tiny_dataset`` fixture's file at ``path`` (for module-scoped fixtures)."""
    from radarcast.data.store import DatasetWriter
    from radarcast.data.units import Units

    yy, xx = np.mgrid[0:64, 0:64]
    t = 1_600_000_000
    with DatasetWriter(path, units=Units(), timestep_s=300, n_in=3, n_out=4, command="test") as w:
        for i in range(60):
            if i == 30:
                t += 3600
            cx, cy = 16 + 0.5 * (i % 30), 24 + 0.25 * (i % 30)
            blob = 200 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 60.0)
            w.append(blob.astype(np.uint8), t)
            t += 300
        w.finish()
    return path


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> Path:
    """examples/smoke.toml run once through the CLI (a subprocess); the study folder."""
    out = tmp_path_factory.mktemp("smoke") / "study"
    r = subprocess.run(
        [sys.executable, "-m", "radarcast", "study", str(REPO / "examples" / "smoke.toml"),
         "-o", str(out), "--threads", "1"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "report:" in r.stdout
    return out
