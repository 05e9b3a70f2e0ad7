"""Before a dataset is written: does each split get a window, and which split would?

``preprocess`` calls :func:`check_windows` with the time axis it is about to write. A
dataset with no window of ``n_in + n_out`` frames in any split is refused (it could only
fail later, in every command); a requested split that gets no window is reported with a
``--split`` that would give one.
"""

from __future__ import annotations

import itertools

import numpy as np

from radarcast.data.schema import SPLITS, assign_splits, segment_ids
from radarcast.errors import RadarcastError

GRID = 0.05  # step of the fractions tried for a suggestion


def windows_per_split(segment: np.ndarray, split: np.ndarray, length: int) -> dict[str, int]:
    """Windows of ``length`` frames inside one segment, per split name.

    Parameters
    ----------
    segment, split
        (T,) segment ids and split codes, as :func:`~radarcast.data.schema.assign_splits`
        returns them.
    """
    out = dict.fromkeys(SPLITS, 0)
    names = {code: name for name, code in SPLITS.items()}
    borders = np.flatnonzero(np.diff(segment)) + 1
    for a, b in zip(np.r_[0, borders], np.r_[borders, len(segment)], strict=True):
        out[names[int(split[a])]] += max(0, int(b - a) - length + 1)
    return out


def plan(segment: np.ndarray, fractions, length: int) -> dict[str, int]:
    """Windows per split that ``fractions`` would give these (pre-split) segments."""
    return windows_per_split(*assign_splits(segment, tuple(fractions), length), length)


def suggest_split(segment: np.ndarray, fractions, length: int) -> tuple[tuple, dict] | None:
    """Fractions on a 0.05 grid, as close as possible to ``fractions``, that give a window
    to the most of the requested (non-zero) splits; None when no split can get one."""
    wanted = [f > 0 for f in fractions]
    best, best_key = None, None
    steps = int(round(1 / GRID))
    for i, j in itertools.product(range(steps + 1), repeat=2):
        if i + j > steps:
            continue
        cand = (round(i * GRID, 2), round(j * GRID, 2), round((steps - i - j) * GRID, 2))
        if any(c > 0 and not w for c, w in zip(cand, wanted, strict=True)):
            continue  # never suggest a split that was not asked for
        counts = plan(segment, cand, length)
        kept = [counts[n] for n, c in zip(SPLITS, cand, strict=True) if c > 0]
        distance = sum(abs(c - f) for c, f in zip(cand, fractions, strict=True))
        key = (sum(k > 0 for k in kept), min(kept), -distance)
        if best_key is None or key > best_key:
            best, best_key = (cand, counts), key
    return best if best is not None and best_key[0] > 0 else None


def check_windows(
    times: np.ndarray,
    starts: np.ndarray,
    timestep_s: int,
    fractions,
    n_in: int,
    n_out: int,
) -> list[str]:
    """Refuse a dataset without any window; describe each requested split left empty.

    Parameters
    ----------
    times, starts
        (T,) frame times in seconds and flags of independent sequences, as written.

    Returns
    -------
    One warning per requested split without a window (empty when all have one).

    Raises
    ------
    RadarcastError
        When no split would hold a window of ``n_in + n_out`` frames.
    """
    length = n_in + n_out
    segment = segment_ids(np.asarray(times), np.asarray(starts, dtype=bool), timestep_s)
    counts = plan(segment, fractions, length)
    if sum(counts.values()) == 0:
        longest = int(np.max(np.bincount(segment)))
        raise RadarcastError(
            f"no window of {n_in}+{n_out} frames in any split: the longest unbroken run holds "
            f"{longest} frame{'s' if longest != 1 else ''}; give more frames or smaller "
            f"--n-in/--n-out"
        )
    empty = [n for n, f in zip(SPLITS, fractions, strict=True) if f > 0 and counts[n] == 0]
    if not empty:
        return []
    hint = suggest_split(segment, fractions, length)
    advice = ""
    if hint is not None:
        cand, got = hint
        windows = ", ".join(f"{n} {got[n]}" for n, c in zip(SPLITS, cand, strict=True) if c > 0)
        advice = f"; --split {','.join(f'{c:g}' for c in cand)} would give windows {windows}"
    which = " and ".join(empty)
    verb = "has" if len(empty) == 1 else "have"
    noun = "split" if len(empty) == 1 else "splits"
    return [f"the {which} {noun} {verb} no window of {n_in}+{n_out} frames{advice}"]
