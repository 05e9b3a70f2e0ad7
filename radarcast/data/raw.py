"""What every reader yields (:class:`RawFrame`) and takes (:class:`ReadOptions`), and the
file suffixes of each input kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from radarcast.data.units import Units

IMAGE_SUFFIXES = (".png", ".gif", ".pgm", ".pgm.gz", ".tif", ".tiff", ".bmp")
NUMPY_SUFFIXES = (".npy", ".npz")
CIKM_SUFFIXES = (".txt", ".csv")
SUFFIXES = {
    "images": IMAGE_SUFFIXES,
    "npy": NUMPY_SUFFIXES,
    "cikm": CIKM_SUFFIXES,
    "auto": IMAGE_SUFFIXES + NUMPY_SUFFIXES + CIKM_SUFFIXES,
}
HDF5_SUFFIXES = (".h5", ".hdf", ".hdf5")
PYSTEPS_SUFFIXES: dict[str, tuple[str, ...] | None] = {
    # each importer of pysteps.io: the suffixes of its products (pysteps' data sources in
    # pystepsrc, e.g. mch .gif, fmi .pgm.gz, opera .hdf, knmi .h5); None where the
    # products have no suffix of their own (RADOLAN binaries, Metranet's .801, .802, ...)
    "bom_rf3": (".nc",),
    "dwd_hdf5": HDF5_SUFFIXES,
    "dwd_radolan": None,
    "fmi_geotiff": (".tif", ".tiff"),
    "fmi_pgm": (".pgm", ".pgm.gz"),
    "knmi_hdf5": HDF5_SUFFIXES,
    "mch_gif": (".gif",),
    "mch_hdf5": HDF5_SUFFIXES,
    "mch_metranet": None,
    "mrms_grib": (".grib2", ".grb2", ".grib"),
    "odim_hdf5": HDF5_SUFFIXES,
    "opera_hdf5": HDF5_SUFFIXES,
    "saf_crri": (".nc",),
}
CIKM_FRAMES, CIKM_LEVELS, CIKM_SIZE = 15, 4, 101
PYSTEPS_INSTALL = "pip install 'radarcast[pysteps]'"


class RawFrame(NamedTuple):
    """One input frame: (H, W) uint8 in the input scale, its time (s since epoch) or None,
    its validity mask (H, W) bool or None, whether it starts an independent sequence, and the
    input it came from (for messages); and where it lies on the earth
    (:class:`~radarcast.data.georef.Georef`) when the input says so (pysteps products)."""

    frame: np.ndarray
    time: int | None
    mask: np.ndarray | None
    new_segment: bool
    name: str
    georef: object = None


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


def input_suffixes(kind: str, importer: str = "") -> tuple[str, ...] | None:
    """The file suffixes of a reader's kind (``pysteps`` with its ``importer``), which a
    folder's files must end in to be read; None: every file (an importer whose products
    have no suffix, or one radarcast does not know)."""
    if kind == "pysteps":
        return PYSTEPS_SUFFIXES.get(importer)
    return SUFFIXES.get(kind)
