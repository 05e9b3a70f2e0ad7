"""Archive-scale runs: windows sharded over local worker processes or a Dask cluster.

:func:`open_runner` gives the runner for ``--workers N`` (:mod:`~radarcast.parallel.local`)
or ``--scheduler ADDRESS`` (:mod:`~radarcast.parallel.cluster`), both behind
:class:`~radarcast.parallel.engine.Runner`; :mod:`~radarcast.parallel.forecast` assembles
forecast files from per-shard parts. Results are those of a single process, bit for bit.
docs/scale.md says how to run it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from radarcast.errors import RadarcastError
from radarcast.parallel.engine import Runner, check_choice


@contextmanager
def open_runner(workers: int | None = None, scheduler: str | None = None) -> Iterator[Runner]:
    """A :class:`~radarcast.parallel.engine.Runner` for ``--workers N`` or ``--scheduler
    ADDRESS`` (one of them); closed when the ``with`` block ends."""
    check_choice(workers, scheduler)
    if workers is None and scheduler is None:
        raise RadarcastError("give --workers N or --scheduler ADDRESS")
    if scheduler is not None:
        from radarcast.parallel.cluster import DaskRunner

        runner: Runner = DaskRunner(scheduler)
    else:
        from radarcast.parallel.local import LocalRunner

        runner = LocalRunner(int(workers))
    try:
        yield runner
    finally:
        runner.close()
