"""The :class:`Forecaster` every method is wrapped in: a named callable with its config.

It lives at the bottom of the package so that baselines and trained checkpoints can return
one without importing the registry (:mod:`radarcast.forecasters`, which re-exports it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from radarcast.errors import RadarcastError


@dataclass
class Forecaster:
    """A named callable (B, n_in, H, W) → (B, n_out, H, W) with its resolved config.

    Attributes
    ----------
    name
        Short method name used in tables and files ('persistence', 'rover', a run name).
    n_in, n_out
        Input frames it reads (the last ``n_in`` of whatever it is given) and leads it makes.
    predict
        ``predict(x, n_out)`` doing the work on float32 (B, n_in, H, W) input.
    config
        The resolved configuration, written next to every output for provenance.
    batch_size
        A good number of windows per call for this method.
    members
        None for a deterministic method; M for an ensemble, whose ``predict`` returns
        (B, M, n_out, H, W).
    stream
        Ensembles only: ``stream(x, n_out)`` for one window x (n_in, H, W) yields
        (first member, lead index, (m, H, W) float32) pieces, so a large ensemble is never
        held whole (``write_forecast`` uses it).
    """

    name: str
    n_in: int
    n_out: int
    predict: Callable[[np.ndarray, int], np.ndarray]
    config: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    members: int | None = None
    stream: Callable[[np.ndarray, int], Any] | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4:
            raise RadarcastError(
                f"{self.name}: expected input (B, n_in, H, W), got shape {x.shape}"
            )
        if x.shape[1] < self.n_in:
            raise RadarcastError(f"{self.name}: needs {self.n_in} input frames, got {x.shape[1]}")
        x = x[:, -self.n_in :].astype(np.float32, copy=False)  # (B, n_in, H, W)
        y = np.asarray(self.predict(x, self.n_out), dtype=np.float32)
        lead_axes = (self.n_out,) if self.members is None else (self.members, self.n_out)
        expected = (x.shape[0], *lead_axes, *x.shape[2:])
        if y.shape != expected:
            raise AssertionError(f"{self.name} returned {y.shape}, expected {expected}")
        return np.clip(y, 0.0, 255.0, out=y)
