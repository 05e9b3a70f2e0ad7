"""Raw inputs → a ``radarcast/1`` dataset: read, rescale, mask, crop/resample, time, write.

Per frame, in this order: the reader's input pixels → mask of the input scale's nodata
values → pixel levels rescaled onto the target scale through a 256-entry table → crop →
downsample (block mean) or resize → :class:`~radarcast.data.store.DatasetWriter`. Only a
few frames are ever in memory.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from radarcast.data.preprocess_config import (  # noqa: F401  (re-exported: the old import path)
    PreprocessConfig,
)
from radarcast.data.readers import (
    READERS,
    RawFrame,
    ReadOptions,
    count_frames,
    detect_kind,
    get_reader,
    input_suffixes,
    resolve_inputs,
)
from radarcast.data.schema import ProgressFn, parse_time
from radarcast.data.split_check import check_windows
from radarcast.data.units import describe_zr
from radarcast.errors import RadarcastError


# --------------------------------------------------------------------------- per frame
class FrameTransform:
    """Input-scale uint8 frame (+ mask) → target-scale uint8 frame and mask."""

    def __init__(self, config: PreprocessConfig, convert: bool = True) -> None:
        src, dst = config.input_units(), config.target_units()
        lut = src.rescale_lut(dst) if convert else np.arange(256, dtype=np.uint8)
        self.valid_lut = np.ones(256, dtype=bool)
        self.valid_lut[list(src.nodata)] = False
        lut[~self.valid_lut] = 0  # nodata pixels are stored as 0 under a False mask
        self.table = lut.tobytes()  # for bytes.translate, about twice as fast as lut.take
        self.identity = bool(np.array_equal(lut, np.arange(256)))
        self.nodata = tuple(int(v) for v in src.nodata)
        self.has_nodata = bool(src.nodata)
        self.crop = config.crop
        self.k = config.downsample
        self.resize = config.resize

    def __call__(self, raw: RawFrame) -> tuple[np.ndarray, np.ndarray | None]:
        frame, mask = raw.frame, raw.mask
        if self.has_nodata:
            valid = self._valid(frame)
            mask = valid if mask is None else mask & valid
        if not self.identity:
            frame = np.frombuffer(frame.tobytes().translate(self.table), np.uint8).reshape(
                frame.shape
            )
        if raw.mask is not None:  # the reader's mask (NaN, pysteps): store 0 there
            frame = np.where(raw.mask, frame, np.uint8(0))
        if self.crop is not None:
            frame, mask = self._crop(frame, mask, raw.name)
        if self.k > 1:
            frame, mask = downsample(frame, mask, self.k)
        elif self.resize is not None:
            frame, mask = resize(frame, mask, self.resize)
        return frame, mask

    def _valid(self, frame: np.ndarray) -> np.ndarray:
        if len(self.nodata) > 4:  # a table is faster than many comparisons
            return self.valid_lut.take(frame)
        valid = frame != self.nodata[0]
        for v in self.nodata[1:]:
            valid &= frame != v
        return valid

    def _crop(self, frame, mask, name):
        y0, y1, x0, x1 = self.crop
        h, w = frame.shape
        if y1 > h or x1 > w:
            raise RadarcastError(f"{name}: --crop {y0}:{y1},{x0}:{x1} exceeds the {h}x{w} grid")
        return frame[y0:y1, x0:x1], None if mask is None else mask[y0:y1, x0:x1]


def downsample(frame: np.ndarray, mask: np.ndarray | None, k: int):
    """Block mean over K×K blocks of valid pixels; rows/columns beyond a multiple of K are
    dropped. A block is valid when at least half its pixels are."""
    h, w = (frame.shape[0] // k) * k, (frame.shape[1] // k) * k
    if h == 0 or w == 0:
        raise RadarcastError(f"--downsample {k} is larger than the {frame.shape} grid")
    blocks = frame[:h, :w].reshape(h // k, k, w // k, k)  # (H/k, k, W/k, k)
    if mask is None:
        mean = blocks.mean(axis=(1, 3), dtype=np.float32)
        return np.rint(mean).astype(np.uint8), None
    m = mask[:h, :w].reshape(h // k, k, w // k, k)
    n_valid = m.sum(axis=(1, 3))
    total = (blocks * m).sum(axis=(1, 3), dtype=np.float32)
    mean = np.where(n_valid > 0, total / np.maximum(n_valid, 1), 0.0)
    valid = n_valid * 2 >= k * k
    return np.where(valid, np.rint(mean), 0).astype(np.uint8), valid


def resize(frame: np.ndarray, mask: np.ndarray | None, shape: tuple[int, int]):
    """Bilinear resampling (anti-aliased when shrinking); the mask by nearest neighbour."""
    from skimage.transform import resize as sk_resize

    out = sk_resize(
        frame.astype(np.float32),
        shape,
        order=1,
        preserve_range=True,
        anti_aliasing=shape[0] < frame.shape[0] or shape[1] < frame.shape[1],
    )
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if mask is None:
        return out, None
    m = sk_resize(mask, shape, order=0, preserve_range=True, anti_aliasing=False).astype(bool)
    return np.where(m, out, np.uint8(0)), m


# --------------------------------------------------------------------------- georef
def input_georef(raw: RawFrame, config: PreprocessConfig):
    """The geo-reference of the raw grid of ``raw``: from --crs/--bounds when given, else
    the reader's (pysteps' metadata), else None."""
    from radarcast.data.georef import Georef

    if config.crs is not None:
        return Georef.from_bounds(config.crs, config.bounds, raw.frame.shape)
    return raw.georef


class SameGrid:
    """Checks that every frame lies on the first frame's grid (shape and geo-reference);
    ``shapes=False`` leaves a shape mismatch to the dataset writer's message."""

    def __init__(self, shapes: bool = True) -> None:
        self.first: RawFrame | None = None
        self.shapes = shapes

    def __call__(self, raw: RawFrame) -> None:
        if self.first is None:
            self.first = raw
            return
        h, w = self.first.frame.shape
        if raw.frame.shape != (h, w):
            if self.shapes:
                raise RadarcastError(
                    f"inputs are of different grids: {self.first.name} is {h}x{w}, "
                    f"{raw.name} is {raw.frame.shape[0]}x{raw.frame.shape[1]}"
                )
        elif raw.georef != self.first.georef:
            raise RadarcastError(
                f"inputs are of different grids: {raw.name} has another geo-reference "
                f"than {self.first.name}"
            )


