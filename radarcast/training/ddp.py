"""Processes under ``torchrun``: rank, world size, the process group (:class:`Dist`), and
how the processes stop together when one fails (:meth:`Dist.stop_together`).

When a rank fails it writes one line of reason into the job's key-value store (torchrun's,
which outlives every rank) and exits; its sockets close with it, so the others' pending
collective fails at once instead of waiting for the timeout. (``destroy_process_group``
alone does not close them: DistributedDataParallel's reducer still holds the group.) Each
of the others then raises :class:`RadarcastError` naming the failed rank and its reason:
one line each, no collective's traceback. torchrun's agent sends them SIGTERM as soon as the
failed rank has exited; a Python handler turns it into KeyboardInterrupt at the next
bytecode, i.e. once the collective has returned, so it cannot cut that line short. A rank
that dies without a word (SIGKILL, a crash) is named from the process ids the ranks
register at start; a rank that is stuck is caught by the process group's timeout
(``dist_timeout_s``).
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import torch

from radarcast.errors import RadarcastError

FAILED = "radarcast/failed"  # "RANK reason" of the first rank that failed


# --------------------------------------------------------------------------- processes
@dataclass
class Dist:
    """This process's place under torchrun (rank 0 of 1 otherwise) and the collectives."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    timeout_s: float = 600.0
    store: object = field(default=None, repr=False)  # the job's store, kept past the group
    old_sigterm: object = field(default=None, repr=False)
    last_work: object = field(default=None, repr=False)  # see finish()

    def wrap(self, net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def _reduce(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            import torch.distributed as td

            t = t.clone()
            td.all_reduce(t)
        return t

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        dev = torch.device("cuda", self.local_rank) if _nccl() else torch.device("cpu")
        return self._reduce(t.to(dev)).cpu()

    def mean(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss averaged over processes, a 0-d tensor on its device (no host sync)."""
        return self._reduce(loss.float()) / self.world

    def same(self, value):
        """Rank 0's ``value`` on every rank (e.g. a run name made from the clock)."""
        if self.world == 1:
            return value
        import torch.distributed as td

        box = [value]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            td.barrier()

    def finish(self) -> None:
        """The last collective of a run that ended well; its work is kept until
        :meth:`release`, after the process group is gone. Without that, train under load
        could hang at its very end (once in 11 suite runs: one rank stuck for good, its
        stack in the #21 note). The group is freed with the DDP model, in a destructor
        that joins gloo's worker threads while holding the GIL; a worker could still be
        releasing this barrier's work, which holds the earlier all-reduce works of Python
        tensors, and releasing those needs the GIL. Kept here, it is released by Python on
        this thread once the workers are joined."""
        if self.world > 1:
            import torch.distributed as td

            self.last_work = td.barrier(async_op=True)
            self.last_work.wait()

    def release(self) -> None:
        """Free what :meth:`finish` kept, once the caller dropped the DDP model (the last
        holder of the group: a collection frees it where reference cycles keep it)."""
        if self.last_work is not None:
            import gc

            gc.collect()
            self.last_work = None

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()
            if self.old_sigterm is not None:
                signal.signal(signal.SIGTERM, self.old_sigterm)
                self.old_sigterm = None

    def stop_together(self, exc: BaseException) -> BaseException:
        """What this rank raises for ``exc`` so that the whole job stops within seconds with
        one line naming the rank that failed: ``exc`` itself where this rank failed first
        (after telling the others), a RadarcastError where another rank did."""
        if self.world == 1 or self.store is None:
            return exc
        _quiet_sigterm()  # torchrun's SIGTERM must not cut this rank's line short
        self.old_sigterm = None  # and stays ignored until this process exits
        first = _first_failure(self.store)
        peer_trouble = _is_collective_error(exc)
        if first is None and not peer_trouble:  # this rank failed first: say so, then stop
            self._announce(_reason(exc))
            return exc
        if first is None or first[0] == str(self.rank):
            first = self._silent_or_stuck(exc)
        self.close()
        rank, why = first
        who = f"rank {rank} of {self.world}" if rank != "?" else "another rank"
        return RadarcastError(f"{who} failed: {why}; rank {self.rank} stopped with it")

    def _announce(self, reason: str) -> None:
        """Record this rank's failure (the first one wins) before this process exits."""
        try:
            self.store.compare_set(FAILED, "", f"{self.rank} {reason}")
        except RuntimeError:  # the store is gone (its host died): the others time out
            pass

    def _silent_or_stuck(self, exc: BaseException) -> tuple[str, str]:
        """(rank, reason) when no rank has said why: a rank whose process is gone died
        without a word; otherwise a rank stopped answering (the group's timeout)."""
        dead = _dead_ranks(self.store, self.world, self.rank)
        if dead:
            why = "its process ended without a word (killed, or crashed: see its log)"
            return str(dead[0]), why
        if "timed out" in str(exc).lower() or "timeout" in str(exc).lower():
            why = f"it did not answer for {self.timeout_s:g} s (stuck?; dist_timeout_s)"
            self.store.compare_set(
                FAILED, "", f"{self.rank} gave up after waiting {self.timeout_s:g} s for the others"
            )
            return "?", why
        return "?", f"its connection closed ({_reason(exc)})"


def _reason(exc: BaseException) -> str:
    """One short line for ``exc``: radarcast's own message as it is, another's with its type."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = " ".join(str(exc).split()) or "(no message)"
    if not isinstance(exc, RadarcastError):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


def _is_collective_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the process group (a peer gone or silent), not this rank."""
    import torch.distributed as td

    if isinstance(exc, td.DistError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        k in text for k in ("gloo", "Connection closed by peer", "Connection reset", "NCCL")
    )


def _first_failure(store) -> tuple[str, str] | None:
    try:
        if not store.check([FAILED]):
            return None
        rank, _, why = store.get(FAILED).decode("utf-8", "replace").partition(" ")
    except RuntimeError:  # the store's host is gone
        return None
    return rank, why


def _dead_ranks(store, world: int, me: int) -> list[int]:
    """Ranks on this host whose process has ended (or is a zombie), after a short grace."""
    host = socket.gethostname()
    pids = {}
    for r in range(world):
        try:
            where, _, pid = store.get(f"radarcast/pid/{r}").decode().rpartition(":")
        except RuntimeError:
            continue
        if r != me and where == host:
            pids[r] = int(pid)
    end = time.monotonic() + 1.0  # the parent may take a moment to notice a SIGKILL
    while True:
        dead = [r for r, pid in sorted(pids.items()) if not _alive(pid)]
        if dead or time.monotonic() > end:
            return dead
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def _sigterm_as_interrupt(signum, frame) -> None:
    """SIGTERM under torchrun: KeyboardInterrupt at the next bytecode (so never inside a
    blocked collective), unless this rank is already handling an error, whose path ends
    the process with its own line (raising here would replace that line)."""
    if sys.exc_info()[1] is not None:
        return
    raise KeyboardInterrupt


def _quiet_sigterm() -> None:
    """Ignore SIGTERM from here on: torchrun sends it to the others as soon as the failed
    rank exits, and this rank is about to exit 1 with its own line anyway."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _nccl() -> bool:
    import torch.distributed as td

    return td.is_available() and td.is_initialized() and td.get_backend() == "nccl"


def setup_dist(device: str, timeout_s: float = 600.0) -> Dist:
    """Join the process group when started by torchrun (NCCL on CUDA, gloo on CPU); a
    collective that waits longer than ``timeout_s`` for another rank fails."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as td

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    if not td.is_initialized():
        # DistributedDataParallel imports torch._dynamo on first use; imported while a
        # process group exists, it keeps a C++ reference to that group, so that
        # destroy_process_group() can no longer free it and the gloo threads
        # (pt_gloo_runloop, gloo_tcp_loop) live on into interpreter exit, where their
        # teardown races the interpreter's ("terminate called without an active exception",
        # SIGABRT, seen under load). Imported first, the group is freed and its threads joined.
        importlib.import_module("torch._dynamo")

        td.init_process_group(
            "nccl" if use_cuda else "gloo", timeout=timedelta(seconds=timeout_s)
        )
    store = _job_store()
    if store is not None:
        store.set(f"radarcast/pid/{rank}", f"{socket.gethostname()}:{os.getpid()}")
    old = None
    # gloo: a peer's exit makes the pending collective raise, so the main thread returns to
    # Python, where the handler can run. NCCL waits inside a CUDA sync (no handler would
    # run until the watchdog's timeout): there torchrun's SIGTERM keeps ending the rank.
    if not use_cuda and threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    return Dist(rank, world, local, timeout_s, store, old)


def _job_store():
    """The key-value store the process group was made with (torchrun's), or None."""
    from torch.distributed import distributed_c10d

    try:
        return distributed_c10d._get_default_store()
    except (AttributeError, RuntimeError, ValueError):  # a private helper: may move
        return None
