"""Raw inputs → streams of frames, one reader per kind, chosen by name from :data:`READERS`.

Every reader takes the resolved input files and a :class:`ReadOptions` and yields
:class:`RawFrame` items one at a time (never the whole input), in the INPUT's own pixel
scale: unit conversion, masking of nodata values and resampling happen in
:mod:`radarcast.data.preprocess`.
"""

from __future__ import annotations

import contextlib
import glob
import io
import mmap
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np

from radarcast.data.codec import GZIP_ERRORS, gunzip
from radarcast.data.units import Units
from radarcast.errors import RadarcastError

IMAGE_SUFFIXES = (".png", ".gif", ".pgm", ".pgm.gz", ".tif", ".tiff", ".bmp")
NUMPY_SUFFIXES = (".npy", ".npz")
CIKM_SUFFIXES = (".txt", ".csv")
SUFFIXES = {
    "images": IMAGE_SUFFIXES,
    "npy": NUMPY_SUFFIXES,
    "cikm": CIKM_SUFFIXES,
    "auto": IMAGE_SUFFIXES + NUMPY_SUFFIXES + CIKM_SUFFIXES,
}
CIKM_FRAMES, CIKM_LEVELS, CIKM_SIZE = 15, 4, 101
PYSTEPS_INSTALL = "pip install 'radarcast[pysteps]'"


class RawFrame(NamedTuple):
    """One input frame: (H, W) uint8 in the input scale, its time (s since epoch) or None,
    its validity mask (H, W) bool or None, whether it starts an independent sequence, and the
    input it came from (for messages)."""

    frame: np.ndarray
    time: int | None
    mask: np.ndarray | None
    new_segment: bool
    name: str


@dataclass(frozen=True)
class ReadOptions:
    """What the readers need beyond the file list.

    time_pattern: strftime pattern searched for in file names (``*``/``?`` match any text);
    cikm_level: height index 0..3 of CIKM samples (0 = lowest); max_start_end_corr: drop
    CIKM samples whose first and last frames correlate above this; pysteps_importer: the
    pysteps importer name; target: the pixel scale pysteps values are converted to.
    """

    time_pattern: str | None = None
    cikm_level: int = 0
    max_start_end_corr: float | None = None
    pysteps_importer: str = ""
    target: Units = Units()


# --------------------------------------------------------------------------- inputs
def has_suffix(path: Path, suffixes: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


def resolve_inputs(inputs: list[str], suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files, folders and globs → a list of files, in the order given; a folder gives its
    files sorted by name (only those ending in ``suffixes`` when given). Raises
    RadarcastError when nothing matched."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                q
                for q in p.iterdir()
                if q.is_file()
                and not q.name.startswith(".")
                and (suffixes is None or has_suffix(q, suffixes))
            )
            if not found:
                raise RadarcastError(f"{p}: the folder holds no input files")
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        elif glob.has_magic(item):
            found = sorted(Path(q) for q in glob.glob(item) if Path(q).is_file())
            if not found:
                raise RadarcastError(f"{item}: no files match this pattern")
            paths.extend(found)
        else:
            raise RadarcastError(f"{item}: no such file or folder")
    if not paths:
        raise RadarcastError("no inputs given")
    return paths


def detect_kind(paths: list[Path]) -> str:
    """'images', 'npy' or 'cikm' from the file suffixes (all inputs must agree)."""
    kinds = set()
    for p in paths:
        if has_suffix(p, IMAGE_SUFFIXES):
            kinds.add("images")
        elif has_suffix(p, NUMPY_SUFFIXES):
            kinds.add("npy")
        elif has_suffix(p, CIKM_SUFFIXES):
            kinds.add("cikm")
        else:
            raise RadarcastError(
                f"{p}: unknown input type; expected {', '.join(IMAGE_SUFFIXES + NUMPY_SUFFIXES)}"
                " or a CIKM .txt (or pass --format)"
            )
    if len(kinds) > 1:
        raise RadarcastError(
            f"inputs mix kinds ({', '.join(sorted(kinds))}); give one kind per run"
        )
    return kinds.pop()


# --------------------------------------------------------------------------- times
_DIRECTIVES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "j": r"\d{3}",
    "H": r"\d{2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
}


