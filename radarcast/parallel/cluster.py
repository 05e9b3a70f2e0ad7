"""Shards on the workers of a running ``dask.distributed`` scheduler (``--scheduler
ADDRESS``, the ``radarcast[dask]`` extra). The scheduler reschedules the shards of a lost
worker; a shard lost with every worker that tried it ends the command in one line. Before
anything runs, every worker must run this radarcast (:func:`code_identity`) and see the
paths the shards read and write."""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from radarcast.errors import RadarcastError
from radarcast.parallel.engine import (
    CONNECT_TIMEOUT_S,
    POLL_S,
    PROGRESS_TOPIC,
    Runner,
    _call,
    _Tally,
)


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
        self.place = f"the Dask cluster at {self.address} ({len(nthreads)} workers)"
        self.stats = {}
        self._check_same_code()

    def _check_same_code(self) -> None:
        """RadarcastError unless every worker runs this radarcast (its version and the
        code of radarcast.parallel): otherwise shards fail with a Python error, or worse."""
        mine = code_identity()
        try:
            theirs = self.client.run(code_identity)
        except Exception as e:  # noqa: BLE001 - a worker that cannot even unpickle it
            self.client.close()
            raise RadarcastError(
                f"the Dask workers at {self.address} cannot run this radarcast's code "
                f"({_reason(e)}): install radarcast {mine[0]} where they run"
            ) from None
        for worker, ident in sorted(theirs.items()):
            if tuple(ident[:2]) != mine[:2]:
                self.client.close()
                raise RadarcastError(
                    f"Dask worker {worker} runs radarcast {ident[0]} ({ident[2]}), this "
                    f"command radarcast {mine[0]} ({mine[2]}) with other code: install the "
                    "same radarcast where the workers run"
                )

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
        heard: list = []  # (shard, done) events of this run, appended by the client's loop

        def on_event(event) -> None:
            run, shard, done = event[1]
            if run == tag:  # other commands may share the cluster, and the topic
                heard.append((shard, done))

        self.client.subscribe_topic(PROGRESS_TOPIC, on_event)
        futures = [
            self.client.submit(_call, fn, t, i, tag, key=f"{tag}-{i}", pure=False)
            for i, t in enumerate(tasks)
        ]
        index = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, object] = {}
        ready = as_completed(futures, loop=self.client.loop)
        try:
            while len(results) < len(tasks):
                batch = ready.next_batch(block=False)
                while heard:  # the progress bar is moved from this thread only
                    tally.partial(*heard.pop(0))
                if not batch:
                    time.sleep(POLL_S)
                for f in batch:
                    i = index[f.key]
                    try:
                        results[i], stat = f.result()
                    except KilledWorker:
                        raise RadarcastError(
                            f"shard {i + 1} of {len(tasks)} was lost with every Dask worker "
                            "that tried it (killed, or out of memory?); nothing was written"
                        ) from None
                    self._count(stat)
                    tally.finished(i)
        finally:
            self.client.unsubscribe_topic(PROGRESS_TOPIC)
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
                            _call, fn, tasks[j], j, key=f"{tag}-{j}", pure=False
                        )
                try:
                    result, stat = window.pop(i).result()
                except KilledWorker:
                    raise RadarcastError(
                        f"shard {i + 1} of {len(tasks)} was lost with every Dask worker that "
                        "tried it (killed, or out of memory?); nothing was written"
                    ) from None
                self._count(stat)
                yield result
        finally:
            self.client.cancel(list(window.values()))

    def close(self) -> None:
        self.client.close()


def code_identity() -> tuple[str, str, str]:
    """(version, digest of radarcast/parallel/*.py, where radarcast is imported from) of
    this process; the first two must match between a command and its Dask workers."""
    import hashlib

    import radarcast

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for f in sorted(here.glob("*.py")):
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    version = getattr(radarcast, "__version__", "?")
    return version, digest.hexdigest()[:12], str(here.parent)


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
