"""Checked reads of HDF5 headers: attributes that must be numbers or counts, readable
datasets, and one RadarcastError (never an h5py traceback) for damaged metadata.
"""

from __future__ import annotations

from collections.abc import Callable

import h5py
import numpy as np

from radarcast.errors import RadarcastError


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


def refuse_outside_storage(f: h5py.File, where) -> None:
    """RadarcastError when a dataset's bytes live outside this file: HDF5 external raw
    storage, a virtual dataset, or an external link (any of them can make a read return
    another file's bytes, e.g. /etc/passwd, as radar frames or forecasts)."""

    def check(name: str) -> None:
        link = f.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise RadarcastError(
                f"{where}: {name!r} is a link to another file ({link.filename}); "
                "radarcast reads only data stored in the file itself"
            )
        obj = f.get(name)
        if isinstance(obj, h5py.Group):
            for child in obj:
                check(f"{name}/{child}")
        elif isinstance(obj, h5py.Dataset) and (obj.is_virtual or obj.external):
            kind = "a virtual dataset" if obj.is_virtual else "stored in external raw files"
            raise RadarcastError(
                f"{where}: dataset {name!r} is {kind}; "
                "radarcast reads only data stored in the file itself"
            )

    for name in f:
        check(name)


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
