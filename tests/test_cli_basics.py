"""The command line starts light, reports its version and runs as ``python -m radarcast``."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

from radarcast import __version__

PROBE = """
import sys
from radarcast.cli import app
try:
    app(["{cmd}", "--help"] if "{cmd}" else ["--help"], prog_name="radarcast")
except SystemExit:
    pass
heavy = [m for m in ("torch", "h5py", "skimage", "matplotlib") if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
"""


def _probe(cmd: str = "") -> str:
    r = subprocess.run(
        [sys.executable, "-c", PROBE.format(cmd=cmd)], capture_output=True, text=True, cwd=REPO
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.rsplit("HEAVY:", 1)[1].strip()


def test_help_does_not_import_torch():
    assert "torch" not in _probe()


def test_data_command_help_imports_nothing_heavy():
    for cmd in ("synth", "preprocess", "info"):
        assert _probe(cmd) == "", cmd


def test_version():
    r = subprocess.run(
        [sys.executable, "-m", "radarcast", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0
    assert __version__ in r.stdout


def test_python_m_radarcast_lists_commands():
    r = subprocess.run(
        [sys.executable, "-m", "radarcast", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0
    for cmd in ("synth", "preprocess", "info"):
        assert cmd in r.stdout


def test_preprocess_help_names_every_reader():
    from radarcast.data.readers import READERS

    r = subprocess.run(
        [sys.executable, "-m", "radarcast", "preprocess", "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert r.returncode == 0
    for name in READERS:
        assert name in r.stdout
