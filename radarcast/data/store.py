"""The HDF5 sequence dataset (schema ``radarcast/1``): one atomic writer, one reader.

Layout (docs/format.md has the full description)::

    frames   uint8 (T, H, W)   chunked one frame (or one tile) per chunk, gzip
    time     int64 (T,)        seconds since 1970-01-01 UTC
    mask     bool  (H, W) static, or (T, H, W) per frame: True where the pixel is valid
    segment  int32 (T,)        a new segment at every time gap or independent sequence
    split    uint8 (T,)        0 train, 1 val, 2 test; split borders are segment borders

Windows are start indices into ``frames``; a window never crosses a segment, and so never
crosses a split either.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from radarcast import __version__
from radarcast.data.codec import deflate
from radarcast.data.units import Units
from radarcast.errors import RadarcastError

SCHEMA = "radarcast/1"
SPLITS = {"train": 0, "val": 1, "test": 2}
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
TILE = 512  # grids larger than this are chunked in tiles of at most TILE x TILE
MAX_FRAMES = 2**24  # 160 years of 5-minute frames: index arrays stay ~200 MiB
MAX_PIXELS = 2**28  # 16384 x 16384: one static mask stays 256 MiB
MAX_PENDING = 8  # frames compressed ahead of writing (bounds the writer's memory)


# --------------------------------------------------------------------------- helpers
def temporary_path(path: Path) -> Path:
    """A hidden sibling of ``path`` to write to before an atomic ``os.replace``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def check_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; check that its folder exists."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise RadarcastError(f"{path} exists; pass --overwrite to replace it")
    if path.is_dir():
        raise RadarcastError(f"{path} is a folder, expected a file name")
    if not path.parent.exists():
        raise RadarcastError(f"output folder {path.parent} does not exist")
    return path


def split_code(split: str | None) -> int | None:
    """'train' | 'val' | 'test' → 0 | 1 | 2; None or 'all' → None."""
    if split is None or split == "all":
        return None
    try:
        return SPLITS[split]
    except KeyError:
        raise RadarcastError(
            f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}, all"
        ) from None


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


def segment_ids(times: np.ndarray, starts: np.ndarray, timestep_s: int) -> np.ndarray:
    """(T,) int32 segment ids: a new one at every flagged start and every time gap."""
    new = np.asarray(starts, dtype=bool).copy()
    if len(times):
        new[0] = True
        new[1:] |= np.diff(times) != timestep_s
    return (np.cumsum(new) - 1).astype(np.int32)


