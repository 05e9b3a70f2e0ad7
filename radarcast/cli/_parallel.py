"""The --workers / --scheduler options every sharded command shares, and its lazy bar."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Annotated

import typer

from radarcast.cli._app import progress

WorkersOpt = Annotated[
    int | None,
    typer.Option(help="Shard the windows over N local worker processes (one thread each)."),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        help="Shard the windows over a running Dask cluster: its scheduler, tcp://HOST:PORT."
    ),
]


def sharded(workers: int | None, scheduler: str | None) -> bool:
    """Whether the run goes to worker processes; a bad choice is refused by name now."""
    from radarcast.parallel.engine import check_choice

    check_choice(workers, scheduler)
    return workers is not None or scheduler is not None


def lazy_bar(stack: ExitStack, description: str) -> Callable[[int, int], None]:
    """A progress callback whose bar opens at the first call, after every input check."""
    bar: list = []

    def on_step(done: int, total: int) -> None:
        if not bar:
            bar.append(stack.enter_context(progress(description, transient=True)))
        bar[0](done, total)

    return on_step
