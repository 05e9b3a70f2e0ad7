"""The evaluate stage: every row scored by ``radarcast evaluate``'s own code on the same
windows of each test event, then all test events pooled, with paired bootstrap intervals
(radarcast.evaluation's) of each score and of each row's difference to the reference.

Writes ``evaluate/FOLD/EVENT/{scores.json, scores.csv, skill.png}`` (as ``evaluate`` does)
and ``evaluate/results.json``: every number the report shows.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np

from radarcast.study.config import Study, hash_json
from radarcast.study.manifest import Manifest, write_atomic

GROUP_OFFSET = 10_000_000  # window ids of event k start at k × this, so events stay apart


def evaluate_unit(study: Study, out: Path, plan: list[tuple], m: Manifest, emit) -> Path:
    """Score every (fold, event, forecast files) of ``plan``; skipped when unchanged."""
    s = study.settings
    path = out / "evaluate" / "results.json"
    units = sorted({u for p in plan for u in p["units"]})
    key = hash_json({"inputs": [m.output_hash(u) for u in units],
                     "plan": [(p["fold"].name, p["event"], [str(f.relative_to(out))
                                                              for f in p["files"]])
                              for p in plan],
                     "scoring": [s.thresholds, s.units, s.preset, s.fss_scales, s.bootstrap,
                                 s.seed, s.reference, s.n_in, s.n_out, s.bootstrap_unit]})
    if m.done("evaluate", key):
        return path
    groups, written, per_event = {}, [], []
    for p in plan:
        fold, event, files = p["fold"], p["event"], p["files"]
        emit(f"evaluate {event} ({fold.name}): {len(files) + 1} methods")
        scores = score_event(study, p["dataset"], files)
        folder = out / "evaluate" / fold.name / event
        written += list(scores.write(folder, overwrite=True).values())
        groups[event] = summarise(scores, s.reference,
                                  _extras(folder / "scores.json", s.reference))
        groups[event]["fold"] = fold.name
        per_event.append(scores)
    if len(per_event) > 1:
        pooled = pool(per_event, s)
        groups["pooled"] = summarise(pooled, s.reference, _extras_of(pooled, s.reference))
        groups["pooled"]["fold"] = "all"
    first = per_event[0]
    doc = {"schema": "radarcast-study-results/1", "reference": s.reference,
           "thresholds": {"values": list(first.thresholds.values),
                          "units": first.thresholds.unit,
                          "labels": first.thresholds.labels},
           "lead_min": first.lead_min, "bootstrap": _boot_meta(first.bootstrap),
           "groups": groups}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(doc, indent=1))
    m.finish("evaluate", key, [path, *written])
    return path


def score_event(study: Study, dataset: Path, files: list[Path]):
    """``evaluate`` on one test event: persistence live, every other row from its file."""
    from radarcast.data.store import open_dataset
    from radarcast.evaluation import bootstrap_intervals, evaluate

    s = study.settings
    kwargs = dict(split="test", n_in=s.n_in, n_out=s.n_out)
    if s.preset:
        kwargs["preset"] = s.preset
    else:
        kwargs.update(thresholds=list(s.thresholds), units=s.units)
    if "fss_scales" in inspect.signature(evaluate).parameters:
        kwargs["fss_scales"] = list(s.fss_scales)
    scores = evaluate(dataset, ["persistence"], files, **kwargs)
    with open_dataset(dataset) as ds:
        scores.segments = ds.segments[scores.starts]  # for the block/segment bootstrap
    if s.bootstrap:
        scores.bootstrap = bootstrap_intervals(
            scores.methods, s.bootstrap, s.seed, against=(s.reference,), starts=scores.starts,
            segments=scores.segments, length=s.n_in + s.n_out, unit=s.bootstrap_unit)
    return scores


def pool(per_event: list, s):
    """One Scores over the windows of all test events (accumulators merged, ids kept apart)."""
    import copy
    import dataclasses

    from radarcast.evaluation import MethodScores, bootstrap_intervals

    names = [mm.name for mm in per_event[0].methods
             if all(mm.name in [x.name for x in sc.methods] for sc in per_event)]
    methods = []
    for name in names:
        acc = None
        for k, sc in enumerate(per_event):
            a = sc.method(name).acc
            part = dataclasses.replace(a, window_ids=[k * GROUP_OFFSET + i for i in a.window_ids],
                                       _counts=[a.counts], _sums=[a.sums])
            acc = part if acc is None else acc.merge(part)
        probs = [sc.method(name).prob for sc in per_event]
        prob = None
        if all(p is not None for p in probs):  # sums pooled over the events' windows
            for k, p in enumerate(probs):  # window ids kept apart, as the counts' are
                part = copy.deepcopy(p).offset_windows(k * GROUP_OFFSET)
                prob = part if prob is None else prob.merge(part)
        methods.append(MethodScores(name, "pooled", {}, acc, prob=prob))
    starts = np.concatenate([sc.starts + k * GROUP_OFFSET for k, sc in enumerate(per_event)])
    segments = np.concatenate([sc.segments + k * GROUP_OFFSET for k, sc in enumerate(per_event)])
    pooled = dataclasses.replace(per_event[0], methods=methods, starts=starts,
                                 dataset={"path": "pooled test events"})
    if s.bootstrap:  # events stay apart: their windows never share a block or segment
        pooled.bootstrap = bootstrap_intervals(
            methods, s.bootstrap, s.seed, against=(s.reference,), starts=starts,
            segments=segments, length=s.n_in + s.n_out, unit=s.bootstrap_unit)
    return pooled


def _pairs(iv: dict | None) -> list | None:
    if not iv:
        return None
    return [[_num(lo), _num(hi)] for lo, hi in zip(iv["low"], iv["high"], strict=True)]


def interval_pairs(iv: dict | None):
    """An interval {"low", "high"} of any shape as nested lists whose leaves are
    [low, high] pairs (a scalar → [low, high]; (K,) → K pairs; (K, S) → K lists of S)."""
    if not iv:
        return None

    def pair(lo, hi):
        if np.ndim(lo) == 0:
            return [_num_or_none(lo), _num_or_none(hi)]
        return [pair(a, b) for a, b in zip(lo, hi, strict=True)]

    return pair(iv["low"], iv["high"])


def _num_or_none(v):
    return None if v is None else _num(v)


PROB_SCORES = ("fss", "crps", "brier")  # intervals from per-window sums (evaluation.bootstrap)


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None


def _list(a) -> list:
    a = np.asarray(a, dtype=float)
    return np.where(np.isfinite(a), a, np.nan).tolist()


def summarise(scores, reference: str, extras: dict) -> dict:
    """Plain numbers of one Scores: per row mean-over-leads and per-lead scores, 95%
    intervals, differences to persistence and the reference."""
    boot = (scores.bootstrap or {}).get("methods", {})
    out = {"windows": int(len(scores.starts)), "dataset": scores.dataset, "methods": {}}
    for mm in scores.methods:
        r = mm.result()
        b = boot.get(mm.name, {})
        row = {"source": mm.source, "reference_only": mm.reference_only}
        for score in ("csi", "hss", "pod", "far", "ets", "bias"):
            row[score] = _clean(r[f"{score}_mean_over_leads"])
            row[f"{score}_per_lead"] = _clean(r[score])
        for score in ("mse", "mae", "b_mse", "b_mae"):
            row[score] = _num(r[f"{score}_mean_over_leads"])
        for score in ("csi", "hss"):
            row[f"{score}_ci"] = _pairs(b.get(score))
            for ref in ("persistence", reference):
                if ref != mm.name and f"{score}_minus_{ref}" in b:
                    row[f"{score}_minus_{ref}_ci"] = _pairs(b[f"{score}_minus_{ref}"])
                    row[f"{score}_minus_{ref}"] = _diff(scores, mm.name, ref, score)
        for score in PROB_SCORES:  # FSS (K, S), CRPS (scalar), Brier (K): where kept
            if score in b:
                row[f"{score}_ci"] = interval_pairs(b[score])
            for ref in ("persistence", reference):
                if ref != mm.name and f"{score}_minus_{ref}" in b:
                    row[f"{score}_minus_{ref}_ci"] = interval_pairs(b[f"{score}_minus_{ref}"])
        row.update(extras.get(mm.name, {}))
        out["methods"][mm.name] = row
    return out


def _diff(scores, name: str, ref: str, score: str) -> list:
    a = scores.method(name).result()[f"{score}_mean_over_leads"]
    b = scores.method(ref).result()[f"{score}_mean_over_leads"]
    return _clean(np.asarray(a) - np.asarray(b))


def _clean(a):
    a = np.asarray(a, dtype=float)
    return [_clean(x) for x in a] if a.ndim else _num(a)


def _extras(scores_json: Path, reference: str) -> dict:
    """Per row, the probabilistic and spatial scores that ``evaluate`` wrote beside CSI/HSS
    into its scores.json (its ``probabilistic`` document), as :func:`probabilistic` reads
    them; the report shows these very numbers."""
    doc = json.loads(scores_json.read_text())
    refs = ("persistence", reference)
    return {m["name"]: probabilistic(m, doc["methods"], refs) for m in doc.get("methods", [])}


def _extras_of(scores, reference: str) -> dict:
    """:func:`_extras` of a Scores that is not written (the pooled events)."""
    docs = [{"name": m.name, "probabilistic": m.prob.doc() if m.prob else None}
            for m in scores.methods]
    return {d["name"]: probabilistic(d, docs, ("persistence", reference)) for d in docs}


FSS_KIND = {1: "deterministic"}  # an ensemble's FSS row: its probability field (k/M)


def probabilistic(mdoc: dict, methods: list[dict], refs=("persistence",)) -> dict:
    """The report's fields from one method entry of scores.json: ``members``, ``crps`` (mean
    over leads, value unit) and ``crps_per_lead``, ``brier`` and ``roc_area`` (per
    threshold), ``spread_skill`` and ``rank_flatness``, ``fss`` (threshold × scale, mean over
    leads, of the probability field for an ensemble, else of the forecast itself) and
    ``fss_all`` (every kind evaluate scored), and point differences ``crps_minus_X``,
    ``brier_minus_X``, ``fss_minus_X`` to each method X in ``refs``. Empty without the document."""
    p = mdoc.get("probabilistic")
    if not p:
        return {}
    mean, lead = p["mean_over_leads"], p["per_lead"]
    kind = FSS_KIND.get(p["members"], "probability")
    row = {"members": p["members"], "crps": mean["crps"], "crps_per_lead": lead["crps"],
           "brier": mean["brier"], "roc_area": mean["roc_area"],
           "rank_flatness": mean["rank_flatness"], "fss_kind": kind,
           "fss": mean["fss"].get(kind), "fss_all": mean["fss"],
           "fss_scales_px": p["fss_scales_px"], "fss_scales_km": p.get("fss_scales_km"),
           "spread_skill": _mean(lead["spread_skill"])}
    for other in methods:
        q = other.get("probabilistic")
        if other["name"] == mdoc["name"] or other["name"] not in refs or not q:
            continue
        qm = q["mean_over_leads"]
        qkind = FSS_KIND.get(q["members"], "probability")
        ref = other["name"]
        row[f"crps_minus_{ref}"] = _sub(row["crps"], qm["crps"])
        row[f"brier_minus_{ref}"] = _sub(row["brier"], qm["brier"])
        row[f"fss_minus_{ref}"] = _sub(row["fss"], qm["fss"].get(qkind))
    return row


def _mean(values) -> float | None:
    a = np.array([np.nan if v is None else v for v in values], dtype=float)
    return _num(np.nanmean(a)) if np.isfinite(a).any() else None


def _sub(a, b):
    """a − b elementwise over nested lists; None where either is None."""
    if a is None or b is None:
        return None
    if isinstance(a, list):
        return [_sub(x, y) for x, y in zip(a, b, strict=True)]
    return a - b


def _boot_meta(b: dict) -> dict:
    return {k: v for k, v in (b or {}).items() if k != "methods"}


def summarise_json(doc: dict) -> dict:
    """The summary of :func:`summarise` from a scores.json of ``radarcast evaluate`` (its
    intervals where it was run with --bootstrap)."""
    boot = (doc.get("bootstrap") or {}).get("methods", {})
    out = {"windows": len(doc["window_starts"]), "dataset": doc["dataset"], "methods": {}}
    for mdoc in doc["methods"]:
        mean, lead = mdoc["mean_over_leads"], mdoc["per_lead"]
        b = boot.get(mdoc["name"], {})
        row = {"source": mdoc["source"], "reference_only": mdoc.get("reference_only", False)}
        for score in ("csi", "hss", "pod", "far", "ets", "bias"):
            row[score] = mean.get(score)
            row[f"{score}_per_lead"] = lead.get(score)
        for score in ("mse", "mae", "b_mse", "b_mae"):
            row[score] = mean.get(score)
        for key, iv in b.items():
            if key.split("_minus_")[0] in PROB_SCORES:
                row[f"{key}_ci"] = interval_pairs(iv)
            else:
                row[f"{key}_ci"] = [list(p) for p in zip(iv["low"], iv["high"], strict=True)]
        for key in list(row):
            if (key.endswith("_ci") and "_minus_" in key
                    and key.split("_minus_")[0] not in PROB_SCORES):
                score, ref = key[:-3].split("_minus_")
                other = next((m for m in doc["methods"] if m["name"] == ref), None)
                if other is not None and row.get(score) is not None:
                    row[key[:-3]] = [None if a is None or c is None else a - c for a, c in
                                     zip(row[score], other["mean_over_leads"][score],
                                         strict=True)]
        row.update(probabilistic(mdoc, doc["methods"], ("persistence",)))
        out["methods"][mdoc["name"]] = row
    return out
