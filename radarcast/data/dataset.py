"""Read access to a ``radarcast/1`` dataset file (:func:`open_dataset`, :class:`RadarDataset`)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from radarcast.config import count_or
from radarcast.data.georef import Georef, georef_from_attrs
from radarcast.data.schema import MAX_FRAMES, MAX_PIXELS, SCHEMA, SPLITS, format_time, split_code
from radarcast.data.units import Units
from radarcast.data.validation import (
    _count,
    _number,
    _plain,
    _read,
    _readable_attrs,
    _text,
    read_or_close,
    refuse_outside_storage,
)
from radarcast.errors import RadarcastError


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
        refuse_outside_storage(f, where)
        attrs = _readable_attrs(f)
        self.shape: tuple[int, int, int] = _check_layout(f, attrs, where)
        self.times, self.segments, self.splits = _read_axes(f, self.shape[0], where)
        self.static_mask: np.ndarray | None = _read_static_mask(f, self.shape, where)
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
        length = count_or(n_in, self.n_in, "--n-in") + count_or(n_out, self.n_out, "--n-out")
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
        n_in = count_or(n_in, self.n_in, "--n-in")
        n_out = count_or(n_out, self.n_out, "--n-out")
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

    @property
    def georef(self) -> Georef | None:
        """Where the grid lies (CRS, edges, pixel size), or None for pixel coordinates."""
        return georef_from_attrs(self.attrs, str(self.path))

    def identity(self, fingerprint: bool = True) -> dict:
        """Path, ``content_hash`` (the frames' shape and time axis: cheap, what forecast
        files before fingerprints recorded) and, unless ``fingerprint`` is False (it may
        read the whole file, see :meth:`fingerprint`), ``fingerprint``."""
        h = hashlib.sha256()
        h.update(np.asarray(self.shape, dtype=np.int64).tobytes())
        h.update(self.times.tobytes())
        out = {"path": str(self.path.resolve()), "content_hash": h.hexdigest()[:16]}
        return {**out, "fingerprint": self.fingerprint()} if fingerprint else out

    def fingerprint(self) -> str:
        """The content fingerprint (:func:`content_fingerprint`): the stored attribute, or
        for files written before it, computed here (streamed) once per handle."""
        if getattr(self, "_fingerprint", None) is None:
            stored = self.attrs.get("content_fingerprint")
            self._fingerprint = (
                stored if isinstance(stored, str) and stored else content_fingerprint(self.file)
            )
        return self._fingerprint

    def index_of_time(self, t: int) -> int:
        """The frame index whose valid time is exactly ``t`` seconds."""
        i = int(np.searchsorted(self.times, t))
        if i >= self.n_frames or self.times[i] != t:
            raise RadarcastError(f"{self.path}: no frame at {format_time(t)}")
        return i


FINGERPRINTED = ("frames", "mask", "time", "segment", "split")
UNIT_ATTRS = ("dbz_gain", "dbz_offset", "zr_a", "zr_b")


def content_fingerprint(f: h5py.File, block_bytes: int = 2**26) -> str:
    """SHA-256 (32 hex digits) of a dataset's content: frames, mask, time, segment and split
    (name, dtype, shape, then the values, read ``block_bytes`` at a time so memory stays
    bounded) and the pixel-to-unit mapping attributes. Compression, chunking, timestamps and
    the other attributes do not enter it; two files with equal values have equal prints."""
    h = hashlib.sha256(b"radarcast-fingerprint/1")
    for name in FINGERPRINTED:
        d = f[name]
        h.update(f"{name} {d.dtype.str} {d.shape}".encode())
        if d.ndim == 0 or d.shape[0] == 0:
            h.update(np.ascontiguousarray(d[()]).tobytes())
            continue
        row = max(1, d.dtype.itemsize * int(np.prod(d.shape[1:])))
        step = max(1, block_bytes // row)
        for i in range(0, d.shape[0], step):
            h.update(np.ascontiguousarray(d[i : i + step]).tobytes())
    units = {k: float(np.asarray(f.attrs[k]).reshape(())) for k in UNIT_ATTRS if k in f.attrs}
    h.update(json.dumps(units, sort_keys=True).encode())
    return h.hexdigest()[:32]


def _check_layout(f: h5py.File, attrs: dict, where) -> tuple[int, int, int]:
    """The schema, the five datasets and the frames' (T, H, W), checked before any read."""
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
    n, h, w = (int(s) for s in frames.shape)
    if n > MAX_FRAMES or h * w > MAX_PIXELS:  # checked before anything is read
        raise RadarcastError(
            f"{where}: frames declare {n:,} frames of {h:,}x{w:,}; at most "
            f"{MAX_FRAMES:,} frames of {MAX_PIXELS:,} pixels are supported"
        )
    return n, h, w


def _read_axes(f: h5py.File, n: int, where) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-frame index arrays: times (n,) int64, segments int32, splits uint8."""
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
    times = times.astype(np.int64)
    segments = _read(f["segment"], where).astype(np.int32)
    splits = _read(f["split"], where).astype(np.uint8)
    if n > 1 and np.any(np.diff(times) <= 0):
        raise RadarcastError(f"{where}: times do not increase strictly")
    return times, segments, splits


def _read_static_mask(f: h5py.File, shape: tuple[int, int, int], where) -> np.ndarray | None:
    """The static (H, W) mask, or None when the file stores one mask per frame."""
    mask = f["mask"]
    if mask.shape not in (shape, shape[1:]) or mask.dtype.kind not in "biu":
        raise RadarcastError(
            f"{where}: mask must be bool {shape} or {shape[1:]}, got {mask.dtype} {mask.shape}"
        )
    return _read(mask, where).astype(bool) if mask.ndim == 2 else None


def open_dataset(path: str | os.PathLike) -> RadarDataset:
    """Open a ``radarcast/1`` dataset file for reading (raises RadarcastError otherwise)."""
    return RadarDataset(path)
