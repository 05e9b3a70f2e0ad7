"""pysteps' nowcast methods wrapped as radarcast nowcasts: shapes, units, refusals."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pysteps")
pytest.importorskip("cv2")
from radarcast.baselines.pysteps_methods import check_kind, nowcast  # noqa: E402
from radarcast.data.units import Units  # noqa: E402
from radarcast.errors import RadarcastError  # noqa: E402


def _blob_frames(n=3, size=64, step=2.0):
    yy, xx = np.mgrid[0:size, 0:size]
    return np.stack([
        200 * np.exp(-((xx - 20 - step * i) ** 2 + (yy - 30) ** 2) / 60.0) for i in range(n)
    ]).astype(np.float32)  # fmt: skip


@pytest.mark.parametrize("kind", ["extrapolation", "sprog", "anvil"])
def test_deterministic_pysteps_methods_move_the_blob_east(kind):
    x = _blob_frames()
    out = nowcast(kind, x, 3, Units())
    assert out.shape == (3, 64, 64) and out.dtype == np.float32
    col = np.nanargmax(np.nanmax(np.nan_to_num(out[-1]), axis=0))
    assert col > np.argmax(x[-1].max(axis=0))  # east of the last input's peak


def test_steps_gives_members():
    out = nowcast("steps", _blob_frames(), 2, Units(), members=3, seed=1)
    assert out.shape == (3, 2, 64, 64)
    assert np.nanmax(out) <= 255 and np.nanmin(out) >= 0


def test_unknown_kind_and_missing_zr_are_refused():
    with pytest.raises(RadarcastError, match="choose one of: pysteps:extrapolation"):
        check_kind("lk")
    with pytest.raises(RadarcastError, match="Z-R"):
        nowcast("extrapolation", _blob_frames(), 2, Units(zr_a=None, zr_b=None))


def test_pysteps_prints_nothing_on_radarcasts_stdout(tiny_dataset, tmp_path):
    """pysteps prints its config path on import and STEPS its settings and progress for
    every window; a radarcast command's stdout holds only its own summary."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "radarcast", "forecast", str(tiny_dataset),
                        "--method", "pysteps:steps", "--members", "2", "--limit", "1",
                        "--split", "all", "-o", str(tmp_path / "s.h5")],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Pysteps" not in r.stdout and "nowcast" not in r.stdout.lower().replace(
        "pysteps:steps", ""), r.stdout
    assert len(r.stdout.strip().splitlines()) <= 3, r.stdout
