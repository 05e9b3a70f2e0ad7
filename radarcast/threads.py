"""How many threads a compute command gives torch: the one place that decides it.

torch starts as many intra-op threads as the machine has cores. On a machine that other
processes keep busy, those threads wait for each other at every parallel region while the
scheduler runs somebody else, and a ROVER run that takes 4 s alone took 42 s (measured on a
loaded 2-core machine; 1 thread: 3.8 s, the same forecasts). So by default a command takes
only the cores that are free: those it may run on (``os.sched_getaffinity``) minus the
processes running now, at least 1. ``--threads N`` overrides it; worker processes
that parallelise over windows (several per machine) are given 1.
"""

from __future__ import annotations

import os
import sys
import time

from radarcast.errors import RadarcastError


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; the CPU count where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def machine_load(samples: int = 5, interval_s: float = 0.005) -> float:
    """Processes running or waiting for a core now, not counting this one.

    The median of a few reads of ``procs_running`` in /proc/stat (the instantaneous count;
    the load average lags a minute behind a job that just started); the 1-minute load average
    where /proc is absent, 0.0 where both are."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/stat", "rb") as f:
                line = next(ln for ln in f if ln.startswith(b"procs_running"))
            counts.append(int(line.split()[1]) - 1)
        except (OSError, StopIteration, ValueError, IndexError):
            break
        if i + 1 < samples:
            time.sleep(interval_s)
    if counts:
        return float(max(0, sorted(counts)[len(counts) // 2]))
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def choose_threads(
    requested: int | None = None, cores: int | None = None, load: float | None = None
) -> int:
    """The intra-op thread count: ``requested`` if given, else the free cores.

    Parameters
    ----------
    requested
        ``--threads N`` (≥ 1), or None for automatic.
    cores, load
        Usable cores and the load average; measured when None (for tests).

    Returns
    -------
    round(cores − load), clipped to 1 … cores, when ``requested`` is None.
    """
    if requested is not None:
        if requested < 1:
            raise RadarcastError(f"--threads must be ≥ 1, got {requested}")
        return int(requested)
    cores = usable_cores() if cores is None else cores
    load = machine_load() if load is None else load
    return int(min(cores, max(1, round(cores - load))))


def set_threads(requested: int | None = None) -> int:
    """Choose the thread count and apply it; returns it.

    Sets ``OMP_NUM_THREADS`` (and MKL's, OpenBLAS') so that torch, imported later in this
    process or in a child, starts with that many threads, and calls
    ``torch.set_num_threads`` when torch is already loaded. torch is not imported here.
    """
    n = choose_threads(requested)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
