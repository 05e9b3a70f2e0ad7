"""The forecast file's writer: :class:`ForecastWriter` makes a new ``radarcast-forecast/1``
file (layout in :mod:`radarcast.data.forecast_file`, which reads it) under a temporary name,
row by row, streamed member by member or copied chunk by chunk from a shard's part, and
renames it into place when finished.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from radarcast import __version__
from radarcast.data.forecast_file import FORECAST_SCHEMA, stored_pixels
from radarcast.data.georef import dataset_georef
from radarcast.data.store import (
    check_output,
    chunk_shape,
    close_written,
    place,
    quiet_hdf5_release,
    temporary_path,
)
from radarcast.errors import RadarcastError


class ForecastWriter:
    """Write N windows' predictions into a new forecast file, then rename it into place.

    Use as a context manager; an exception removes the temporary file.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        dataset,
        starts: np.ndarray,
        *,
        method: str,
        config: dict,
        n_in: int,
        n_out: int,
        split: str | None,
        overwrite: bool = False,
        members: int | None = None,
    ) -> None:
        if members is not None and (isinstance(members, bool) or int(members) < 1):
            raise RadarcastError(f"members must be a whole number ≥ 1, got {members}")
        self.path = check_output(path, overwrite)
        self.overwrite = overwrite
        self._tmp = temporary_path(self.path)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.members = None if members is None else int(members)
        self._file = None
        try:  # a Ctrl-C before the caller's `with` block is entered still removes the file
            self._create(dataset, method, config, n_in, n_out, split)
        except BaseException:
            self.abort()
            raise

    def _create(
        self, dataset, method: str, config: dict, n_in: int, n_out: int, split: str | None
    ) -> None:
        n, (h, w) = len(self.starts), dataset.shape[1:]
        self._file = h5py.File(self._tmp, "w")
        lead_axes = (n_out,) if self.members is None else (self.members, n_out)
        chunks = (1, *(1 for _ in lead_axes[1:]), *chunk_shape(h, w))
        self._pred = self._file.create_dataset(
            "pred",
            shape=(n, *lead_axes, h, w),
            dtype=np.uint8,
            chunks=chunks,
            compression="gzip",
            compression_opts=1,
            track_times=False,
        )
        self._valid = None
        self._chunks = chunks
        self._file.create_dataset("start", data=self.starts, track_times=False)
        ident = dataset.identity()
        self._file.attrs.update(
            {
                "schema": FORECAST_SCHEMA,
                "method": method,
                "config": json.dumps(config, default=str),
                "n_in": int(n_in),
                "n_out": int(n_out),
                "split": split or "all",
                "dataset_path": ident["path"],
                "dataset_hash": ident["content_hash"],
                **(
                    {"dataset_fingerprint": ident["fingerprint"]}
                    if ident.get("fingerprint")
                    else {}
                ),
                "created_by": f"radarcast {__version__}: {' '.join(sys.argv)}",
                "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        if self.members is not None:
            self._file.attrs["members"] = self.members
        self._copy_context(dataset, n_in)
        self._written = 0

    def _copy_context(self, dataset, n_in: int) -> None:
        """Analysis times, time step, pixel scale and geo-reference of the dataset."""
        times = getattr(dataset, "times", None)
        if times is not None and len(self.starts):
            t = np.asarray(times, dtype=np.int64)[self.starts + int(n_in) - 1]
            self._file.create_dataset("analysis_time", data=t, track_times=False)
        if getattr(dataset, "timestep_s", None):
            self._file.attrs["timestep_s"] = int(dataset.timestep_s)
        if getattr(dataset, "units", None) is not None:
            self._file.attrs.update(dataset.units.attrs())
        georef = dataset_georef(dataset)
        if georef is not None:
            self._file.attrs.update(georef.attrs())

    def __enter__(self) -> ForecastWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def abort(self) -> None:
        with quiet_hdf5_release():  # handles stay: releasing failed ones can crash libhdf5
            if self._file is not None:
                try:
                    self._file.close()
                except Exception:  # noqa: BLE001 - best effort while already failing
                    pass
                self._file = None
        self._tmp.unlink(missing_ok=True)

    def write(self, pred: np.ndarray) -> None:
        """Append the next rows: (B, n_out, H, W) float pixels, NaN where unknown;
        (B, M, n_out, H, W) for an ensemble file."""
        pred = np.asarray(pred, dtype=np.float32)
        if pred.shape[1:] != self._pred.shape[1:]:
            raise AssertionError(f"rows {pred.shape[1:]} do not fit {self._pred.shape[1:]}")
        i, b = self._written, len(pred)
        for k in range(b):  # one window at a time: temporaries stay one window's size
            self._put((i + k,), pred[k])
        self._written += b

    def write_streamed(self, parts) -> None:
        """Append the next row of an ensemble file piece by piece, so that it never has to be
        in memory whole: ``parts`` yields (first member, lead, (m, H, W) float pixels)."""
        if self.members is None:
            raise AssertionError("write_streamed is for ensemble files")
        i = self._written
        for m0, lead, frames in parts:
            frames = np.asarray(frames, dtype=np.float32)
            self._put((i, slice(m0, m0 + len(frames)), lead), frames)
        self._written += 1

    def _put(self, where: tuple, values: np.ndarray) -> None:
        valid = np.isfinite(values)
        if self._valid is None and not valid.all():
            self._add_valid()
        row = np.nan_to_num(stored_pixels(values))  # NaN → 0 under a False 'valid'
        self._pred[where] = row.astype(np.uint8)
        if self._valid is not None:
            self._valid[where] = valid

    def _add_valid(self) -> None:
        self._valid = self._file.create_dataset(
            "valid",
            shape=self._pred.shape,
            dtype=bool,
            chunks=self._chunks,
            compression="gzip",
            compression_opts=1,
            fillvalue=True,
            track_times=False,
        )

    def append_file(self, path: str | os.PathLike, rows_per_read: int = 8) -> None:
        """Append every row of the forecast file ``path`` (written by a writer of the same
        layout: a shard's part) by copying its compressed chunks as they are; the stored
        bytes are those this writer would have made from the same predictions."""
        i0 = self._written
        with h5py.File(path, "r") as f:
            src = f["pred"]
            if src.shape[1:] != self._pred.shape[1:] or src.chunks != self._pred.chunks:
                raise AssertionError(f"{path} does not have this file's layout")
            for where in src.iter_chunks():
                offset = tuple(s.start for s in where)
                mask, data = src.id.read_direct_chunk(offset)
                self._pred.id.write_direct_chunk((offset[0] + i0, *offset[1:]), data, mask)
            if "valid" in f:  # values, not chunks: a part may hold unwritten (all-True) ones
                if self._valid is None:
                    self._add_valid()
                for r in range(0, len(src), rows_per_read):
                    rows = slice(r, min(r + rows_per_read, len(src)))
                    self._valid[i0 + rows.start : i0 + rows.stop] = f["valid"][rows]
            self._written += len(src)

    def finish(self) -> Path:
        if self._written != len(self.starts):
            raise AssertionError(f"wrote {self._written} of {len(self.starts)} windows")
        close_written(self._file)
        self._file = None
        place(self._tmp, self.path, self.overwrite)
        return self.path
