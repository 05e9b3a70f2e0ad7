"""Processes under ``torchrun``: rank, world size, the process group (:class:`Dist`)."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

import torch


# --------------------------------------------------------------------------- processes
@dataclass
class Dist:
    """This process's place under torchrun (rank 0 of 1 otherwise) and the collectives."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

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

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def _nccl() -> bool:
    import torch.distributed as td

    return td.is_available() and td.is_initialized() and td.get_backend() == "nccl"


def setup_dist(device: str) -> Dist:
    """Join the process group when started by torchrun (NCCL on CUDA, gloo on CPU)."""
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

        td.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(rank, world, local)
