"""SIGTERM always stops watch mode (#21): the signal may land at any bytecode of the loop's
wait, and the handler must never block there.

Before the fix the handler called ``threading.Event.set``, which takes the event's lock;
a signal arriving while the main thread was inside ``Event.wait`` (holding that lock)
deadlocked the process, and it then ignored every later SIGTERM (the session-5 soak hung
under ``timeout``). The check runs in a subprocess so that a deadlock fails the test
instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOOP = textwrap.dedent(
    """
    import os, signal, threading
    from radarcast.nowcast.watch import Stopper

    for i in range(int(os.environ["TRIALS"])):
        with Stopper() as s:
            t = threading.Timer(0.0005 * (i % 5), os.kill, (os.getpid(), signal.SIGTERM))
            t.start()
            while not s.event.is_set():
                s.event.wait(0)  # the watch loop's sleep, as often as possible
            t.join()
    print("all stopped")
    """
)


def test_sigterm_during_the_wait_never_deadlocks():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRIALS": "600"}
    try:
        r = subprocess.run(
            [sys.executable, "-c", LOOP], env=env, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("a SIGTERM during the watch's wait hung the process") from None
    assert r.returncode == 0, r.stderr[-2000:]
    assert "all stopped" in r.stdout


def test_stop_flag_wakes_a_long_wait():
    import threading
    import time

    from radarcast.nowcast.watch import StopFlag

    flag = StopFlag()
    threading.Timer(0.05, flag.set).start()
    t0 = time.monotonic()
    assert flag.wait(30) is True
    assert time.monotonic() - t0 < 10
    flag.close()
