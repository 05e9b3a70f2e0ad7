"""Shards in ``workers`` processes on this machine (``--workers N``): a
``concurrent.futures`` pool with the forkserver start method (spawn where there is none),
whose workers start with :data:`~radarcast.parallel.engine.PRELOAD` imported. A worker that
dies breaks the pool; the shards it had not finished go to a fresh pool, at most
:data:`~radarcast.parallel.engine.LOCAL_RETRIES` times each."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from radarcast.errors import RadarcastError
from radarcast.parallel.engine import (
    LOCAL_RETRIES,
    POLL_S,
    PRELOAD,
    Runner,
    _call,
    _Tally,
    _worker_init,
    limit_threads,
)


class LocalRunner(Runner):
    """``workers`` processes on this machine."""

    def __init__(self, workers: int) -> None:
        self.slots = int(workers)
        self.place = f"{workers} local worker process{'es' if workers > 1 else ''}"
        self.stats = {}
        self._pool: ProcessPoolExecutor | None = None
        self._channel = None

    def _new_pool(self) -> ProcessPoolExecutor:
        import multiprocessing as mp

        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)  # imported once, each worker is a fork
        else:
            ctx = mp.get_context("spawn")
        # a fresh queue with each pool: a worker killed while writing to the old one may
        # have left it locked
        t0 = time.perf_counter()
        self._channel = ctx.Queue()
        pool = ProcessPoolExecutor(
            self.slots, mp_context=ctx, initializer=_worker_init,
            initargs=(os.getpid(), self._channel),
        )
        # start every worker now (3.11 starts a forkserver worker per submit, and an early
        # one would take the first shards while the others start)
        for f in [pool.submit(limit_threads) for _ in range(self.slots)]:
            f.result()
        self.startup_s += time.perf_counter() - t0
        return pool

    def _drain(self, tally: _Tally) -> None:
        """Pass on the per-batch progress the workers reported so far."""
        import queue

        while self._channel is not None:
            try:
                i, done = self._channel.get_nowait()
            except (queue.Empty, OSError, EOFError, ValueError):
                return
            tally.partial(i, done)

    def map(self, fn, tasks, sizes=None, progress=None) -> list:
        tally = _Tally(sizes or [1] * len(tasks), progress)
        results: dict[int, object] = {}
        lost = dict.fromkeys(range(len(tasks)), 0)
        while len(results) < len(tasks):
            self._pool = self._new_pool()
            todo = [i for i in range(len(tasks)) if i not in results]
            futures = {self._pool.submit(_call, fn, tasks[i], i): i for i in todo}
            try:
                broken = self._collect(futures, results, tally)
            except BaseException:
                self._stop()
                raise
            self._stop()
            for i in broken:
                lost[i] += 1
                if lost[i] > LOCAL_RETRIES:
                    raise RadarcastError(
                        f"a worker process died twice while running shard {i + 1} of "
                        f"{len(tasks)} (killed, or out of memory?); nothing was written"
                    )
        return [results[i] for i in range(len(tasks))]

    def imap(self, fn, tasks, ahead=None) -> Iterator:
        ahead = ahead or 2 * self.slots
        lost: dict[int, int] = {}
        window: dict[int, Future] = {}
        self._pool = self._new_pool()
        try:
            for i in range(len(tasks)):
                for j in range(i, min(len(tasks), i + ahead + 1)):
                    if j not in window:
                        window[j] = self._pool.submit(_call, fn, tasks[j], j)
                while True:
                    try:
                        result, stat = window[i].result()
                        break
                    except BrokenProcessPool:
                        lost[i] = lost.get(i, 0) + 1
                        if lost[i] > LOCAL_RETRIES:
                            raise RadarcastError(
                                f"a worker process died twice while running shard {i + 1} of "
                                f"{len(tasks)} (killed, or out of memory?); nothing was written"
                            ) from None
                        self._stop()
                        self._pool = self._new_pool()
                        window = {j: self._pool.submit(_call, fn, tasks[j], j) for j in window}
                del window[i]
                self._count(stat)
                yield result
        finally:
            self._stop()

    def _collect(self, futures: dict[Future, int], results: dict, tally: _Tally) -> list[int]:
        """Wait for ``futures``, passing on per-batch progress; returns the shards lost
        with a dead worker."""
        pending, broken = set(futures), []
        while pending:
            done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            self._drain(tally)
            for f in done:
                try:
                    results[futures[f]], stat = f.result()
                except BrokenProcessPool:
                    broken.append(futures[f])
                    continue
                self._count(stat)
                tally.finished(futures[f])
        return sorted(broken)

    def _stop(self) -> None:
        """Shut the pool down now: queued shards are cancelled, running workers ended."""
        pool, self._pool = self._pool, None
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
            channel.cancel_join_thread()
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())  # no public handle on 3.11
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(5)

    def close(self) -> None:
        self._stop()
