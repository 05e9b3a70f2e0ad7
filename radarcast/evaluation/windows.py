"""Which windows an evaluation scores (the same for every method)."""

from __future__ import annotations

import numpy as np

from radarcast.config import count_or
from radarcast.data.store import RadarDataset


def _lengths(ds: RadarDataset, n_in: int | None, n_out: int | None) -> tuple[int, int]:
    return count_or(n_in, ds.n_in, "--n-in"), count_or(n_out, ds.n_out, "--n-out")


def select_windows(
    ds: RadarDataset, split: str, n_in: int, n_out: int, limit: int | None, stride: int = 1
) -> np.ndarray:
    """Start indices of the scored windows (:func:`radarcast.data.selection.select_windows`,
    the selection every command shares); RadarcastError when there are none."""
    from radarcast.data.selection import select_windows as shared

    return shared(ds, split, n_in, n_out, limit, stride)
