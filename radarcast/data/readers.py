"""Raw inputs → streams of frames, one reader per kind, chosen by name from :data:`READERS`.

Every reader takes the resolved input files and a :class:`ReadOptions` and yields
:class:`RawFrame` items one at a time (never the whole input), in the INPUT's own pixel
scale: unit conversion, masking of nodata values and resampling happen in
:mod:`radarcast.data.preprocess`.
"""

from __future__ import annotations

import mmap
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from radarcast.data.images import (  # noqa: F401  (re-exported: the old import path)
    _PGM_HEADER,
    _SEP,
    as_grid,
    nan_mask,
    parse_pgm,
    read_image,
)
from radarcast.data.inputs import (  # noqa: F401  (re-exported: the old import path)
    _DIRECTIVES,
    compile_time_pattern,
    detect_kind,
    has_suffix,
    resolve_inputs,
    times_from_names,
)
from radarcast.data.pysteps_reader import (  # noqa: F401  (re-exported: the old import path)
    _importer_kwargs,
    pysteps_to_pixels,
    read_pysteps,
)
from radarcast.data.raw import (  # noqa: F401  (re-exported: the old import path)
    CIKM_FRAMES,
    CIKM_LEVELS,
    CIKM_SIZE,
    CIKM_SUFFIXES,
    IMAGE_SUFFIXES,
    NUMPY_SUFFIXES,
    PYSTEPS_INSTALL,
    SUFFIXES,
    RawFrame,
    ReadOptions,
    input_suffixes,
)
from radarcast.errors import RadarcastError


# --------------------------------------------------------------------------- readers
def read_images(paths: list[Path], opts: ReadOptions) -> Iterator[RawFrame]:
    """Image files (PNG, GIF, PGM, PGM.gz, TIFF, BMP), one frame each, in the given order."""
    times = times_from_names(paths, opts.time_pattern)
    for p, t in zip(paths, times, strict=True):
        yield RawFrame(read_image(p), t, None, False, str(p))


def _stacks(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path) as z:
                for key in z.files:
                    yield f"{path}[{key}]", z[key]
        else:
            yield str(path), np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error) as e:
        raise RadarcastError(f"{path}: cannot read the array ({e})") from None


def read_numpy(paths: list[Path], opts: ReadOptions) -> Iterator[RawFrame]:
    """.npy/.npz stacks: (T, H, W) is one sequence, (N, T, H, W) N independent ones (each
    starts a segment). Float NaN means missing. .npy files are memory-mapped."""
    for path in paths:
        for name, a in _stacks(path):
            if a.ndim == 3:
                a = a[None]
            if a.ndim != 4:
                raise RadarcastError(
                    f"{name}: expected (T, H, W) or (N, T, H, W), got shape {a.shape}"
                )
            for n in range(a.shape[0]):
                for t in range(a.shape[1]):
                    raw = np.asarray(a[n, t])
                    where = f"{name} sequence {n} frame {t}"
                    yield RawFrame(as_grid(raw, where), None, nan_mask(raw), t == 0, where)
                    if (n * a.shape[1] + t) % 64 == 63:
                        _drop_pages(a)


def _drop_pages(a: np.ndarray) -> None:
    """Let the kernel drop the pages of a memory-mapped stack read so far. Without this
    every page touched stays resident in this process, and peak memory grows with the
    stack's size (frames already handed out stay valid: they are re-read on access)."""
    mm = getattr(a, "_mmap", None)
    if mm is not None and hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_DONTNEED)


def read_cikm(paths: list[Path], opts: ReadOptions) -> Iterator[RawFrame]:
    """CIKM AnalytiCup 2017 text: per line ``id,label,`` then 15×4×101×101 integers
    (time, height, row, column). Each line is one independent 15-frame sequence."""
    if not 0 <= opts.cikm_level < CIKM_LEVELS:
        raise RadarcastError(f"--cikm-level must be 0..{CIKM_LEVELS - 1}, got {opts.cikm_level}")
    expected = CIKM_FRAMES * CIKM_LEVELS * CIKM_SIZE * CIKM_SIZE
    for path in paths:
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path} line {lineno}"
                parts = line.split(b",", 2)
                if len(parts) != 3:
                    raise RadarcastError(
                        f"{where}: expected 'id,label,values', found no two commas"
                    )
                try:
                    values = np.array(parts[2].split(), dtype=np.int64)
                except (ValueError, OverflowError):
                    raise RadarcastError(f"{where}: non-integer values") from None
                if values.size != expected:
                    raise RadarcastError(
                        f"{where}: {values.size} values, expected {expected} (15×4×101×101)"
                    )
                seq = values.reshape(CIKM_FRAMES, CIKM_LEVELS, CIKM_SIZE, CIKM_SIZE)[
                    :, opts.cikm_level
                ]
                if (
                    opts.max_start_end_corr is not None
                    and _corr(seq[0], seq[-1]) > opts.max_start_end_corr
                ):
                    continue
                sample = parts[0].decode(errors="replace").strip()
                for t in range(CIKM_FRAMES):
                    yield RawFrame(
                        as_grid(seq[t], where), None, None, t == 0, f"{where} ({sample})"
                    )


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def read_pysteps_products(paths: list[Path], opts: ReadOptions) -> Iterator[RawFrame]:
    """``--format pysteps:NAME``: MeteoSwiss AQC/CPC GIFs (``mch_gif``) and FMI PGMs
    (``fmi_pgm``) are read natively (same frames, no pysteps import:
    :mod:`radarcast.data.mch_gif`, :mod:`radarcast.data.fmi_pgm`), the rest by pysteps."""
    if opts.pysteps_importer == "mch_gif":
        from radarcast.data.mch_gif import is_native, read_mch_gif

        if is_native(paths):
            return read_mch_gif(paths, opts)
    if opts.pysteps_importer == "fmi_pgm":
        from radarcast.data.fmi_pgm import read_fmi_pgm

        return read_fmi_pgm(paths, opts)
    return read_pysteps(paths, opts)


READERS: dict[str, Callable[[list[Path], ReadOptions], Iterator[RawFrame]]] = {
    "images": read_images,
    "npy": read_numpy,
    "cikm": read_cikm,
    "pysteps": read_pysteps_products,
}


def get_reader(fmt: str) -> tuple[str, str]:
    """'images' | 'npy' | 'cikm' | 'pysteps:NAME' | 'auto' → (reader name, importer name)."""
    kind, _, importer = fmt.partition(":")
    if kind == "auto" or kind in READERS:
        if kind == "pysteps" and not importer:
            raise RadarcastError("--format pysteps needs an importer name, e.g. pysteps:fmi_pgm")
        return kind, importer
    choices = ", ".join(["auto", *(k for k in READERS if k != "pysteps"), "pysteps:IMPORTER"])
    raise RadarcastError(f"unknown --format {fmt!r}; choose one of: {choices}")


def count_frames(kind: str, paths: list[Path], opts: ReadOptions) -> int | None:
    """How many frames a reader will yield, when cheap to tell (for the progress bar)."""
    if kind in ("images", "pysteps"):
        return len(paths)
    if kind == "npy" and all(p.suffix.lower() == ".npy" for p in paths):
        total = 0
        for p in paths:
            try:
                shape = np.load(p, mmap_mode="r").shape
            except (OSError, ValueError, EOFError) as e:
                raise RadarcastError(f"{p}: cannot read the array ({e})") from None
            total += int(np.prod(shape[:-2])) if len(shape) >= 3 else 1
        return total
    return None
