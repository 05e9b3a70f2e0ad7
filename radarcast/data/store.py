"""The HDF5 sequence dataset (schema ``radarcast/1``): one atomic writer, one reader.

Layout (docs/format.md has the full description)::

    frames   uint8 (T, H, W)   chunked one frame (or one tile) per chunk, gzip
    time     int64 (T,)        seconds since 1970-01-01 UTC
    mask     bool  (H, W) static, or (T, H, W) per frame: True where the pixel is valid
    segment  int32 (T,)        a new segment at every time gap or independent sequence
    split    uint8 (T,)        0 train, 1 val, 2 test; split borders are segment borders

Windows are start indices into ``frames``; a window never crosses a segment, and so never
crosses a split either.

This module holds the writer (:class:`DatasetWriter`); the reader is
:mod:`radarcast.data.dataset`, header validation :mod:`radarcast.data.validation`, and what
both share :mod:`radarcast.data.schema`. Their public names are re-exported here.
"""

from __future__ import annotations

import json
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from radarcast import __version__
from radarcast.data.codec import deflate
from radarcast.data.dataset import (  # noqa: F401  (re-exported: the old import path)
    RadarDataset,
    Window,
    content_fingerprint,
    open_dataset,
)
from radarcast.data.schema import (  # noqa: F401  (re-exported: the old import path)
    DEFAULT_FRACTIONS,
    MAX_FRAMES,
    MAX_PENDING,
    MAX_PIXELS,
    SCHEMA,
    SPLITS,
    TILE,
    ProgressFn,
    assign_splits,
    check_output,
    format_time,
    parse_time,
    place,
    quiet_hdf5_release,
    remove_stale_temporaries,
    segment_ids,
    split_code,
    temporary_path,
)
from radarcast.data.units import Units
from radarcast.data.validation import (  # noqa: F401  (re-exported: the old import path)
    read_or_close,
    refuse_outside_storage,
)
from radarcast.errors import RadarcastError


def close_written(f: h5py.File) -> None:
    """Close an HDF5 file being written. Its last flush can fail there (a full disk, a file
    size limit), which h5py raises as a RuntimeError ("Can't decrement id ref count (file
    write failed ...)"): raised instead as the OSError it is, with HDF5's text, so that the
    CLI gives its one line and ends the process before libhdf5 crashes at exit."""
    name = f.filename
    try:
        f.close()
    except RuntimeError as e:
        if "write failed" not in str(e):
            raise
        raise OSError(5, str(e), name) from None


