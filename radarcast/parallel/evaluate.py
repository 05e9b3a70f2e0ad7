"""Scores from many workers: each scores a shard of the windows, the parent merges.

The parent checks and resolves everything once (:func:`radarcast.evaluation.plan_evaluation`),
cuts the windows into shards of whole scoring batches, and each worker opens the dataset
(and the forecast files) by path and scores its shard with
:func:`radarcast.evaluation.score`. The accumulators keep per-window counts and sums, so the
shards' accumulators merged in window order are those of one process, bit for bit: the
same counts, sums, scores and bootstrap intervals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radarcast.parallel.engine import Progress, Runner
from radarcast.parallel.forecast import open_on_worker


@dataclass(frozen=True)
class ScoreShard:
    dataset: str
    content_hash: str
    plan: object  # radarcast.evaluation.EvaluationPlan
    starts: np.ndarray  # (n,) this shard's windows


def score_shard(shard: ScoreShard) -> list:
    """Run in a worker: the shard's :class:`~radarcast.evaluation.MethodScores`."""
    from radarcast.evaluation import score
    from radarcast.parallel.engine import shard_progress

    with open_on_worker(shard.dataset, shard.content_hash) as ds:
        return score(shard.plan, ds, shard.starts, progress=shard_progress)


def merge_methods(shards: list[list]) -> list:
    """Merge per-shard method scores, in window order, pairwise as a tree (each window's
    arrays are copied about log2(shards) times): every field with a ``merge`` (each
    accumulator, whatever kinds a method keeps) is merged; the other fields must agree."""
    while len(shards) > 1:
        pairs = [shards[i : i + 2] for i in range(0, len(shards), 2)]
        shards = [_merge_two(*p) if len(p) == 2 else p[0] for p in pairs]
    return list(shards[0])


def _merge_two(first: list, second: list) -> list:
    out = []
    for a, b in zip(first, second, strict=True):
        changes = {}
        for f in dataclasses.fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if hasattr(x, "merge"):
                changes[f.name] = x.merge(y)
            elif x != y:
                raise AssertionError(f"shards disagree on {f.name}: {x!r} != {y!r}")
        out.append(dataclasses.replace(a, **changes))
    return out


def evaluate_sharded(
    dataset_path, runner: Runner, methods: Sequence[str] = ("persistence",),
    forecasts: Sequence = (), *, bootstrap: int = 0, seed: int = 0,
    progress: Progress | None = None, **plan_kw,
):
    """:func:`radarcast.evaluation.evaluate` with the windows spread over ``runner``'s
    workers; the same :class:`~radarcast.evaluation.Scores` bit for bit. ``plan_kw`` are
    evaluate's thresholds, units, preset, split, n_in, n_out, limit and options."""
    from radarcast.data.store import open_dataset
    from radarcast.evaluation import _batches, finish, plan_evaluation
    from radarcast.evaluation.scoring import _held_maps

    path = str(Path(dataset_path).resolve())
    with open_dataset(path) as ds:
        plan, sources = plan_evaluation(ds, methods, forecasts, **plan_kw)
        maps = _held_maps(ds, sources, plan.n_out)
        for s in sources:
            if "file" in s:
                s["file"].close()
        # shards hold whole scoring batches, so that their sums add up in the same order
        unit = len(_batches(ds, plan.starts, plan.n_in + plan.n_out, maps, plan.n_out)[0])
        ident = ds.identity(fingerprint=False)
    # workers may run elsewhere: absolute paths for them, the names as given in the results
    far = dataclasses.replace(plan, forecasts=tuple(str(Path(f).resolve()) for f in forecasts))
    runner.check_paths(readable=[path, *far.forecasts])
    shards = [
        ScoreShard(path, ident["content_hash"], far, plan.starts[a:b])
        for a, b in runner.shards(len(plan.starts), unit=unit)
    ]
    parts = runner.map(score_shard, shards, [len(s.starts) for s in shards], progress)
    results = [
        dataclasses.replace(m, name=s["name"], source=s["source"], config=s["config"])
        for m, s in zip(merge_methods(parts), sources, strict=True)
    ]
    with open_dataset(path) as ds:
        return finish(plan, ds, results, bootstrap, seed)
