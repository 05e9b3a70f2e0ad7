"""A failed write as the OSError it was, where the writing library says less.

netCDF4 reports a full disk as ``RuntimeError('NetCDF: HDF error')`` and rasterio as
``Write failed. See previous exception for details.``; neither keeps the system's errno. The
CLI turns an OSError into one line naming the output (the temporary's name mapped back), so
the writers raise :func:`write_error`'s instead.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

LOW_SPACE = 2**20  # bytes free below which a failed write is taken for a full device
NO_SPACE = "write failed: no space left on the device that holds it"


def free_bytes(path: Path) -> int | None:
    """Bytes free to this user on the device holding ``path`` (None when it cannot tell)."""
    try:
        return shutil.disk_usage(Path(path).parent).free
    except OSError:
        return None


def system_errno(text: str) -> int | None:
    """The errno whose system message (``os.strerror``) appears in ``text``, if any."""
    for number in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS):
        if os.strerror(number) in text:
            return number
    return None


def write_error(tmp: Path, reason: str, messages: str = "") -> OSError:
    """The OSError for a write to ``tmp`` that failed with the library's ``reason``.

    ``messages`` is what the library printed meanwhile (GDAL's libtiff names the system
    error there). Without a system error in either, a device that has less than
    ``LOW_SPACE`` bytes left is taken to be full; else the library's reason is kept (EIO).
    """
    number = system_errno(f"{messages}\n{reason}")
    if number is None:
        free = free_bytes(tmp)
        if free is not None and free < LOW_SPACE:  # the library did not say why; the device does
            return OSError(errno.ENOSPC, f"{NO_SPACE} ({free:,} bytes free)", str(tmp))
        return OSError(errno.EIO, f"write failed: {' '.join(reason.split())}", str(tmp))
    text = NO_SPACE if number == errno.ENOSPC else f"write failed: {os.strerror(number)}"
    return OSError(number, text, str(tmp))
