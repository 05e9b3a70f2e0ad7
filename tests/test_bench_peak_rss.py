"""The OPERA memory benchmark's peak RSS is the streaming child's own, not its parent's.

bench/ensemble_speed.py streams 20 OPERA members in a child process after the MeteoSwiss and
FMI comparisons; its child used to report ``ru_maxrss``, which on Linux carries the parent's
RSS at fork across exec: the 13.07 GiB it recorded was the parent's peak (session 6, #18).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_child_peak_is_its_own_not_the_parents():
    sys.path.insert(0, str(BENCH))
    try:
        from ensemble_speed import OPERA_CHILD, PEAK_KIB
    finally:
        sys.path.remove(str(BENCH))
    assert OPERA_CHILD.startswith(PEAK_KIB)  # the benchmark's child measures with it
    ballast = np.ones(64 * 2**20 // 8 * 8)  # 512 MiB touched in this (the parent) process
    child = PEAK_KIB + "print(peak_kib())\nimport numpy\nx = numpy.ones(2**25)\nprint(peak_kib())"
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    before, after = (int(v) / 2**10 for v in out)  # MiB
    assert ballast.sum() > 0
    assert before < 200, f"child reports {before:.0f} MiB before allocating: the parent's?"
    assert after - before > 200  # and it sees its own 256 MiB array
