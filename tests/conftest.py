"""Shared fixtures: small synthetic datasets and the real data folder when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "pysteps-data"


def require_shared(*parts: str) -> Path:
    """The path under ../shared/data/pysteps-data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real radar data not present at {path}")
    return path


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """A 64x64, 60-frame dataset with one moving blob, a time gap at 30 and HKO units."""
    from radarcast.data.store import DatasetWriter
    from radarcast.data.units import Units

    path = tmp_path / "tiny.h5"
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
    import os
    import subprocess
    import sys

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
