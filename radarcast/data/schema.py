"""Constants of the ``radarcast/1`` schema and the helpers its writer and reader share:
atomic output paths, split codes, chunking, segments and split assignment, times.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from radarcast.errors import RadarcastError

SCHEMA = "radarcast/1"
SPLITS = {"train": 0, "val": 1, "test": 2}
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
TILE = 512  # grids larger than this are chunked in tiles of at most TILE x TILE
MAX_FRAMES = 2**24  # 160 years of 5-minute frames: index arrays stay ~200 MiB
MAX_PIXELS = 2**28  # 16384 x 16384: one static mask stays 256 MiB
MAX_PENDING = 8  # frames compressed ahead of writing (bounds the writer's memory)


# --------------------------------------------------------------------------- helpers
def temporary_path(path: Path, suffix: str = "") -> Path:
    """A hidden sibling ``.NAME.PID.tmp`` of ``path`` to write to before :func:`place`.

    Temporaries of ``path`` that a killed run left behind (their PID no longer alive) are
    removed first; those of live processes and all other files are left alone. ``suffix``
    is appended for writers that pick the format from the name (``.STEM.PID.tmp.png``).
    """
    path = Path(path)
    remove_stale_temporaries(path)
    stem = path.stem if suffix else path.name
    return path.with_name(f".{stem}.{os.getpid()}.tmp{suffix}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return True  # cannot tell: keep the file
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete ``.NAME.PID.tmp`` (and ``.STEM.PID.tmp.SUFFIX``) siblings of ``path`` whose
    process is gone; returns what was removed. Never touches a live process's temporary."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    removed = []
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(".")]
    except OSError:
        return removed
    for prefix, tail in ((f".{path.name}.", ".tmp"), (f".{path.stem}.", f".tmp{path.suffix}")):
        for name in names:
            pid = name[len(prefix) : len(name) - len(tail)] if name.startswith(prefix) else ""
            if not (name.endswith(tail) and pid.isdigit()) or _pid_alive(int(pid)):
                continue
            stale = folder / name
            try:
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale)
                else:
                    stale.unlink()
                removed.append(stale)
            except FileNotFoundError:  # another run removed it first
                pass
            except OSError:
                pass  # not ours to remove (permissions): leave it
    return removed


def _rename_noreplace(src: Path, dst: Path) -> bool:
    """renameat2(RENAME_NOREPLACE) through libc; False where the system lacks it."""
    import ctypes
    import errno

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_noreplace = -100, 1
    if renameat2(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), rename_noreplace) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST or (err == errno.ENOTEMPTY):
        raise FileExistsError(err, os.strerror(err), str(dst))
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def place(tmp: Path, path: Path, overwrite: bool) -> Path:
    """Move the finished temporary ``tmp`` (file or folder) to ``path``.

    With ``overwrite`` an existing ``path`` is replaced (``os.replace``; a folder is moved
    aside first). Without it the placement is atomic no-clobber: ``os.link`` then unlink
    (files), else ``renameat2(RENAME_NOREPLACE)``; when another run placed ``path`` first,
    ``tmp`` is removed and the usual one-line refusal raised. Where neither exists (no hard
    links and an old kernel or another OS) it falls back to check-then-rename.
    """
    tmp, path = Path(tmp), Path(path)
    try:
        if overwrite:
            _replace(tmp, path)
            return path
        if tmp.is_dir() or not _link(tmp, path):
            if not _rename_noreplace(tmp, path):
                if path.exists():
                    raise FileExistsError(str(path))
                os.rename(tmp, path)
    except FileExistsError:
        _remove(tmp)
        raise RadarcastError(f"{path} exists; pass --overwrite to replace it") from None
    return path


def _link(tmp: Path, path: Path) -> bool:
    """Hard-link ``tmp`` as ``path`` (fails if it exists) and drop ``tmp``; False where the
    file system has no hard links."""
    import errno

    try:
        os.link(tmp, path)
    except OSError as e:
        unsupported = (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV, errno.ENOSYS)
        if e.errno in unsupported:  # no hard links here: the caller renames instead
            return False
        raise
    tmp.unlink()
    return True


def _replace(tmp: Path, path: Path) -> None:
    if tmp.is_dir() and path.is_dir():
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def _remove(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


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


ProgressFn = Callable[[int, int], None]
"""progress(done, total): the callback through which library code reports progress."""
