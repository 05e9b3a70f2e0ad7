"""Persistence: the last observed frame, repeated for every lead time."""

from __future__ import annotations

import numpy as np


def persistence(x: np.ndarray, n_out: int) -> np.ndarray:
    """Repeat the last input frame.

    Parameters
    ----------
    x
        (B, n_in, H, W) pixels, any real dtype.
    n_out
        Number of lead times.

    Returns
    -------
    (B, n_out, H, W) float32 pixels.
    """
    last = np.asarray(x[:, -1:], dtype=np.float32)  # (B, 1, H, W)
    return np.repeat(last, n_out, axis=1)
