"""The watch soak of #21 in the suite (nightly: ~13 min on a loaded 2-core machine): a day
of 288 MeteoSwiss files through one `nowcast --watch` process, every good file nowcast,
flat RSS, SIGTERM ending it cleanly. ``RADARCAST_SOAK_FILES`` shortens it (a trial run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_shared

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.nightly
def test_a_day_of_files_keeps_memory_flat_and_stops_on_sigterm(tmp_path):
    require_shared("radar", "mch", "20150515")
    files = int(os.environ.get("RADARCAST_SOAK_FILES", "288"))
    out = tmp_path / "soak.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "watch_soak.py"), "--files",
                        str(files), "--bad-every", str(max(2, files // 4)), "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=7200)  # fmt: skip
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    res = json.loads(out.read_text())
    assert res["outputs"] == res["expected_outputs"] == files + 1
    assert res["skipped_logged"] == res["bad_files"] > 0
    assert res["stop"]["clean"] and res["stop"]["seconds"] < 10
    if files >= 100:  # flat: well under 1 MiB a file of growth
        assert res["rss_slope_mib_per_100_files"] < 10
