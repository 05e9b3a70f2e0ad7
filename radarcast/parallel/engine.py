"""Run independent shards of work in local worker processes or on a Dask cluster.

A *shard* is a small picklable task (a dataclass naming a dataset path and a range of window
starts); a *shard function* is a module-level function that does the work in the worker and
returns a small result (a part file's path, an accumulator). Nothing heavy goes through the
scheduler: each worker opens the dataset itself by path.

Two backends behind one :class:`Runner`:

- ``workers=N``: N processes on this machine (``concurrent.futures`` with the forkserver or
  spawn start method; no Dask needed). A worker that dies (killed, out of memory) breaks the
  pool; the shards it had not finished are resubmitted once to a fresh pool.
- ``scheduler='tcp://HOST:PORT'``: the workers of a running ``dask.distributed`` cluster
  (``radarcast[dask]``). The scheduler itself reschedules the shards of a lost worker.

Each worker runs torch with one intra-op thread: parallelism comes from the processes.
Results come back in shard order whatever order the shards finish in, so a merge by
addition or concatenation is the same as one process working through the shards in turn.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

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
    where: str  # one line for messages: '2 local processes', 'the Dask cluster at …'

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


def _call(fn: Callable, task):
    """What a worker runs: one thread, then the shard function."""
    limit_threads()
    return fn(task)


def _worker_init(parent: int) -> None:
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
    def __init__(self, sizes: Sequence[int], progress: Progress | None) -> None:
        self.sizes, self.progress, self.done = list(sizes), progress, 0
        self.total = sum(self.sizes)

    def finished(self, i: int) -> None:
        self.done += self.sizes[i]
        if self.progress is not None:
            self.progress(self.done, self.total)


class LocalRunner(Runner):
    """``workers`` processes on this machine."""

    def __init__(self, workers: int) -> None:
        self.slots = int(workers)
        self.where = f"{workers} local worker process{'es' if workers > 1 else ''}"
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        import multiprocessing as mp

        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)  # imported once, each worker is a fork
        else:
            ctx = mp.get_context("spawn")
        return ProcessPoolExecutor(
            self.slots, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)
        )

    def map(self, fn, tasks, sizes=None, progress=None) -> list:
        tally = _Tally(sizes or [1] * len(tasks), progress)
        results: dict[int, object] = {}
        lost = dict.fromkeys(range(len(tasks)), 0)
        while len(results) < len(tasks):
            self._pool = self._new_pool()
            todo = [i for i in range(len(tasks)) if i not in results]
            futures = {self._pool.submit(_call, fn, tasks[i]): i for i in todo}
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
                        window[j] = self._pool.submit(_call, fn, tasks[j])
                while True:
                    try:
                        result = window[i].result()
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
                        window = {j: self._pool.submit(_call, fn, tasks[j]) for j in window}
                del window[i]
                yield result
        finally:
            self._stop()

    @staticmethod
    def _collect(futures: dict[Future, int], results: dict, tally: _Tally) -> list[int]:
        """Wait for ``futures``; returns the shards lost with a dead worker."""
        pending, broken = set(futures), []
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                try:
                    results[futures[f]] = f.result()
                except BrokenProcessPool:
                    broken.append(futures[f])
                    continue
                tally.finished(futures[f])
        return sorted(broken)

    def _stop(self) -> None:
        """Shut the pool down now: queued shards are cancelled, running workers ended."""
        pool, self._pool = self._pool, None
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


class DaskRunner(Runner):
    """The workers of a running ``dask.distributed`` scheduler."""

    def __init__(self, address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        try:
            import dask
            from distributed import Client
        except ImportError:
            raise RadarcastError(
                "--scheduler needs Dask: pip install 'radarcast[dask]' (or use --workers N)"
            ) from None
        self.address = address if "://" in address else f"tcp://{address}"
        _probe(self.address, timeout_s)
        try:
            with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout_s}s"}):
                self.client = Client(self.address, timeout=f"{timeout_s}s", set_as_default=False)
        except Exception as e:  # noqa: BLE001 - whatever answered there, it is no scheduler
            raise RadarcastError(
                f"no Dask scheduler answered at {self.address} within {timeout_s:g} s "
                f"({_reason(e)})"
            ) from None
        nthreads = self.client.nthreads()
        if not nthreads:
            self.client.close()
            raise RadarcastError(f"the Dask scheduler at {self.address} has no workers")
        self.slots = sum(nthreads.values())
        self.where = f"the Dask cluster at {self.address} ({len(nthreads)} workers)"

    def check_paths(self, readable=(), writable=()) -> None:
        readable = [str(Path(p).resolve()) for p in readable]
        writable = [str(Path(p).resolve()) for p in writable]
        seen = self.client.run(_missing_paths, readable, writable)
        for worker, missing in sorted(seen.items()):
            if missing:
                raise RadarcastError(
                    f"{missing[0]} is not visible to Dask worker {worker} "
                    f"(host {_host(worker)}): give a path on a file system every worker shares"
                )

    def map(self, fn, tasks, sizes=None, progress=None) -> list:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        tally = _Tally(sizes or [1] * len(tasks), progress)
        tag = f"radarcast-{fn.__name__}-{uuid.uuid4().hex[:8]}"
        futures = [
            self.client.submit(_call, fn, t, key=f"{tag}-{i}", pure=False)
            for i, t in enumerate(tasks)
        ]
        index = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, object] = {}
        try:
            for f in as_completed(futures, loop=self.client.loop):
                i = index[f.key]
                try:
                    results[i] = f.result()
                except KilledWorker:
                    raise RadarcastError(
                        f"shard {i + 1} of {len(tasks)} was lost with every Dask worker that "
                        "tried it (killed, or out of memory?); nothing was written"
                    ) from None
                tally.finished(i)
        finally:
            self.client.cancel([f for f in futures if not f.done()])
        return [results[i] for i in range(len(tasks))]

    def imap(self, fn, tasks, ahead=None) -> Iterator:
        from distributed.scheduler import KilledWorker

        ahead = ahead or 2 * self.slots
        tag = f"radarcast-{fn.__name__}-{uuid.uuid4().hex[:8]}"
        window: dict = {}
        try:
            for i in range(len(tasks)):
                for j in range(i, min(len(tasks), i + ahead + 1)):
                    if j not in window:
                        window[j] = self.client.submit(
                            _call, fn, tasks[j], key=f"{tag}-{j}", pure=False
                        )
                try:
                    result = window.pop(i).result()
                except KilledWorker:
                    raise RadarcastError(
                        f"shard {i + 1} of {len(tasks)} was lost with every Dask worker that "
                        "tried it (killed, or out of memory?); nothing was written"
                    ) from None
                yield result
        finally:
            self.client.cancel(list(window.values()))

    def close(self) -> None:
        self.client.close()


def _probe(address: str, timeout_s: float) -> None:
    """Fail fast, in radarcast's words, when nothing listens at a tcp:// address."""
    m = re.match(r"^tcp://\[?([^\]]+?)\]?:(\d+)$", address)
    if m is None:
        return  # no port given, or another protocol: the client's own timeout applies
    try:
        socket.create_connection((m[1], int(m[2])), timeout=timeout_s).close()
    except OSError as e:
        raise RadarcastError(
            f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s "
            f"({_reason(e)}); is it running, and is the address right?"
        ) from None


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:120] or type(e).__name__) if not isinstance(e, MemoryError) else "bad reply"


def _missing_paths(readable: list[str], writable: list[str]) -> list[str]:
    """Run on each worker: the paths it cannot read, or folders it cannot write into."""
    gone = [p for p in readable if not os.access(p, os.R_OK)]
    return gone + [p for p in writable if not (os.path.isdir(p) and os.access(p, os.W_OK))]


def _host(worker_address: str) -> str:
    return worker_address.split("://")[-1].rsplit(":", 1)[0] or socket.gethostname()


@contextmanager
def open_runner(workers: int | None = None, scheduler: str | None = None) -> Iterator[Runner]:
    """A :class:`Runner` for ``--workers N`` or ``--scheduler ADDRESS`` (one of them)."""
    check_choice(workers, scheduler)
    if workers is None and scheduler is None:
        raise RadarcastError("give --workers N or --scheduler ADDRESS")
    runner = DaskRunner(scheduler) if scheduler is not None else LocalRunner(int(workers))
    try:
        yield runner
    finally:
        runner.close()
