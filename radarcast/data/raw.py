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
