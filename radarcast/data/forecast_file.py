"""The forecast file (schema ``radarcast-forecast/1``): a method's predictions for a set of
windows of one dataset, written atomically and checked against that dataset when read.

Layout::

    pred     uint8 (N, n_out, H, W)   predicted pixels, chunked one lead per chunk, gzip
    valid    bool  (N, n_out, H, W)   only when some predicted pixel is unknown (NaN)
    start    int64 (N,)               the dataset window start index each row answers

Attributes: schema, method, config (JSON), n_in, n_out, split, dataset_path,
dataset_hash (see :meth:`RadarDataset.identity`), created_by, created_at.
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
from radarcast.data.store import check_output, chunk_shape, temporary_path
from radarcast.errors import RadarcastError

FORECAST_SCHEMA = "radarcast-forecast/1"


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
    ) -> None:
        self.path = check_output(path, overwrite)
        self._tmp = temporary_path(self.path)
        self.starts = np.asarray(starts, dtype=np.int64)
        n, (h, w) = len(self.starts), dataset.shape[1:]
        self._file = h5py.File(self._tmp, "w")
        chunks = (1, *chunk_shape(h, w))
        self._pred = self._file.create_dataset(
            "pred", shape=(n, n_out, h, w), dtype=np.uint8, chunks=chunks,
            compression="gzip", compression_opts=1, track_times=False,
        )
        self._valid = None
        self._chunks = chunks
        self._file.create_dataset("start", data=self.starts, track_times=False)
        ident = dataset.identity()
        self._file.attrs.update({
            "schema": FORECAST_SCHEMA,
            "method": method,
            "config": json.dumps(config, default=str),
            "n_in": int(n_in),
            "n_out": int(n_out),
            "split": split or "all",
            "dataset_path": ident["path"],
            "dataset_hash": ident["content_hash"],
            "created_by": f"radarcast {__version__}: {' '.join(sys.argv)}",
            "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
        self._written = 0

    def __enter__(self) -> ForecastWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def abort(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - best effort while already failing
                pass
            self._file = None
        self._tmp.unlink(missing_ok=True)

    def write(self, pred: np.ndarray) -> None:
        """Append the next rows: (B, n_out, H, W) float pixels, NaN where unknown."""
        pred = np.asarray(pred, dtype=np.float32)
        i, b = self._written, len(pred)
        valid = np.isfinite(pred)
        if self._valid is None and not valid.all():
            self._valid = self._file.create_dataset(
                "valid", shape=self._pred.shape, dtype=bool, chunks=self._chunks,
                compression="gzip", compression_opts=1, fillvalue=True, track_times=False,
            )
        self._pred[i : i + b] = np.clip(np.rint(np.nan_to_num(pred)), 0, 255).astype(np.uint8)
        if self._valid is not None:
            self._valid[i : i + b] = valid
        self._written += b

    def finish(self) -> Path:
        if self._written != len(self.starts):
            raise AssertionError(f"wrote {self._written} of {len(self.starts)} windows")
        self._file.close()
        self._file = None
        os.replace(self._tmp, self.path)
        return self.path


class ForecastFile:
    """Read access to a forecast file; see :func:`open_forecast`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RadarcastError(f"{self.path}: no such forecast file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as e:
            raise RadarcastError(f"{self.path}: not a readable HDF5 file ({e})") from None
        a = self._file.attrs
        schema = a.get("schema")
        schema = schema.decode() if isinstance(schema, bytes) else schema
        if schema != FORECAST_SCHEMA:
            self.close()
            raise RadarcastError(
                f"{self.path} is not a radarcast forecast file (schema {schema!r}, expected {FORECAST_SCHEMA!r})"
            )
        try:
            self.method = str(a["method"])
            self.config = json.loads(a["config"])
            self.n_in, self.n_out = int(a["n_in"]), int(a["n_out"])
            self.split = str(a["split"])
            self.dataset_path = str(a["dataset_path"])
            self.dataset_hash = str(a["dataset_hash"])
            self.starts = self._file["start"][...].astype(np.int64)
            self.shape = self._file["pred"].shape
        except KeyError as e:
            self.close()
            raise RadarcastError(f"{self.path}: {e.args[0]!r} is missing") from None
        self.has_valid = "valid" in self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ForecastFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check_matches(self, dataset, n_in: int | None = None, n_out: int | None = None) -> None:
        """Raise unless this file was made from ``dataset`` (and the given window lengths)."""
        ident = dataset.identity()
        if ident["content_hash"] != self.dataset_hash:
            raise RadarcastError(
                f"{self.path} was made from another dataset ({self.dataset_path}), not {dataset.path}"
            )
        if n_in is not None and n_in != self.n_in:
            raise RadarcastError(f"{self.path} used n_in={self.n_in}, expected {n_in}")
        if n_out is not None and n_out > self.n_out:
            raise RadarcastError(f"{self.path} has {self.n_out} leads, {n_out} were asked for")

    def row_of(self, start: int) -> int:
        """The row that answers window ``start``; RadarcastError if the file has none."""
        rows = np.flatnonzero(self.starts == start)
        if not len(rows):
            raise RadarcastError(f"{self.path} holds no forecast for window {start}")
        return int(rows[0])

    def pred(self, rows) -> np.ndarray:
        """(n, n_out, H, W) float32 pixels of the given rows, NaN where unknown."""
        rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        out = np.stack([self._file["pred"][int(r)] for r in rows]).astype(np.float32)
        if self.has_valid:
            valid = np.stack([self._file["valid"][int(r)] for r in rows])
            out[~valid] = np.nan
        return out


def open_forecast(path: str | os.PathLike) -> ForecastFile:
    """Open a forecast file written by ``radarcast forecast``."""
    return ForecastFile(path)