def chunk_shape(height: int, width: int) -> tuple[int, int, int]:
    """One frame per chunk, or for large grids equal tiles of at most TILE x TILE.

    The tiles split the grid evenly (1226 rows → 3 × 409, not 512 + 512 + 202), so the
    padding that HDF5 stores in edge chunks, and that the writer compresses, stays under one
    row or column per tile.
    """

    def side(n: int) -> int:
        pieces = -(-n // TILE)  # ceil
        return -(-n // pieces)

    return (1, side(height), side(width))


def compress_chunks(frame: np.ndarray, chunks: tuple[int, int, int], level: int) -> list:
    """(H, W) uint8 → [((y, x), deflate bytes)] for each chunk of one frame, as HDF5's gzip
    filter stores them; edge tiles are padded to the full chunk size."""
    _, ch, cw = chunks
    h, w = frame.shape
    out = []
    for y in range(0, h, ch):
        for x in range(0, w, cw):
            tile = frame[y : y + ch, x : x + cw]
            if tile.shape != (ch, cw):
                tile = np.pad(tile, ((0, ch - tile.shape[0]), (0, cw - tile.shape[1])))
            data = np.ascontiguousarray(tile).view(np.uint8).tobytes()
            out.append(((y, x), deflate(data, level)))
    return out


# --------------------------------------------------------------------------- writer
class DatasetWriter:
    """Stream frames into a new dataset file; nothing appears under ``path`` until
    :meth:`finish` renames the completed file into place.

    Use as a context manager: an exception (or Ctrl-C) removes the temporary file.

    Parameters
    ----------
    path
        The output ``.h5`` file.
    units
        The pixel scale of the frames written.
    timestep_s
        The nominal time step in seconds; a larger (or smaller) gap starts a segment.
    n_in, n_out
        Default window lengths recorded for later commands.
    source
        A free-text description of where the frames came from.
    overwrite
        Replace an existing file at ``path``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        units: Units,
        timestep_s: int,
        n_in: int = 5,
        n_out: int = 15,
        source: str = "",
        overwrite: bool = False,
        compression_level: int = 1,
        command: str | None = None,
    ) -> None:
        if timestep_s <= 0:
            raise RadarcastError(f"timestep must be positive seconds, got {timestep_s}")
        if n_in < 1 or n_out < 1:
            raise RadarcastError(f"n_in and n_out must be ≥ 1, got {n_in} and {n_out}")
        self.path = check_output(path, overwrite)
        self.overwrite = overwrite
        self.units = units
        self.timestep_s = int(timestep_s)
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.source = source
        self.command = command if command is not None else " ".join(sys.argv)
        self.compression_level = compression_level
        self._tmp = temporary_path(self.path)
        self._file: h5py.File | None = None
        self._frames = None
        self._mask = None  # created on the first frame that has an invalid pixel
        self._times: list[int] = []
        self._starts: list[bool] = []
        self._shape: tuple[int, int] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque = deque()  # (dataset, frame index, future of compressed chunks)
        self._last: dict = {}  # dataset name → (last grid, its compression job)

    # -- context management
    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def abort(self) -> None:
        """Close and delete the temporary file; the output name is left untouched."""
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        # dataset handles are not dropped here: libhdf5 can crash releasing a handle whose
        # writes failed; they go with the writer (or with the process, in the CLI)
        with quiet_hdf5_release():
            if self._file is not None:
                try:
                    self._file.close()
                except Exception:  # noqa: BLE001 - best effort while already failing
                    pass
                self._file = None
        self._tmp.unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._times)

    def _open(self, height: int, width: int) -> None:
        self._shape = (height, width)
        self._file = h5py.File(self._tmp, "w", track_order=True)
        self._frames = self._file.create_dataset(
            "frames",
            shape=(0, height, width),
            maxshape=(None, height, width),
            dtype=np.uint8,
            chunks=chunk_shape(height, width),
            compression="gzip",
            compression_opts=self.compression_level,
            track_times=False,
        )

    def append(
        self,
        frame: np.ndarray,
        time: int,
        mask: np.ndarray | None = None,
        new_segment: bool = False,
        name: str = "",
    ) -> None:
        """Add one frame.

        Parameters
        ----------
        frame
            (H, W) uint8 pixels.
        time
            Valid time in seconds since 1970-01-01 UTC; must increase strictly.
        mask
            (H, W) bool, True where valid; None for all valid.
        new_segment
            Start a new independent sequence here even without a time gap.
        name
            The input it came from, for error messages.
        """
        where = f"{name}: " if name else ""
        frame = np.asarray(frame)
        if frame.ndim != 2 or frame.dtype != np.uint8:
            raise RadarcastError(
                f"{where}expected a 2-D uint8 grid, got {frame.dtype} {frame.shape}"
            )
        if self._shape is None:
            self._open(*frame.shape)
        elif frame.shape != self._shape:
            raise RadarcastError(
                f"{where}frame is {frame.shape[0]}x{frame.shape[1]}, "
                f"earlier frames are {self._shape[0]}x{self._shape[1]}"
            )
        time = int(time)
        if self._times and time <= self._times[-1]:
            prev = format_time(self._times[-1])
            raise RadarcastError(
                f"{where}time {format_time(time)} does not come after the previous frame's {prev}"
            )
        i = len(self._times)
        self._frames.resize(i + 1, axis=0)
        self._write_chunks(self._frames, i, frame)
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != frame.shape:
                raise RadarcastError(
                    f"{where}mask shape {mask.shape} differs from frame {frame.shape}"
                )
            if self._mask is None and not mask.all():
                self._create_mask(i)
        if self._mask is not None:
            self._mask.resize(i + 1, axis=0)
            self._write_chunks(self._mask, i, np.ones(frame.shape, bool) if mask is None else mask)
        self._times.append(time)
        self._starts.append(bool(new_segment))

    def _write_chunks(self, dataset, i: int, grid: np.ndarray) -> None:
        """Compress ``grid`` (frame or mask ``i``) in a worker thread (the codec releases the GIL)
        and write its chunks directly, in order; at most MAX_PENDING wait in memory."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
        grid = np.ascontiguousarray(grid)
        last = self._last.get(dataset.name) if dataset is self._mask else None
        if last is not None and np.array_equal(last[0], grid):
            job = last[1]  # masks repeat (a radar's coverage): reuse the compressed chunks
        else:
            job = self._pool.submit(compress_chunks, grid, dataset.chunks, self.compression_level)
            if dataset is self._mask:
                self._last[dataset.name] = (grid, job)
        self._pending.append((dataset, i, job))
        while len(self._pending) > MAX_PENDING:
            self._drain_one()

    def _drain_one(self) -> None:
        dataset, i, job = self._pending.popleft()
        for (y, x), data in job.result():
            dataset.id.write_direct_chunk((i, y, x), data)

    def _create_mask(self, n_before: int) -> None:
        height, width = self._shape
        self._mask = self._file.create_dataset(
            "mask",
            shape=(n_before, height, width),
            maxshape=(None, height, width),
            dtype=bool,
            chunks=chunk_shape(height, width),
            compression="gzip",
            compression_opts=self.compression_level,
            fillvalue=True,
            track_times=False,
        )

    def finish(
        self,
        fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
        extra_attrs: dict | None = None,
    ) -> Path:
        """Write the index arrays and attributes, close, and move the file into place."""
        if not self._times:
            self.abort()
            raise RadarcastError("no frames were written")
        while self._pending:
            self._drain_one()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        times = np.asarray(self._times, dtype=np.int64)
        segment = segment_ids(times, np.asarray(self._starts), self.timestep_s)
        segment, split = assign_splits(segment, fractions, self.n_in + self.n_out)
        f = self._file
        f.create_dataset("time", data=times, track_times=False)
        f.create_dataset("segment", data=segment, track_times=False)
        f.create_dataset("split", data=split, track_times=False)
        if self._mask is None:
            f.create_dataset("mask", data=np.ones(self._shape, dtype=bool), track_times=False)
        f["time"].attrs["units"] = "seconds since 1970-01-01T00:00:00Z"
        attrs = {
            "schema": SCHEMA,
            **self.units.attrs(),
            "timestep_s": self.timestep_s,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "source": self.source,
            "created_by": f"radarcast {__version__}: {self.command}",
            "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "split_fractions": json.dumps(list(fractions)),
        }
        attrs.update(extra_attrs or {})
        f.attrs.update(attrs)
        f.flush()
        f.attrs["content_fingerprint"] = content_fingerprint(f)  # streamed over what was written
        close_written(f)
        self._file = None
        place(self._tmp, self.path, self.overwrite)
        return self.path
