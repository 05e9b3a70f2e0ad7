"""Scoring: forecast sources (live or from files), batched reads of truth, accumulation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from radarcast import forecasters
from radarcast.data.forecast_file import stored_pixels
from radarcast.data.store import RadarDataset
from radarcast.errors import RadarcastError

MEMORY_PER_BATCH = 64 * 2**20  # bytes of float32 frames read per batch
Progress = Callable[[int, int], None]
"""progress(done, total): how evaluate reports windows scored."""


def _live(spec: str, ds, n_in: int, n_out: int, options: dict) -> dict:
    try:
        fc = forecasters.resolve(spec, ds, n_in=n_in, n_out=n_out, options=options)
    except RadarcastError:
        raise
    except Exception as e:  # noqa: BLE001 - a checkpoint that does not load is a user error
        if spec in forecasters.METHODS:
            raise
        msg = f"{spec}: could not load checkpoint ({type(e).__name__}: {e})"
        raise RadarcastError(msg.splitlines()[0]) from None
    if fc.n_in > n_in:
        raise RadarcastError(f"{spec} needs {fc.n_in} input frames, but --n-in is {n_in}")
    return {"name": fc.name, "source": "live", "config": fc.config, "forecaster": fc,
            "members": fc.members}


def _from_file(path, ds, starts: np.ndarray, n_in: int, n_out: int) -> dict:
    from radarcast.data.forecast_file import open_forecast

    ff = open_forecast(path)
    ff.check_matches(ds, n_in, n_out)
    missing = starts[~np.isin(starts, ff.starts)]
    if len(missing):
        ff.close()
        raise RadarcastError(
            f"{path} does not cover the scored windows: {len(missing)} of {len(starts)} missing "
            f"(first missing start index {int(missing[0])}); make it with the same --split/--limit"
        )
    return {"name": ff.method, "source": str(Path(path)), "config": ff.config, "file": ff,
            "members": ff.members}


def covered_starts(forecasts, ds, starts: np.ndarray, n_in: int, n_out: int):
    """The windows of ``starts`` that every forecast file answers, and a note naming the
    files that cover fewer ('' when they cover all); none in common is an error."""
    from radarcast.data.forecast_file import open_forecast

    keep, short = np.asarray(starts), []
    for path in forecasts:
        with open_forecast(path) as ff:
            ff.check_matches(ds, n_in, n_out)
            have = np.isin(keep, ff.starts)
        if not have.all():
            short.append(Path(path).name)
            keep = keep[have]
        if not len(keep):
            raise RadarcastError(
                f"{path} answers none of the {len(starts)} selected windows "
                "(matched by its analysis times)"
            )
    note = f"{len(keep)} of {len(starts)} windows (those {', '.join(short)} covers)"
    return keep, note if short else ""


def _unique_names(sources: list[dict]) -> None:
    seen: set[str] = set()
    for s in sources:
        if s["name"] in seen and "file" in s:
            s["name"] = f"{s['name']} ({Path(s['source']).name})"
        k = 2
        base = s["name"]
        while s["name"] in seen:
            s["name"], k = f"{base} #{k}", k + 1
        seen.add(s["name"])


def _batches(
    ds: RadarDataset, starts: np.ndarray, length: int, maps: int = 0, n_out: int = 0
) -> list[np.ndarray]:
    """Window starts in batches of at most 64 whose frames, and the ``maps`` x ``n_out``
    forecast maps held per window (:func:`_held_maps`), take about MEMORY_PER_BATCH as
    float32."""
    frame = ds.height * ds.width * 4
    per = max(1, min(64, MEMORY_PER_BATCH // ((length + maps * n_out) * frame)))
    return [starts[i : i + per] for i in range(0, len(starts), per)]


def _held_maps(ds: RadarDataset, sources, n_out: int) -> int:
    """Forecast maps per lead that one window holds while it is scored, all ``sources``
    together (every source's forecast is held to find the common pixels): 1 for a
    deterministic one, its members and their mean for an ensemble. RadarcastError, before
    anything is read, for a forecast file one window of whose members cannot be held."""
    maps = 0
    for src in sources:
        fc = src.get("file") or src.get("forecaster")
        members = getattr(fc, "members", None) or 0
        maps += members + 1 if members else 1
        if not members or "file" not in src:
            continue
        from radarcast.baselines.ensemble_forecaster import available_bytes

        need, have = members * n_out * ds.height * ds.width * 4, available_bytes()
        if need > have:
            raise RadarcastError(
                f"{src['file'].path}: one window of its {members} members, {n_out} leads on "
                f"the {ds.height}x{ds.width} grid needs about {need / 2**30:.1f} GiB to score, "
                f"only {have / 2**30:.1f} GiB is available"
            )
    return maps


def _read_batch(ds: RadarDataset, starts: np.ndarray, n_in: int, n_out: int):
    """x float32 (B, n_in, H, W) NaN where invalid; y uint8 (B, n_out, H, W); mask_y bool."""
    length = n_in + n_out
    a, b = int(starts[0]), int(starts[-1]) + length
    if b - a <= 2 * len(starts) * length:  # one contiguous read serves overlapping windows
        frames, masks = ds.frames(a, b), ds.masks(a, b)
        idx = (starts - a)[:, None] + np.arange(length)  # (B, n_in + n_out)
        frames, masks = frames[idx], masks[idx]
    else:
        wins = [ds.window(int(s), n_in, n_out) for s in starts]
        frames = np.stack([np.concatenate([w.x, w.y]) for w in wins])
        masks = np.stack([np.concatenate([w.mask_x, w.mask_y]) for w in wins])
    x = frames[:, :n_in].astype(np.float32)
    x[~masks[:, :n_in]] = np.nan
    return x, frames[:, n_in:], masks[:, n_in:]


class _PixelLookup:
    """``fn`` (pixels → a float unit, elementwise) through a table of its 256 values when
    the pixels are whole numbers 0…255 (stored forecasts and truth always are), else ``fn``
    itself: the same numbers, without a power per pixel and frame."""

    def __init__(self, fn):
        self.fn = fn
        self.table = np.asarray(fn(np.arange(256, dtype=np.float32)))

    def __call__(self, p):
        p = np.asarray(p)
        if p.size and p.dtype == np.float32:
            with np.errstate(invalid="ignore"):  # NaN casts to anything: then not whole numbers
                i = p.astype(np.int32)
            if i.min() >= 0 and i.max() <= 255 and np.array_equal(i, p):
                return self.table[i]
        return self.fn(p)


def _value_fn(ds):
    """Pixels → the CRPS/spread–skill unit: mm/h with a Z–R relation, else dBZ."""
    return _PixelLookup(ds.units.pixel_to_rain if ds.units.has_zr else ds.units.pixel_to_dbz)


def _add_probabilistic(probs, enses, y, mask_y, starts, to_value) -> None:
    """Every window and lead of each ``enses[i]`` (B, M, L, H, W) into ``probs[i]``, its
    sums kept per window too (id: the window start, as the contingency counts); rank ties
    are split with a generator seeded by (window start, lead), so shards merge
    bit-identically. The methods are scored frame by frame, sharing the truth frame's FSS
    window sums (:class:`~radarcast.verification.spatial.ObsCache`)."""
    from radarcast.verification.spatial import ObsCache

    mask = np.broadcast_to(mask_y, y.shape)
    for b, start in enumerate(starts):
        for lead in range(y.shape[1]):
            truth = y[b, lead].astype(np.float32)
            cache = ObsCache()
            for prob, ens in zip(probs, enses, strict=True):
                rng = np.random.default_rng([int(start), lead])
                prob.add(lead, ens[b, :, lead], truth, mask[b, lead], to_value, rng,
                         window=start, cache=cache)


def _predict(src: dict, x: np.ndarray, batch: np.ndarray, n_out: int):
    """One source's (pred, ens) for a batch: pred (B, L, H, W) pixels (an ensemble's mean),
    ens (B, M, L, H, W) its members (M = 1 for a deterministic forecast)."""
    if "forecaster" in src:  # rounded as a forecast file stores it: same counts
        pred = stored_pixels(forecasters.run_batched(src["forecaster"], x))
    else:
        ff = src["file"]
        pred = ff.pred([ff.row_of(int(s)) for s in batch])[..., :n_out, :, :]
    if pred.ndim == 5:  # (B, M, L, H, W): deterministic scores of the ensemble mean
        return stored_pixels(pred.mean(axis=1)), pred
    return pred, pred[:, None]


def common_pixels(preds, mask_y: np.ndarray) -> np.ndarray:
    """``mask_y`` (B, L, H, W) less the pixels some method leaves unknown (NaN in its
    forecast or any of its members): every method is then scored on the same pixels."""
    known = np.array(np.broadcast_to(mask_y, preds[0][0].shape))
    for _, ens in preds:
        known &= ~np.isnan(ens).any(axis=1)
    return known


def _score_windows(ds, starts, n_in, n_out, sources, results, progress, common=True) -> None:
    """Score every window of ``starts`` for every source into ``results``; ``common``: on
    the pixels every source forecasts (:func:`common_pixels`), else each on its own."""
    done = 0
    to_value = _value_fn(ds)
    maps = _held_maps(ds, sources, n_out)
    for batch in _batches(ds, starts, n_in + n_out, maps, n_out):
        x, y, mask_y = _read_batch(ds, batch, n_in, n_out)
        preds = [_predict(src, x, batch, n_out) for src in sources]
        if common and len(preds) > 1:
            mask_y = common_pixels(preds, mask_y)
        probs, enses = [], []
        for (pred, ens), res in zip(preds, results, strict=True):
            res.acc.add(pred, y, mask_y, window_ids=batch)
            if res.prob is not None:
                probs.append(res.prob)
                enses.append(ens)
        if probs:  # all held already: scored together, sharing the truth's FSS sums
            _add_probabilistic(probs, enses, y, mask_y, batch, to_value)
        done += len(batch)
        if progress is not None:
            progress(done, len(starts))
    for src in sources:
        if "file" in src:
            src["file"].close()
