"""Run independent shards of work in local worker processes or on a Dask cluster.

A *shard* is a small picklable task (a dataclass naming a dataset path and a range of window
starts); a *shard function* is a module-level function that does the work in the worker and
returns a small result (a part file's path, an accumulator). Nothing heavy goes through the
scheduler: each worker opens the dataset itself by path.

Two backends behind one :class:`Runner` (this module holds what both share: the runner's
interface, what a worker runs around a shard, progress and sharding;
:func:`radarcast.parallel.open_runner` picks one):

- ``workers=N`` (:mod:`~radarcast.parallel.local`): N processes on this machine
  (``concurrent.futures`` with the forkserver or spawn start method; no Dask needed). A
  worker that dies (killed, out of memory) breaks the pool; the shards it had not finished
  are resubmitted once to a fresh pool.
- ``scheduler='tcp://HOST:PORT'`` (:mod:`~radarcast.parallel.cluster`): the workers of a
  running ``dask.distributed`` cluster (``radarcast[dask]``). The scheduler itself
  reschedules the shards of a lost worker.

Each worker runs torch with one intra-op thread: parallelism comes from the processes.
Results come back in shard order whatever order the shards finish in, so a merge by
addition or concatenation is the same as one process working through the shards in turn.

A shard function may call :func:`report` after each batch: the parent's progress then
moves batch by batch over all shards (local workers send it through a queue, Dask workers
as events through the scheduler).
Every runner counts, per worker, the shards it ran and their CPU seconds
(:attr:`Runner.stats`, and in :attr:`Runner.where` once shards have run).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from radarcast.errors import RadarcastError

Progress = Callable[[int, int], None]
CONNECT_TIMEOUT_S = 5
LOCAL_RETRIES = 1  # a shard whose worker died is resubmitted this many times
SHARDS_PER_SLOT = 4  # more shards than workers: finer progress, slow shards even out
# imported once by the fork server, so that each worker starts as a fork with them loaded
# (measured: 2 workers ready in 3.6-4.2 s instead of 8.3-10.8 s on the loaded 2-core
# machine); importing torch starts no thread pool, and each worker sets 1 thread after
PRELOAD = ["numpy", "h5py", "torch", "radarcast.forecasters", "radarcast.parallel.forecast"]
_ADDRESS = re.compile(r"^(?:(tcp|tls|inproc|ucx|ws|wss)://)?[^\s:/]+(?::\d+)?$")
POLL_S = 0.25  # how often the parent reads the workers' per-batch progress

_channel = None  # in a local worker: the queue its per-batch progress goes to
_shard: int | None = None  # in a worker: the index of the shard it runs now
_topic: str | None = None  # on a Dask worker: the tag of the run its progress events are for
PROGRESS_TOPIC = "radarcast-progress"  # one topic: the scheduler keeps a bounded log per topic


def report(done: int) -> None:
    """Called by a shard function in a worker: ``done`` items of the current shard are
    finished; goes to the parent's progress (a no-op outside a shard)."""
    if _shard is None:
        return
    if _channel is not None:
        _channel.put((_shard, int(done)))
    elif _topic is not None:
        try:
            from distributed import get_worker

            get_worker().log_event(PROGRESS_TOPIC, [_topic, _shard, int(done)])
        except Exception:  # noqa: BLE001 - progress is a courtesy, never fails a shard
            pass


def shard_progress(done: int, total: int) -> None:
    """A ``progress(done, total)`` callback for library code run inside a shard."""
    report(done)


def limit_threads() -> None:
    """One intra-op thread in this process (a worker: the processes are the parallelism)."""
    try:
        from radarcast.threads import set_threads  # the project's one thread-count switch
    except ImportError:  # before that module exists
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = "1"
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(1)
    else:
        set_threads(1)


def check_choice(workers: int | None, scheduler: str | None) -> None:
    """Refuse a bad ``--workers``/``--scheduler`` by name before anything starts."""
    if workers is not None and scheduler is not None:
        raise RadarcastError("give --workers or --scheduler, not both")
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise RadarcastError(f"--workers must be ≥ 1, got {workers}")
    if scheduler is not None and not _ADDRESS.match(scheduler):
        raise RadarcastError(
            f"--scheduler must be a Dask scheduler address such as tcp://HOST:8786, "
            f"got {scheduler!r}"
        )


