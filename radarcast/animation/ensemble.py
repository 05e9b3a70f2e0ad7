"""Ensemble panels: members beside the truth and probability of exceedance (0–1 scale).

A source (live method or forecast file) gives (n_out, H, W) pixels, or (M, n_out, H, W)
for an ensemble. :func:`expand_source` turns it into the panels drawn: the field itself
(deterministic), ``members`` member panels, and with a threshold one probability panel.
Probabilities are stored as whole percent (uint8 0..100) and drawn with :data:`PROB_RGB`.
"""

from __future__ import annotations

import numpy as np

from radarcast.errors import RadarcastError

# Probability bins (lower bounds, fraction) and a white→purple sequential palette (ColorBrewer
# "Purples"-like); exactly 0 is white.
PROB_LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8)
PROB_RGB = np.array([(218, 218, 235), (188, 189, 220), (158, 154, 200), (117, 107, 177),
                     (84, 39, 143)], np.uint8)
WHITE = np.array((255, 255, 255), np.uint8)


def prob_lut() -> np.ndarray:
    """(256, 3) uint8: percent (0..100) → RGB; 0 % white, (0, 20] % first bin, …"""
    pct = np.arange(256) / 100.0
    bins = np.clip(np.ceil(pct / 0.2 - 1e-9).astype(int) - 1, 0, len(PROB_RGB) - 1)
    return np.where((pct > 0)[:, None], PROB_RGB[bins], WHITE).astype(np.uint8)


def prob_legend(label: str) -> list:
    """Legend rows for the probability panels: a heading and one swatch per bin (ASCII: the
    panel font has no ≥ or en dash)."""
    items: list = [(f"P({label}):", None), ("0", tuple(int(v) for v in WHITE))]
    for i, lo in enumerate(PROB_LEVELS):
        items.append((f"{'>' if lo == 0 else ''}{lo:g}-{lo + 0.2:.1g}",
                      tuple(int(v) for v in PROB_RGB[i])))
    return items


def exceedance(pixels: np.ndarray, valid: np.ndarray, event: np.ndarray):
    """Members (M, n_out, H, W) uint8 + validity → (percent uint8 (n_out, H, W), valid).

    ``event`` (256,) bool per pixel level. The probability is the fraction of the members
    with a value at that pixel that reach the threshold; unknown where no member has one.
    """
    hits = (event[pixels] & valid).sum(axis=0)
    n = valid.sum(axis=0)
    p = np.divide(hits, n, out=np.zeros(hits.shape), where=n > 0)
    return np.rint(100 * p).astype(np.uint8), n > 0


def expand_source(name: str, pixels: np.ndarray, valid: np.ndarray, members: int | None,
                  event: np.ndarray | None, label: str = "") -> list[tuple]:
    """The panels of one source: ``[(title, pixels, valid, is_probability), ...]``.

    ``pixels``/``valid`` (n_out, H, W) deterministic or (M, n_out, H, W) ensemble. An
    ensemble shows its first ``members`` members (default: none when ``event`` is given,
    else member 1); ``event`` adds a probability panel (0/1 for a deterministic source).
    """
    if pixels.ndim == 3:
        out = [(name, pixels, valid, False)]
        if event is not None:
            p, v = exceedance(pixels[None], valid[None], event)
            out.append((f"{name} P({label}) 0/1", p, v, True))
        return out
    m = len(pixels)
    if members is not None and members > m:
        raise RadarcastError(f"--members {members} is more than {name} has ({m} members)")
    k = members if members is not None else (0 if event is not None else 1)
    out = [(f"{name} m{i + 1}", pixels[i], valid[i], False) for i in range(k)]
    if event is not None:
        p, v = exceedance(pixels, valid, event)
        out.append((f"{name} P({label}) {m}m", p, v, True))
    return out
