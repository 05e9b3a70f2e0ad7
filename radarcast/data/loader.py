"""Training windows streamed from one or several dataset files.

:class:`WindowDataset` indexes (file, start) pairs only; frames are read from HDF5 when a
window is asked for, cropped while reading, so memory does not grow with the data. Each
DataLoader worker opens its own HDF5 handle (a :class:`RadarDataset` drops its handle when
pickled and reopens lazily).

The order of windows and every random crop/flip/rotation/time reversal are functions of
``(seed, epoch, position in the epoch)`` only, handed out by :class:`WindowSampler`: the
same run gives the same batches whatever the number of workers or processes, and a resumed
run continues with exactly the batches the interrupted one would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from radarcast.data.store import RadarDataset
from radarcast.errors import RadarcastError


@dataclass(frozen=True)
class Augment:
    """Random changes applied to each training window (all off for validation)."""

    crop: int | None = None
    random_crop: bool = True
    flips: bool = False
    rotations: bool = False
    reverse_time: bool = False


class WindowDataset(Dataset):
    """Windows of ``n_in + n_out`` frames from ``sources``, one split.

    Items are asked for as ``(index, seed)`` pairs (see :class:`WindowSampler`) and returned
    as ``x`` (n_in, 1, h, w) float32 in [0, 1] with invalid pixels 0, ``y`` (n_out, 1, h, w)
    float32 in [0, 1] and ``mask_y`` (n_out, 1, h, w) bool. With ``raw=True`` x and y stay
    uint8 pixels (invalid 0), a quarter of the bytes through worker queues and pinned
    copies; :func:`to_device` turns them into [0, 1] floats on the device.
    """

    def __init__(
        self,
        sources: Sequence[RadarDataset],
        split: str,
        n_in: int,
        n_out: int,
        augment: Augment = Augment(),
        raw: bool = False,
    ) -> None:
        self.sources, self.raw = list(sources), raw
        self.n_in, self.n_out, self.augment = n_in, n_out, augment
        parts = [
            np.stack([np.full(len(s), k), s], axis=1)
            for k, ds in enumerate(self.sources)
            for s in [ds.windows(n_in, n_out, split)]
        ]
        self.index = np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 2), np.int64)
        crop = augment.crop
        for ds in self.sources:
            if crop is not None and (crop > ds.height or crop > ds.width):
                raise RadarcastError(
                    f"crop {crop} is larger than the {ds.height}x{ds.width} grid of {ds.path}"
                )
        if crop is None and len({ds.shape[1:] for ds in self.sources}) > 1:
            raise RadarcastError("the datasets have different grids: give a crop size (--crop)")
        for ds in self.sources:
            ds.close()  # reopened lazily, by each worker on its own

    def drop_handles(self) -> None:
        """Forget HDF5 handles inherited through fork (they must not be shared)."""
        for ds in self.sources:
            ds._file = None

    def __len__(self) -> int:
        return len(self.index)

    def _region(self, ds: RadarDataset, rng: np.random.Generator) -> tuple[slice, slice]:
        size = self.augment.crop
        if size is None:
            return slice(None), slice(None)
        if self.augment.random_crop:
            y0 = int(rng.integers(0, ds.height - size + 1))
            x0 = int(rng.integers(0, ds.width - size + 1))
        else:  # centred, for validation
            y0, x0 = (ds.height - size) // 2, (ds.width - size) // 2
        return slice(y0, y0 + size), slice(x0, x0 + size)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = item
        k, start = self.index[index]
        ds = self.sources[k]
        rng = np.random.default_rng(seed)
        ys, xs = self._region(ds, rng)
        stop = start + self.n_in + self.n_out
        frames = ds.file["frames"][start:stop, ys, xs]  # (T, h, w) uint8
        if ds.static_mask is not None:
            mask = np.broadcast_to(ds.static_mask[ys, xs], frames.shape)  # (T, h, w)
        else:
            mask = ds.file["mask"][start:stop, ys, xs].astype(bool)  # (T, h, w)
        frames, mask = self._augment(frames, mask, rng)
        if self.raw:
            data = np.where(mask, frames, 0).astype(np.uint8)  # (T, h, w) pixels
        else:
            data = np.where(mask, frames.astype(np.float32) / 255.0, 0.0).astype(np.float32)
        data = torch.from_numpy(np.ascontiguousarray(data)).unsqueeze(1)  # (T, 1, h, w)
        mask = torch.from_numpy(np.ascontiguousarray(mask)).unsqueeze(1)  # (T, 1, h, w)
        n = self.n_in
        return {"x": data[:n], "y": data[n:], "mask_y": mask[n:]}

    def _augment(self, frames, mask, rng):
        a = self.augment
        if a.reverse_time and rng.random() < 0.5:
            frames, mask = frames[::-1], mask[::-1]
        if a.flips and rng.random() < 0.5:
            frames, mask = frames[:, :, ::-1], mask[:, :, ::-1]
        if a.rotations:
            k = int(rng.integers(4))
            frames, mask = np.rot90(frames, k, (1, 2)), np.rot90(mask, k, (1, 2))
        return frames, mask


class WindowSampler(Sampler):
    """Yields ``(index, seed)`` for this process's share of one epoch.

    The epoch's order is a permutation drawn from ``(seed, epoch)``; like
    ``DistributedSampler``, rank ``r`` of ``world`` takes positions ``r, r + world, …``, so
    the union of the ranks' k-th batches is the single-process run's k-th global batch.
    ``drop_last`` trims the epoch to whole global batches. ``skip`` per-rank items are
    skipped at the start (resume in the middle of an epoch). Each item's augmentation seed
    depends only on ``(seed, epoch, position)``.
    """

    def __init__(
        self,
        n: int,
        *,
        seed: int,
        shuffle: bool,
        global_batch: int = 1,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = True,
    ) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world = rank, world
        self.global_batch, self.drop_last = global_batch, drop_last
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def positions(self) -> np.ndarray:
        """Epoch positions this rank serves, in order (before ``skip``)."""
        total = self.n
        if self.drop_last:
            total = (self.n // self.global_batch) * self.global_batch
        return np.arange(self.rank, total, self.world)

    def __len__(self) -> int:
        return max(len(self.positions()) - self.skip, 0)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        for pos in self.positions()[self.skip :]:
            seed = int(
                np.random.SeedSequence([self.seed, self.epoch, int(pos)]).generate_state(1)[0]
            )
            yield int(order[pos]), seed


class EpochStream(Sampler):
    """Epoch after epoch of ``sampler``, without end, from its ``(epoch, skip)`` at the start.

    One DataLoader over an EpochStream serves a whole run: its workers start once and keep
    prefetching across epoch boundaries (with a few batches per epoch, restarting them every
    epoch dominated the step time). Every epoch is exactly what ``sampler`` yields after
    ``set_epoch(epoch)``, so batches (and exact resume) are unchanged; with ``drop_last``
    an epoch is whole per-process batches, so no batch straddles two epochs.
    """

    def __init__(self, sampler: WindowSampler) -> None:
        if len(sampler.positions()) == 0:
            raise RadarcastError("an epoch holds no training window for this process")
        self.sampler = sampler

    def __iter__(self) -> Iterator[tuple[int, int]]:
        s = self.sampler
        epoch, skip = s.epoch, s.skip
        while True:
            s.set_epoch(epoch, skip)
            yield from iter(s)
            epoch, skip = epoch + 1, 0


def make_loader(
    dataset: WindowDataset,
    sampler: Sampler,
    batch_size: int,
    workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset`` in ``sampler``'s order, ``batch_size`` per process."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=False,
        persistent_workers=False,
        worker_init_fn=_worker_init if workers > 0 else None,
    )


def to_device(batch: dict, device: torch.device) -> dict:
    """A loader batch on ``device``; uint8 pixels (``raw`` datasets) become [0, 1] floats
    there, after the copy."""
    out = {}
    for k, v in batch.items():
        v = v.to(device, non_blocking=True)
        out[k] = v.float().div_(255.0) if v.dtype == torch.uint8 else v
    return out


def _worker_init(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset.drop_handles()
