"""Which windows a bootstrap resample draws: whole segments, moving blocks, or windows.

Forecast windows start every frame (or every ``stride`` frames) and overlap by up to
``n_in + n_out − 1`` frames, and they come from a handful of events, so their scores are
strongly autocorrelated. Resampling single windows as if independent then gives intervals
far too narrow. The schemes here keep that dependence:

``segment``
    Draw whole segments (unbroken runs of windows: events, or the parts of an event that a
    split left in one split) with replacement, as many as there are.
``block``
    The moving-block bootstrap (Künsch 1989), circular within each segment (Politis and
    Romano 1992, so windows at a segment's ends are drawn as often as the others): draw runs
    of ``b`` consecutive windows of one segment, ``b`` chosen so that a block's starts span
    2 (n_in + n_out) frames — windows of different blocks share no frame, and the block is
    long against the overlap's correlation — but at most half the longest segment (so that
    short events still give many distinct blocks) and never less than n_in + n_out frames;
    as many blocks as cover the scored windows. A segment shorter than one block is one
    block.
``window``
    Draw single windows (the old behaviour; right only for independent windows).

``auto`` (the default) is ``segment`` when at least :data:`MIN_SEGMENTS` segments hold
windows, else ``block``.

A resampling interval needs several independent units to mean anything: with the windows of
one day, two circular blocks of 17 out of 24 windows hold nearly the same windows in every
resample, and the interval comes out narrow however uncertain the score is (coverage 25% of
a nominal 95% in the simulation of docs/metrics.md). So a ``segment`` or ``block`` scheme
with fewer than :data:`MIN_INDEPENDENT` independent units (segments; or blocks' worth of
windows, Σ over segments of max(1, windows / b)) reports no interval: the scheme's
``no_interval`` says why, and the interval fields are NaN (null in JSON). ``window``, asked
for explicitly, keeps its interval and says that it assumes independent windows.

Every scheme returns integer weights (n, W): how often each scored
window is in each resample, so a resampled statistic is the same pooled-count formula with
weighted counts, and every method is resampled with the same weights (paired).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from radarcast.errors import RadarcastError

UNITS = ("auto", "segment", "block", "window")
MIN_SEGMENTS = 10  # fewer segments than this give too few distinct resamples: use blocks
BLOCK_SPAN = 2  # a block's starts span this many window lengths (n_in + n_out frames)
MIN_INDEPENDENT = 5  # fewer independent segments / blocks' worth than this: no interval


@dataclass(frozen=True)
class Scheme:
    """A resampling scheme, resolved for one set of scored windows.

    ``unit`` is 'segment', 'block' or 'window'; ``n_units`` the number of distinct units
    (segments, possible block positions, or windows); ``draws`` how many are drawn per
    resample; ``block_windows`` the block length in windows (1 for 'window', the longest
    segment's for 'segment'); ``block_frames`` the span of a block's window starts in frames;
    ``independent`` how many independent units the windows hold (segments; blocks' worth,
    Σ max(1, windows of a segment / b); windows); ``no_interval`` None, or why no interval is
    reported (fewer than :data:`MIN_INDEPENDENT` independent units); ``assumes`` what the
    interval takes for granted.
    """

    unit: str
    n_units: int
    draws: int
    block_windows: int
    block_frames: int
    requested: str
    independent: float = 0.0
    no_interval: str | None = None
    assumes: str | None = None

    def describe(self) -> str:
        """One line for tables and logs."""
        if self.no_interval:
            return f"no interval: {self.no_interval}"
        if self.n_units < 2:  # every resample is the same windows: no sampling variation
            return (
                f"1 {self.unit} per resample, the only one: the interval has no width and "
                "says nothing about uncertainty"
            )
        if self.unit == "segment":
            return f"{self.draws} whole segments per resample (of {self.n_units})"
        if self.unit == "block":
            return (
                f"{self.draws} moving blocks of {self.block_windows} windows "
                f"(≥ {self.block_frames} frames of starts) per resample"
            )
        return f"{self.draws} single windows per resample (assumes independent windows)"

    def to_dict(self) -> dict:
        return {**asdict(self), "description": self.describe()}


def check_bootstrap_unit(unit: str) -> str:
    if unit not in UNITS:
        raise RadarcastError(f"unknown bootstrap unit {unit!r}; choose one of: {', '.join(UNITS)}")
    return unit


def _runs(starts: np.ndarray, segment_of_start: np.ndarray) -> list[np.ndarray]:
    """Indices (into ``starts``) of each unbroken run: consecutive windows of one segment."""
    if len(starts) == 0:
        return []
    new = np.r_[True, segment_of_start[1:] != segment_of_start[:-1]]
    bounds = np.r_[np.flatnonzero(new), len(starts)]
    return [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _block_windows(starts: np.ndarray, runs: list[np.ndarray], length: int) -> int:
    """Windows per block so that a block's starts span at least ``length`` frames."""
    steps = [np.diff(starts[r]) for r in runs if len(r) > 1]
    step = int(np.median(np.concatenate(steps))) if steps else 1
    return max(1, int(np.ceil(length / max(step, 1))))


def plan(
    starts: np.ndarray, segment_of_start: np.ndarray, length: int, unit: str = "auto"
) -> tuple[Scheme, list[np.ndarray]]:
    """Resolve ``unit`` for these windows; returns the scheme and its units (index arrays).

    Parameters
    ----------
    starts
        (W,) window start frames, in time order.
    segment_of_start
        (W,) the segment id of each window.
    length
        ``n_in + n_out``, frames per window.
    """
    unit = check_bootstrap_unit(unit)
    starts = np.asarray(starts, dtype=np.int64)
    runs = _runs(starts, np.asarray(segment_of_start))
    if not runs:
        raise RadarcastError("the bootstrap needs at least one window")
    resolved = unit
    if unit == "auto":
        resolved = "segment" if len(runs) >= MIN_SEGMENTS else "block"
    n_win = len(starts)
    if resolved == "window":
        units = [np.array([i]) for i in range(n_win)]
        why = (f"{n_win} window: every resample is the same" if n_win < 2 else None)
        return Scheme("window", n_win, n_win, 1, 1, unit, float(n_win), why,
                      "independent windows (asked for with unit 'window'); overlapping "
                      "windows of a few events are not, and the interval runs narrow"), units
    if resolved == "segment":
        longest = max(len(r) for r in runs)
        why = None
        if len(runs) < MIN_INDEPENDENT:
            why = (f"{n_win} windows in {len(runs)} segment{'s' * (len(runs) > 1)}; "
                   f"a segment interval needs ≥ {MIN_INDEPENDENT} segments")
        return Scheme("segment", len(runs), len(runs), longest, length, unit,
                      float(len(runs)), why, "independent segments"), runs
    # starts spanning 2 window lengths, cut back to half the longest run so that short
    # events still give many distinct blocks, never below one window length
    b_min = _block_windows(starts, runs, length)
    longest = max(len(r) for r in runs)
    b = max(b_min, min(_block_windows(starts, runs, BLOCK_SPAN * length), longest // 2))
    span = int(round(length * b / b_min))
    units = []
    for r in runs:
        if len(r) <= b:
            units.append(r)
        else:  # circular within the segment: every window is in b blocks, also at the ends
            units.extend(np.take(r, np.arange(i, i + b), mode="wrap") for i in range(len(r)))
    draws = max(1, int(np.ceil(n_win / b)))
    worth = float(sum(max(1.0, len(r) / b) for r in runs))
    why = None
    if worth < MIN_INDEPENDENT:
        where = f" in {len(runs)} segments" if len(runs) > 1 else ""
        why = (f"{n_win} windows{where} make {worth:.1f} blocks of {b} windows; "
               f"an interval needs ≥ {MIN_INDEPENDENT}")
    return Scheme("block", len(units), draws, b, span, unit, round(worth, 2), why,
                  "windows a block apart independent of each other, and segments"), units


def weights(units: list[np.ndarray], draws: int, n_windows: int, n: int, seed: int) -> np.ndarray:
    """(n, W) int64: how often each window is in each of ``n`` resamples of ``draws`` units.

    A unit is one or two runs of consecutive window indices (a circular block wraps round
    its segment), so the weights are a cumulative sum of +k where a run starts and −k
    after it ends; memory stays (n, W) however many units there are."""
    rng = np.random.default_rng(seed)
    picks = rng.multinomial(draws, np.full(len(units), 1.0 / len(units)), size=n)  # (n, U)
    flat = np.concatenate(units)
    unit_of = np.repeat(np.arange(len(units)), [len(u) for u in units])
    begins = np.r_[True, (np.diff(flat) != 1) | (np.diff(unit_of) != 0)]  # a run starts
    ends = np.r_[begins[1:], True]  # a run's last window
    diff = np.zeros((n_windows + 1, n), dtype=np.int64)  # (W + 1, n)
    np.add.at(diff, flat[begins], picks.T[unit_of[begins]])
    np.add.at(diff, flat[ends] + 1, -picks.T[unit_of[ends]])
    return np.cumsum(diff, axis=0)[:n_windows].T


def resample(
    starts: np.ndarray,
    segment_of_start: np.ndarray,
    length: int,
    n: int,
    seed: int = 0,
    unit: str = "auto",
) -> tuple[np.ndarray, Scheme]:
    """(n, W) weights of ``n`` resamples of the scored windows, and the scheme that drew them.

    The one entry point for evaluation and the study: see :func:`plan` for the arguments.
    """
    scheme, units = plan(starts, segment_of_start, length, unit)
    return weights(units, scheme.draws, len(starts), n, seed), scheme