def compile_time_pattern(pattern: str) -> Callable[[str], int | None]:
    """A strftime pattern → function(file name) → seconds since the epoch (UTC), or None
    when the name does not contain the pattern. The pattern may match any part of the name;
    ``*`` and ``?`` match any text / any one character."""
    regex, directives, i = "", [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "%" and i + 1 < len(pattern):
            d = pattern[i + 1]
            if d == "%":
                regex += "%"
            elif d in _DIRECTIVES:
                regex += f"({_DIRECTIVES[d]})"
                directives.append("%" + d)
            else:
                raise RadarcastError(
                    f"--time-pattern {pattern!r}: %{d} is not supported; "
                    "use %Y %y %m %d %j %H %M %S"
                )
            i += 2
            continue
        regex += ".*?" if c == "*" else "." if c == "?" else re.escape(c)
        i += 1
    if not directives:
        raise RadarcastError(f"--time-pattern {pattern!r} holds no strftime field such as %Y")
    compiled = re.compile(regex)

    def parse(name: str) -> int | None:
        m = compiled.search(name)
        if m is None:
            return None
        try:
            dt = datetime.strptime("|".join(m.groups()), "|".join(directives))
        except ValueError:
            return None
        return int(dt.replace(tzinfo=timezone.utc).timestamp())

    return parse


def times_from_names(paths: list[Path], pattern: str | None) -> list[int | None]:
    if pattern is None:
        return [None] * len(paths)
    parse = compile_time_pattern(pattern)
    out = []
    for p in paths:
        t = parse(p.name)
        if t is None:
            raise RadarcastError(f"{p}: the file name does not match --time-pattern {pattern!r}")
        out.append(t)
    return out


# --------------------------------------------------------------------------- grids
def as_grid(a: np.ndarray, name: str) -> np.ndarray:
    """Check that ``a`` holds a 2-D grid of integers 0..255 and return it as uint8.
    Float NaNs are allowed (read as missing) and come back as 0; see :func:`nan_mask`."""
    if a.ndim != 2 or 0 in a.shape:
        raise RadarcastError(f"{name}: expected a non-empty 2-D grid, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind in "iu":
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 255:
            raise RadarcastError(f"{name}: values {lo}..{hi} lie outside the 0–255 range")
        return a.astype(np.uint8)
    if a.dtype.kind == "f":
        finite = a[np.isfinite(a)]
        if finite.size and (
            finite.min() < 0 or finite.max() > 255 or np.any(finite != np.round(finite))
        ):
            raise RadarcastError(
                f"{name}: float values (range {finite.min():g}..{finite.max():g}) where a grid of "
                "integers 0–255 is expected"
            )
        return np.nan_to_num(a, nan=0.0).astype(np.uint8)
    raise RadarcastError(f"{name}: {a.dtype} values where a grid of integers 0–255 is expected")


def nan_mask(a: np.ndarray) -> np.ndarray | None:
    """Validity mask of a float array with NaN for missing; None when all valid."""
    if a.dtype.kind != "f":
        return None
    valid = np.isfinite(a)
    return None if valid.all() else valid


_SEP = rb"(?:\s|#[^\n]*\n)+"  # whitespace and comment lines, one at a time (no backtracking)
_PGM_HEADER = re.compile(rb"P5" + _SEP + rb"(\d+)" + _SEP + rb"(\d+)" + _SEP + rb"(\d+)\s")


def parse_pgm(data: bytes) -> np.ndarray | None:
    """A binary 8-bit PGM (P5, maxval ≤ 255) → (H, W) uint8 view of ``data``; None for
    anything else (ASCII or 16-bit PGM, other formats), which Pillow then reads. Radar
    composites (FMI's among them) come as P5 with comment lines in the header."""
    m = _PGM_HEADER.match(data)
    if m is None:
        return None
    w, h, maxval = (int(g) for g in m.groups())
    if not 0 < maxval < 256 or w == 0 or h == 0 or len(data) - m.end() < w * h:
        return None  # Pillow reads or refuses it, with its own message
    return np.frombuffer(data, np.uint8, w * h, m.end()).reshape(h, w)


def read_image(path: Path) -> np.ndarray:
    """One image file → (H, W) uint8. Palette images give the palette index."""
    from PIL import Image

    try:
        data = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            data = gunzip(data)
        if data[:2] == b"P5" and (grid := parse_pgm(data)) is not None:
            return grid
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except (*GZIP_ERRORS, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise RadarcastError(f"{path}: cannot read the image ({e})") from None
    if im.mode in ("L", "P"):
        return np.asarray(im)
    if im.mode in ("RGB", "RGBA"):
        a = np.asarray(im)
        if np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2]):
            return np.ascontiguousarray(a[..., 0])
        raise RadarcastError(
            f"{path}: a colour ({im.mode}) image; expected one channel of 0–255 values "
            "(grey or palette index)"
        )
    if im.mode == "1":  # bilevel: 0/255 as drawn (numpy would give bool, refused below)
        return np.asarray(im.convert("L"))
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return as_grid(np.asarray(im), str(path))
    raise RadarcastError(f"{path}: image mode {im.mode} is not a single-channel 0–255 grid")


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


# --------------------------------------------------------------------------- pysteps
def _importer_kwargs(name: str, path: Path) -> dict:
    """The extra arguments some pysteps importers need, guessed from the file."""
    if name == "fmi_pgm":
        return {"gzipped": path.name.lower().endswith(".gz")}
    if name == "mch_gif":
        # AQC values are 5-minute accumulations (pysteps' own pystepsrc says unit "mm")
        return {"product": path.name[:3].upper(), "unit": "mm", "accutime": 5.0}
    return {}


def pysteps_to_pixels(values: np.ndarray, metadata: dict, target: Units, name: str):
    """A pysteps importer's field → (uint8 pixels on ``target``'s scale, valid mask).

    Rain rate (mm/h), rain depth (mm per ``accutime`` minutes) and reflectivity (dBZ) are
    accepted, also in pysteps' dB transform; NaN is missing.
    """
    values = np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    unit, transform = metadata.get("unit"), (metadata.get("transform") or "").lower()
    if transform == "db" and unit != "dBZ":
        values = 10.0 ** (values / 10.0)
    if unit == "mm":
        values = values * 60.0 / float(metadata.get("accutime") or 5.0)
        unit = "mm/h"
    valid = np.isfinite(values)
    if unit == "mm/h":
        with np.errstate(divide="ignore", invalid="ignore"):
            pixels = target.to_pixel(np.where(valid, values, 0.0), "mmh")
    elif unit == "dBZ":
        pixels = target.to_pixel(np.where(valid, values, target.dbz_offset), "dbz")
    else:
        raise RadarcastError(f"{name}: pysteps returned unit {unit!r}; expected mm/h, mm or dBZ")
    pixels = np.clip(np.rint(np.nan_to_num(pixels, nan=0.0, neginf=0.0)), 0, 255).astype(np.uint8)
    pixels[~valid] = 0
    return pixels, valid


def read_pysteps(paths: list[Path], opts: ReadOptions) -> Iterator[RawFrame]:
    """Radar products through a pysteps importer; frames come out on ``opts.target``'s scale."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints its config path
            import pysteps.io
    except ImportError:
        raise RadarcastError(
            f"--format pysteps:{opts.pysteps_importer} needs pysteps: {PYSTEPS_INSTALL}"
        ) from None
    try:
        importer = pysteps.io.get_method(opts.pysteps_importer, "importer")
    except ValueError:
        names = ", ".join(sorted(pysteps.io.interface._importer_methods))
        raise RadarcastError(
            f"unknown pysteps importer {opts.pysteps_importer!r}; choose one of: {names}"
        ) from None
    times = times_from_names(paths, opts.time_pattern)
    for p, t in zip(paths, times, strict=True):
        try:
            values, _, metadata = importer(str(p), **_importer_kwargs(opts.pysteps_importer, p))
        except Exception as e:  # noqa: BLE001 - any importer failure is about this file
            # pysteps importers fail with many types (OSError, KeyError, even NameError
            # when an optional package such as pyproj is missing)
            raise RadarcastError(
                f"{p}: pysteps {opts.pysteps_importer} cannot read it ({type(e).__name__}: {e})"
            ) from None
        frame, valid = pysteps_to_pixels(values, metadata, opts.target, str(p))
        yield RawFrame(frame, t, None if valid.all() else valid, False, str(p))


READERS: dict[str, Callable[[list[Path], ReadOptions], Iterator[RawFrame]]] = {
    "images": read_images,
    "npy": read_numpy,
    "cikm": read_cikm,
    "pysteps": read_pysteps,
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
