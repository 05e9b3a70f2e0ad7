"""Which windows a command works on: the one selection that forecast, rover, evaluate and
animate share (split, every ``stride``-th start, the first ``limit``)."""

from __future__ import annotations

import numpy as np

from radarcast.data.store import split_code
from radarcast.errors import RadarcastError


def select_windows(
    ds, split: str | None, n_in: int, n_out: int, limit: int | None = None, stride: int = 1
) -> np.ndarray:
    """Start indices of the windows of ``split``: every ``stride``-th start within each
    segment, then the first ``limit`` in time order.

    Parameters
    ----------
    ds
        An open :class:`~radarcast.data.store.RadarDataset`.
    split
        'train', 'val', 'test', or None / 'all'.
    n_in, n_out
        Window lengths in frames.
    limit, stride
        ``--limit`` (≥ 1, or None for all) and ``--stride`` (≥ 1).

    Returns
    -------
    (N,) int64 start frames, N ≥ 1.

    Raises
    ------
    RadarcastError
        For a bad ``limit``/``stride``, and when the split holds no window, saying why.
    """
    if stride < 1:
        raise RadarcastError(f"--stride must be ≥ 1, got {stride}")
    if limit is not None and limit < 1:
        raise RadarcastError(f"--limit must be ≥ 1, got {limit}")
    starts = ds.windows(n_in, n_out, split, stride=stride)
    if not len(starts):
        code = split_code(split)
        sel = np.ones(ds.n_frames, bool) if code is None else ds.splits == code
        if not sel.any():
            raise RadarcastError(f"{ds.path}: split {split!r} is empty (no frames)")
        longest = int(np.max(np.unique(ds.segments[sel], return_counts=True)[1]))
        raise RadarcastError(
            f"{ds.path}: n_in + n_out = {n_in + n_out} frames is longer than every segment of "
            f"split {split or 'all'!r} (longest: {longest} frames)"
        )
    return starts if limit is None else starts[:limit]
