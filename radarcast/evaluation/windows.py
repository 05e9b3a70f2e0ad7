"""Which windows an evaluation scores (the same for every method).
"""

from __future__ import annotations

import numpy as np

from radarcast.data.store import RadarDataset, split_code
from radarcast.errors import RadarcastError


def _lengths(ds: RadarDataset, n_in: int | None, n_out: int | None) -> tuple[int, int]:
    n_in, n_out = n_in or ds.n_in, n_out or ds.n_out
    if n_in < 1 or n_out < 1:
        raise RadarcastError(f"--n-in and --n-out must be ≥ 1, got {n_in} and {n_out}")
    return int(n_in), int(n_out)


def select_windows(
    ds: RadarDataset, split: str, n_in: int, n_out: int, limit: int | None
) -> np.ndarray:
    """Start indices of the scored windows; RadarcastError when there are none."""
    code = split_code(split)
    starts = ds.windows(n_in, n_out, split)
    if not len(starts):
        sel = np.ones(ds.n_frames, bool) if code is None else ds.splits == code
        if not sel.any():
            raise RadarcastError(f"{ds.path}: split {split!r} is empty (no frames)")
        seg = ds.segments[sel]
        longest = int(np.max(np.unique(seg, return_counts=True)[1]))
        raise RadarcastError(
            f"{ds.path}: n_in + n_out = {n_in + n_out} frames is longer than every segment of "
            f"split {split!r} (longest: {longest} frames)"
        )
    if limit is not None:
        if limit < 1:
            raise RadarcastError(f"--limit must be ≥ 1, got {limit}")
        starts = starts[:limit]
    return starts