def shard_ranges(n_items: int, n_shards: int, unit: int = 1) -> list[tuple[int, int]]:
    """Split ``range(n_items)`` into at most ``n_shards`` contiguous (start, stop) ranges of
    whole ``unit``-sized blocks (a shard never splits a batch), as even as possible."""
    if n_items <= 0:
        return []
    blocks = -(-n_items // unit)
    n = max(1, min(n_shards, blocks))
    edges = [(blocks * k // n) * unit for k in range(n + 1)]
    return [(a, min(b, n_items)) for a, b in zip(edges, edges[1:], strict=False) if a < b]


# --------------------------------------------------------------------------- runner
class Runner:
    """Where shards run; made by :func:`open_runner`, closed by leaving its ``with``."""

    slots: int  # shards that run at the same time
    place: str  # '2 local worker processes', 'the Dask cluster at …'
    # per worker ('host:pid'): [shards run, their CPU seconds], over every map/imap so far
    stats: dict[str, list]
    startup_s: float = 0.0  # seconds spent starting local worker pools (0 on Dask)

    @property
    def where(self) -> str:
        """One line for messages: the place, and how the shards spread over the workers
        once some have run (a worker that ran none is not seen)."""
        if not getattr(self, "stats", None):
            return self.place
        rows = sorted(self.stats.values(), key=lambda r: -r[0])
        shards = "/".join(str(r[0]) for r in rows)
        cpu = "/".join(f"{r[1]:.1f}" for r in rows)
        ready = f"ready in {self.startup_s:.1f} s, " if self.startup_s else ""
        return f"{self.place} ({ready}shards per worker {shards}, CPU s {cpu})"

    def _count(self, stat: dict) -> None:
        row = self.stats.setdefault(stat["worker"], [0, 0.0])
        row[0] += 1
        row[1] += stat["cpu_s"]

    def shards(self, n_items: int, unit: int = 1) -> list[tuple[int, int]]:
        """Ranges of ``n_items`` for this runner: a few shards per slot, whole units."""
        return shard_ranges(n_items, self.slots * SHARDS_PER_SLOT, unit)

    def check_paths(self, readable: Sequence = (), writable: Sequence = ()) -> None:
        """RadarcastError unless every worker sees ``readable`` files and can write into the
        ``writable`` folders."""

    def map(self, fn: Callable, tasks: Sequence, sizes: Sequence[int] | None = None,
            progress: Progress | None = None) -> list:
        """``[fn(t) for t in tasks]`` on the workers; ``progress(done, total)`` counts
        ``sizes`` (1 per task by default) as shards finish."""
        raise NotImplementedError

    def imap(self, fn: Callable, tasks: Sequence, ahead: int | None = None) -> Iterator:
        """``fn(t)`` for each task, yielded in task order as they come, with at most
        ``ahead`` tasks (2 per slot by default) submitted beyond the one awaited: a stream
        whose memory stays bounded (decoded frames on their way to one writer)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


_malloc_tuned = False


def tune_malloc() -> None:
    """Undo, once per process, a small ``MALLOC_TRIM_THRESHOLD_`` (Dask's nanny starts its
    workers with 65536, to give memory back to the OS). In glibc that setting also pins the
    mmap threshold at 128 KiB, so every array ROVER allocates is a fresh mmap whose pages
    fault in again: a 3-window ROVER shard of the 640x710 grid took 3.8 CPU s instead of
    1.3 (1.06 million minor faults instead of 91 thousand; measured on the 2-core machine).
    Large arrays then come from the heap again (mmap above 32 MiB) and up to 64 MiB of
    freed memory is kept for reuse. Nothing happens elsewhere (no variable, not glibc)."""
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    raw = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if raw is None or not sys.platform.startswith("linux"):
        return
    try:
        if int(raw) >= 64 << 20:
            return
    except ValueError:
        pass
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt  # this process' C library
    except (OSError, AttributeError):
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
    mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD


def _call(fn: Callable, task, index: int | None = None, topic: str | None = None):
    """What a worker runs: one thread, then the shard function; returns its result and
    who ran it at what CPU cost. ``topic``: the tag of a Dask run's progress events."""
    global _shard, _topic
    limit_threads()
    tune_malloc()
    _shard, _topic, t0 = index, topic, time.process_time()
    try:
        result = fn(task)
    finally:
        _shard = _topic = None
    stat = {"worker": f"{socket.gethostname()}:{os.getpid()}",
            "cpu_s": time.process_time() - t0}
    return result, stat


def _worker_init(parent: int, channel=None) -> None:
    global _channel
    _channel = channel
    limit_threads()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int, every_s: float = 0.5) -> None:
    """End this worker once the command that started it is gone (killed outright): a pool
    worker waits on a queue it holds both ends of, so it would never notice by itself."""
    while True:
        time.sleep(every_s)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass


class _Tally:
    """Items done over all shards: a shard counts what its worker reported of it, all of
    it once finished; never less than before (a retried shard reports from 0 again)."""

    def __init__(self, sizes: Sequence[int], progress: Progress | None) -> None:
        self.sizes, self.progress = list(sizes), progress
        self.part = [0] * len(self.sizes)
        self.total = sum(self.sizes)
        self.done = 0

    def partial(self, i: int, done: int) -> None:
        if done > self.part[i]:
            self.part[i] = min(done, self.sizes[i])
            self._show()

    def finished(self, i: int) -> None:
        self.part[i] = self.sizes[i]
        self._show()

    def _show(self) -> None:
        done = sum(self.part)
        if done > self.done:
            self.done = done
            if self.progress is not None:
                self.progress(self.done, self.total)
