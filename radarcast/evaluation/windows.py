"""Which windows an evaluation scores (the same for every method)."""

from __future__ import annotations

import numpy as np

from radarcast.data.store import RadarDataset
from radarcast.errors import RadarcastError


def _lengths(ds: RadarDataset, n_in: int | None, n_out: int | None) -> tuple[int, int]:
    n_in, n_out = n_in or ds.n_in, n_out or ds.n_out
    if n_in < 1 or n_out < 1:
        raise RadarcastError(f"--n-in and --n-out must be ≥ 1, got {n_in} and {n_out}")
    return int(n_in), int(n_out)


def select_windows(
    ds: RadarDataset, split: str, n_in: int, n_out: int, limit: int | None, stride: int = 1
) -> np.ndarray:
    """Start indices of the scored windows (:func:`radarcast.data.selection.select_windows`,
    the selection every command shares); RadarcastError when there are none."""
    from radarcast.data.selection import select_windows as shared

    return shared(ds, split, n_in, n_out, limit, stride)
