"""Deflate and gunzip through ISA-L when it is installed, zlib otherwise.

ISA-L (the ``isal`` package) writes and reads the same deflate and gzip streams as zlib,
3–4× faster on radar grids at the low levels the dataset writer uses (measured in
bench/preprocess_speed.py). Its streams are ordinary deflate, so HDF5's gzip filter, h5py
and any other HDF5 reader decode the chunks unchanged. Both libraries release the GIL, so
the writer's thread pool compresses in parallel.
"""

from __future__ import annotations

import gzip
import zlib

try:  # an optional speed-up: every function below has a zlib path
    from isal import igzip as _igzip
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - exercised where isal has no wheel
    _igzip = _isal_zlib = None

ISAL_MAX_LEVEL = 3  # ISA-L's levels are 0..3; higher zlib levels stay with zlib

#: What gunzip raises on a damaged or truncated stream, whichever library decodes it.
GZIP_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error) + (
    (_isal_zlib.error,) if _isal_zlib is not None else ()
)


def backend() -> str:
    """'isal' or 'zlib': the library that :func:`deflate` uses at level 1."""
    return "isal" if _isal_zlib is not None else "zlib"


def deflate(data: bytes, level: int = 1) -> bytes:
    """``data`` → a zlib-wrapped deflate stream (what HDF5's gzip filter stores).

    Levels 1–3 use ISA-L when it is installed; otherwise zlib with the ``Z_RLE`` strategy,
    which on radar grids (long runs of 0 and of nodata) is as small as zlib's default
    strategy and faster.
    """
    if _isal_zlib is not None and 1 <= level <= ISAL_MAX_LEVEL:
        return _isal_zlib.compress(data, level)
    packer = zlib.compressobj(level, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    return packer.compress(data) + packer.flush()


def gunzip(data: bytes) -> bytes:
    """The content of a gzip file; raises one of :data:`GZIP_ERRORS` when it is damaged."""
    if _igzip is not None:
        return _igzip.decompress(data)
    return gzip.decompress(data)