def assign_splits(
    segment: np.ndarray,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    window: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the time axis into contiguous train | val | test blocks.

    The blocks are laid out from the end: test, then val, then train. A val or test block
    that its fraction makes shorter than one window (``window`` frames) is lengthened to
    one window where the data allows, so that a small dataset still has a window in every
    split it asks for. Each cut moves back to a segment border that lies within
    max(5% of the frames, one window) before it, or forward to one within 5% after it,
    so that blocks hold whole segments where they can; otherwise the segment is split at
    the cut. Returns the new ``(segment, split)`` arrays; every split border is a segment
    border, so no window can hold frames of two splits.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise RadarcastError(f"split fractions must be 3 numbers ≥ 0 summing to 1, got {fractions}")
    n = len(segment)
    borders = np.flatnonzero(np.diff(segment)) + 1  # indices where a segment starts
    wants = [0 if f == 0 else max(int(round(f * n)), window) for f in fractions]
    if wants[2] + wants[1] + (window if fractions[0] > 0 else 0) > n:
        wants = [int(round(f * n)) for f in fractions]  # too short for a window in each

    def snap(cut: int, stop: int, need_before: int) -> int:
        """Move ``cut`` (the start of a block ending at ``stop``) to a nearby border."""
        cut = min(max(cut, 0), stop)
        if cut == stop:
            return cut
        back = borders[(borders <= cut) & (borders >= cut - max(0.05 * n, window))]
        back = back[back >= need_before]
        if len(back):
            return int(back.max())
        ahead = borders[(borders > cut) & (borders <= cut + 0.05 * n)]
        ahead = ahead[stop - ahead >= min(window, stop - cut)]
        return int(ahead.min()) if len(ahead) else cut

    train_need = window if fractions[0] > 0 else 0
    c2 = snap(n - wants[2], n, train_need + wants[1])
    c1 = snap(c2 - wants[1], c2, train_need)
    split = np.zeros(n, dtype=np.uint8)
    split[c1:c2] = 1
    split[c2:] = 2
    starts = np.zeros(n, dtype=bool)
    if n:
        starts[0] = True
        starts[1:] = (np.diff(segment) != 0) | (np.diff(split) != 0)
    return (np.cumsum(starts) - 1).astype(np.int32), split


@contextmanager
def quiet_hdf5_release() -> Iterator[None]:
    """Release h5py handles after a failed write without h5py's traceback for each handle
    HDF5 cannot flush (a full disk); the caller reports the first error."""
    with redirect_stderr(io.StringIO()):
        yield


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
        f.close()
        self._file = None
        os.replace(self._tmp, self.path)
        return self.path


# --------------------------------------------------------------------------- reader
def read_or_close(owner, read: Callable[[], None]) -> None:
    """Run ``read()`` (an HDF5 file's header checks); on any failure close ``owner``'s
    handle, and turn h5py's errors on damaged metadata into one RadarcastError."""
    try:
        read()
    except (OSError, RuntimeError, KeyError) as e:  # h5py on damaged metadata
        owner.close()
        msg = " ".join(str(e).split())
        raise RadarcastError(f"{owner.path}: damaged HDF5 metadata ({msg})") from None
    except BaseException:
        owner.close()
        raise


def format_time(t: int) -> str:
    """Seconds since the epoch → 'YYYY-MM-DDTHH:MM:SSZ'."""
    return datetime.fromtimestamp(int(t), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    """An ISO-8601 time (UTC unless it says otherwise) → seconds since the epoch."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RadarcastError(f"cannot read {text!r} as an ISO-8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


@dataclass(frozen=True)
class Window:
    """One input/target pair read from a dataset.

    ``x`` (n_in, H, W) and ``y`` (n_out, H, W) uint8 pixels; ``mask_x``/``mask_y`` the
    matching bool validity; ``times`` (n_in + n_out,) int64; ``start`` the first frame index.
    """

    start: int
    x: np.ndarray
    y: np.ndarray
    mask_x: np.ndarray
    mask_y: np.ndarray
    times: np.ndarray


class RadarDataset:
    """Read access to a ``radarcast/1`` file; open it with :func:`open_dataset`.

    The index arrays (``times``, ``segments``, ``splits``) are read once; frames and masks
    are read on demand. The HDF5 handle opens lazily and is not pickled, so each
    DataLoader worker opens its own.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RadarcastError(f"{self.path}: no such dataset file")
        self._file: h5py.File | None = None
        read_or_close(self, lambda: self._read_index(self.file))

    def _read_index(self, f: h5py.File) -> None:
        """Check the layout and attributes and read the index arrays; RadarcastError for a
        file that is not a sound radarcast/1 dataset (so nothing later trips over it)."""
        where = self.path
        attrs = _readable_attrs(f)
        schema = _plain(attrs.get("schema"))
        if schema != SCHEMA:
            raise RadarcastError(
                f"{where} is not a radarcast dataset (schema {schema!r}, expected {SCHEMA!r})"
            )
        for name in ("frames", "time", "segment", "split", "mask"):
            if not isinstance(f.get(name), h5py.Dataset):
                raise RadarcastError(f"{where}: dataset {name!r} is missing")
        frames = f["frames"]
        if frames.ndim != 3 or frames.dtype != np.uint8 or 0 in frames.shape:
            raise RadarcastError(
                f"{where}: frames must be uint8 (T, H, W), got {frames.dtype} {frames.shape}"
            )
        self.shape: tuple[int, int, int] = tuple(int(s) for s in frames.shape)
        n, h, w = self.shape
        if n > MAX_FRAMES or h * w > MAX_PIXELS:  # checked before anything is read
            raise RadarcastError(
                f"{where}: frames declare {n:,} frames of {h:,}x{w:,}; at most "
                f"{MAX_FRAMES:,} frames of {MAX_PIXELS:,} pixels are supported"
            )
        for name, kinds in (("time", "iuf"), ("segment", "iu"), ("split", "iu")):
            d = f[name]
            if d.shape != (n,) or d.dtype.kind not in kinds:
                raise RadarcastError(
                    f"{where}: {name!r} must hold {n} numbers (one per frame), "
                    f"got {d.dtype} {d.shape}"
                )
        times = _read(f["time"], where)
        if not np.all(np.isfinite(times)):
            raise RadarcastError(f"{where}: 'time' holds non-finite values")
        self.times = times.astype(np.int64)
        self.segments = _read(f["segment"], where).astype(np.int32)
        self.splits = _read(f["split"], where).astype(np.uint8)
        if n > 1 and np.any(np.diff(self.times) <= 0):
            raise RadarcastError(f"{where}: times do not increase strictly")
        mask = f["mask"]
        if mask.shape not in (self.shape, self.shape[1:]) or mask.dtype.kind not in "biu":
            raise RadarcastError(
                f"{where}: mask must be bool {self.shape} or {self.shape[1:]}, "
                f"got {mask.dtype} {mask.shape}"
            )
        self.static_mask: np.ndarray | None = (
            _read(mask, where).astype(bool) if mask.ndim == 2 else None
        )
        try:
            self.units = Units.from_attrs(
                {k: _number(attrs, k, where) for k in ("dbz_gain", "dbz_offset", "zr_a", "zr_b")}
            )
        except RadarcastError as e:
            raise RadarcastError(f"{where}: {e}") from None
        self.timestep_s = _count(attrs, "timestep_s", where)
        self.n_in = _count(attrs, "n_in", where, default=5)
        self.n_out = _count(attrs, "n_out", where, default=15)
        self.source = _text(attrs.get("source", ""))
        self.attrs = {k: _plain(v) for k, v in attrs.items()}

    # -- handle management
    @property
    def file(self) -> h5py.File:
        if self._file is None:
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as e:
                raise RadarcastError(f"{self.path}: not a readable HDF5 file ({e})") from None
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RadarDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def __repr__(self) -> str:
        t, h, w = self.shape
        return f"RadarDataset({str(self.path)!r}, frames={t}, grid={h}x{w})"

    # -- shape
    @property
    def n_frames(self) -> int:
        return self.shape[0]

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    # -- data access
    def frames(self, start: int, stop: int | None = None) -> np.ndarray:
        """(n, H, W) uint8 frames ``start:stop`` (one frame if ``stop`` is None)."""
        stop = start + 1 if stop is None else stop
        return _read(self.file["frames"], self.path, slice(start, stop))

    def masks(self, start: int, stop: int | None = None) -> np.ndarray:
        """(n, H, W) bool validity of frames ``start:stop``."""
        stop = start + 1 if stop is None else stop
        if self.static_mask is not None:
            n = len(range(*slice(start, stop).indices(self.n_frames)))
            return np.broadcast_to(self.static_mask, (n, *self.shape[1:]))
        return _read(self.file["mask"], self.path, slice(start, stop)).astype(bool)

    def windows(
        self,
        n_in: int | None = None,
        n_out: int | None = None,
        split: str | None = None,
        stride: int = 1,
    ) -> np.ndarray:
        """Start indices of every window of ``n_in + n_out`` frames inside one segment.

        Parameters
        ----------
        n_in, n_out
            Window lengths; the dataset's defaults when None.
        split
            'train', 'val', 'test', or None / 'all' for every split.
        stride
            Keep every ``stride``-th start within a segment.

        Returns
        -------
        (N,) int64 start indices in time order.
        """
        length = (n_in or self.n_in) + (n_out or self.n_out)
        code = split_code(split)
        if stride < 1:
            raise RadarcastError(f"stride must be ≥ 1, got {stride}")
        seg = self.segments
        borders = np.flatnonzero(np.diff(seg)) + 1
        seg_starts = np.concatenate([[0], borders])
        seg_stops = np.concatenate([borders, [len(seg)]])
        out = []
        for a, b in zip(seg_starts, seg_stops, strict=True):
            if code is not None and self.splits[a] != code:
                continue
            if b - a >= length:
                out.append(np.arange(a, b - length + 1, stride))
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)

    def window(self, start: int, n_in: int | None = None, n_out: int | None = None) -> Window:
        """Read the window that starts at frame ``start``."""
        n_in, n_out = n_in or self.n_in, n_out or self.n_out
        stop = start + n_in + n_out
        if start < 0 or stop > self.n_frames:
            raise RadarcastError(
                f"window {start}..{stop - 1} lies outside the {self.n_frames} frames"
            )
        if self.segments[start] != self.segments[stop - 1]:
            raise RadarcastError(f"window {start}..{stop - 1} crosses a segment border")
        frames = self.frames(start, stop)
        masks = self.masks(start, stop)
        return Window(
            start=int(start),
            x=frames[:n_in],
            y=frames[n_in:],
            mask_x=masks[:n_in],
            mask_y=masks[n_in:],
            times=self.times[start:stop],
        )

    def iter_windows(
        self, starts: np.ndarray, n_in: int | None = None, n_out: int | None = None
    ) -> Iterator[Window]:
        for s in starts:
            yield self.window(int(s), n_in, n_out)

    def split_counts(self, n_in: int | None = None, n_out: int | None = None) -> dict[str, dict]:
        """Frames, segments and windows per split."""
        out = {}
        for name, code in SPLITS.items():
            sel = self.splits == code
            out[name] = {
                "frames": int(sel.sum()),
                "segments": int(len(np.unique(self.segments[sel]))),
                "windows": int(len(self.windows(n_in, n_out, name))),
            }
        return out

    def identity(self) -> dict:
        """Path and a content hash of the frames' shape and time axis."""
        h = hashlib.sha256()
        h.update(np.asarray(self.shape, dtype=np.int64).tobytes())
        h.update(self.times.tobytes())
        return {"path": str(self.path.resolve()), "content_hash": h.hexdigest()[:16]}

    def index_of_time(self, t: int) -> int:
        """The frame index whose valid time is exactly ``t`` seconds."""
        i = int(np.searchsorted(self.times, t))
        if i >= self.n_frames or self.times[i] != t:
            raise RadarcastError(f"{self.path}: no frame at {format_time(t)}")
        return i


def open_dataset(path: str | os.PathLike) -> RadarDataset:
    """Open a ``radarcast/1`` dataset file for reading (raises RadarcastError otherwise)."""
    return RadarDataset(path)


def _readable_attrs(f: h5py.File) -> dict:
    """The file's attributes; one that cannot be decoded counts as missing."""
    out = {}
    for k in f.attrs:
        try:
            out[k] = f.attrs[k]
        except (OSError, TypeError, ValueError):
            pass
    return out


def _number(attrs: dict, name: str, where) -> float:
    """A real-valued scalar attribute as float; RadarcastError when missing or not a number."""
    if name not in attrs:
        raise RadarcastError(f"{where}: attribute {name!r} is missing")
    v = attrs[name]
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.reshape(()).item()
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise RadarcastError(f"{where}: attribute {name!r} must be a number, got {_plain(v)!r}")
    return float(v)


def _count(attrs: dict, name: str, where, default: int | None = None) -> int:
    """A whole-number attribute ≥ 1 (``default`` when absent, if given)."""
    if name not in attrs and default is not None:
        return default
    v = _number(attrs, name, where)
    if not (np.isfinite(v) and v == int(v) and 1 <= v < 2**31):
        raise RadarcastError(f"{where}: attribute {name!r} must be a whole number ≥ 1, got {v:g}")
    return int(v)


def _read(dataset: h5py.Dataset, where, sel=()) -> np.ndarray:
    """``dataset[sel]``; a damaged or unreadable chunk becomes a RadarcastError."""
    try:
        return dataset[sel]
    except (OSError, RuntimeError) as e:
        raise RadarcastError(
            f"{where}: cannot read {dataset.name.lstrip('/')!r} ({' '.join(str(e).split())})"
        ) from None


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _plain(v):
    """HDF5 attribute → plain Python value for JSON and display."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


ProgressFn = Callable[[int, int], None]
"""progress(done, total): the callback through which library code reports progress."""