def output_georef(georef, config: PreprocessConfig, shape):
    """``georef`` of the raw (H, W) grid ``shape`` after --crop and --downsample/--resize."""
    if georef is None:
        return None
    georef.check_shape(shape, "the input grid")
    if config.crop is not None:
        y0, y1, x0, x1 = config.crop
        georef, shape = georef.crop(y0, y1, x0, x1), (y1 - y0, x1 - x0)
    if config.downsample > 1:
        georef = georef.downsample(config.downsample, shape)
    elif config.resize is not None:
        georef = georef.resize(shape, config.resize)
    return georef


# --------------------------------------------------------------------------- driver
def assign_times(items: Iterator[RawFrame], start: int, step: int) -> Iterator[RawFrame]:
    """Give frames without a time one: ``start`` then one ``step`` later each, with one
    empty step before every new independent sequence so the time axis shows the break."""
    t = None
    for raw in items:
        if raw.time is None:
            t = start if t is None else t + step * (2 if raw.new_segment else 1)
            raw = raw._replace(time=t)
        yield raw


def prefetch(items: Iterable, depth: int = 8) -> Iterator:
    """Run ``items`` in a background thread, at most ``depth`` ahead; its exceptions are
    raised here. Decoding (which releases the GIL) then overlaps with compression."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(message) -> bool:
        while not stop.is_set():
            try:
                q.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put(("error", e))

    thread = threading.Thread(target=work, daemon=True, name="radarcast-prefetch")
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


Decoder = Callable[[str, list[Path], ReadOptions, PreprocessConfig], Iterator[tuple]]


def transformed(kind: str, paths: list[Path], opts: ReadOptions, config: PreprocessConfig):
    """(raw, frame, mask) of each input frame on the target scale, in order; times as read
    (None where the names carry none)."""
    transform = FrameTransform(config, convert=kind != "pysteps")  # pysteps: already there
    return ((raw, *transform(raw)) for raw in READERS[kind](paths, opts))


def with_times(decoded: Iterable[tuple], config: PreprocessConfig) -> Iterator[tuple]:
    """:func:`assign_times` over a stream of (raw, frame, mask)."""
    decoded = iter(decoded)
    pending: list = []

    def raws() -> Iterator[RawFrame]:
        for raw, frame, mask in decoded:
            pending.append((frame, mask))
            yield raw

    for raw in assign_times(raws(), parse_time(config.start), config.timestep_s):
        yield (raw, *pending.pop())


def decode_frames(kind: str, paths: list[Path], opts: ReadOptions, config: PreprocessConfig):
    """The one-process decoder: read and transform in a background thread, ahead of the
    writer."""
    return prefetch(with_times(transformed(kind, paths, opts, config), config))


def preprocess(
    inputs: list[str | os.PathLike],
    output: str | os.PathLike,
    config: PreprocessConfig = PreprocessConfig(),
    progress: ProgressFn | None = None,
    warn: Callable[[str], None] | None = None,
    decoder: Decoder | None = None,
) -> Path:
    """Read ``inputs``, convert them per ``config`` and write the dataset ``output``.

    Returns the output path. Raises RadarcastError (naming the input) for bad input and
    when no split would hold a window of ``n_in + n_out`` frames; in that case, or when
    interrupted, nothing is left under ``output``. ``warn`` receives one line for each
    problem that does not stop the run (a requested split without a window). ``decoder``
    replaces :func:`decode_frames` (radarcast.parallel decodes on worker processes).
    """
    from radarcast.data.store import DatasetWriter  # h5py: not for readers of raw files

    config.check()
    kind, importer, paths, opts = _read_plan(inputs, config)
    target = opts.target
    total = count_frames(kind, paths, opts)
    source = f"{kind}{':' + importer if importer else ''}: " + ", ".join(str(p) for p in inputs)
    with DatasetWriter(
        output,
        units=target,
        timestep_s=config.timestep_s,
        n_in=config.n_in,
        n_out=config.n_out,
        source=source[:2000],
        overwrite=config.overwrite,
        compression_level=config.compression_level,
        command=" ".join(sys.argv),
    ) as writer:
        ready = (decoder or decode_frames)(kind, paths, opts, config)
        same_grid = SameGrid(shapes=False)
        times, starts = _write_frames(writer, ready, same_grid, progress, total)
        if len(writer) == 0:
            raise RadarcastError("the inputs held no frames (all filtered out?)")
        notes = check_windows(
            times, starts, config.timestep_s, config.split, config.n_in, config.n_out
        )
        for note in notes if warn is not None else ():
            warn(note)
        zr_origin = f"{describe_zr(target)} from {config.zr_source()[2]}"
        extra = {"input_kind": kind, "zr_source": zr_origin}
        first = same_grid.first
        georef = output_georef(input_georef(first, config), config, first.frame.shape)
        if georef is not None:
            extra.update(georef.attrs())
        return writer.finish(config.split, extra_attrs=extra)


def _read_plan(inputs, config: PreprocessConfig) -> tuple[str, str, list[Path], ReadOptions]:
    """The reader kind (``auto`` resolved), the pysteps importer, the input files and the
    readers' options for ``config``."""
    kind, importer = get_reader(config.format)
    paths = resolve_inputs([str(p) for p in inputs], input_suffixes(kind, importer))
    if kind == "auto":
        kind = detect_kind(paths)
    opts = ReadOptions(
        time_pattern=config.time_pattern,
        cikm_level=config.cikm_level,
        max_start_end_corr=config.max_start_end_corr,
        pysteps_importer=importer,
        target=config.target_units(),
    )
    return kind, importer, paths, opts


def _write_frames(writer, ready, same_grid: SameGrid, progress: ProgressFn | None, total):
    """Append every (raw, frame, mask) of ``ready`` to ``writer``, each checked by
    ``same_grid``; the frames' times and new-segment flags, in order, for the split check."""
    times, starts = [], []
    for i, (raw, frame, mask) in enumerate(ready):
        same_grid(raw)
        writer.append(frame, raw.time, mask, new_segment=raw.new_segment, name=raw.name)
        times.append(raw.time)
        starts.append(raw.new_segment)
        if progress is not None:
            progress(i + 1, total)
    return times, starts
