"""A report's results as Markdown tables (for docs written from a study, numbers untouched by
hand): ``radarcast report STUDY/report.json -o tables.md``."""

from __future__ import annotations

import re


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


NO_CI = " [–]"  # an interval withheld: the scheme had too few independent units


def _ci(pair, digits: int = 3, gap: str = "") -> str:
    return (gap if not pair or pair[0] is None
            else f" [{_f(pair[0], digits)}, {_f(pair[1], digits)}]")


def _signed(v, pair, gap: str = "") -> str:
    if v is None:
        return "–"
    return f"{v:+.3f}" + (gap if not pair or pair[0] is None
                          else f" [{pair[0]:+.3f}, {pair[1]:+.3f}]")


def results_markdown(doc: dict) -> str:
    """Per group (pooled first): CSI and HSS with 95% intervals per threshold, the paired
    CSI difference to the reference, MSE and B-MSE, FSS at the largest scale and CRPS with
    their intervals (where evaluate scored them); then the training table. Where a group's
    bootstrap scheme withheld its intervals (too few independent units), "[–]" stands for
    each and a footnote under the table says why."""
    from radarcast.study.render import no_interval

    res = doc["results"]
    thr, ref = res["thresholds"]["labels"], res["reference"]
    groups = res["groups"]
    order = (["pooled"] if "pooled" in groups else []) + [g for g in groups if g != "pooled"]
    out = []
    for g in order:
        grp = groups[g]
        scales = next((r["fss_scales_px"] for r in grp["methods"].values()
                       if r.get("fss_scales_px")), None)
        out.append(f"### {g} ({grp['windows']} windows)\n")
        why = no_interval(grp, res)
        gap = NO_CI if why else ""
        head = [*(f"CSI ≥ {t}" for t in thr), *(f"HSS ≥ {t}" for t in thr[:2]),
                *(f"CSI − {ref}, ≥ {t}" for t in thr[:2]), "MSE", "B-MSE"]
        if scales:
            head += [*(f"FSS {scales[-1]} px ≥ {t}" for t in thr[:2]), "CRPS"]
        out.append("| method | " + " | ".join(head) + " |")
        out.append("|---" * (len(head) + 1) + "|")
        for name, r in grp["methods"].items():
            cells = [_f(r["csi"][k]) + _ci((r.get("csi_ci") or [None] * len(thr))[k], gap=gap)
                     for k in range(len(thr))]
            cells += [_f(r["hss"][k]) for k in range(min(2, len(thr)))]
            for k in range(min(2, len(thr))):
                cells.append("–" if name == ref else _signed(
                    (r.get(f"csi_minus_{ref}") or [None] * len(thr))[k],
                    (r.get(f"csi_minus_{ref}_ci") or [None] * len(thr))[k], gap))
            cells += [_f(r.get("mse"), 5), _f(r.get("b_mse"), 5)]
            if scales:
                fss = r.get("fss") or [[None] * len(scales)] * len(thr)
                fss_ci = r.get("fss_ci") or [[None] * len(scales)] * len(thr)
                cells += [_f(fss[k][-1]) + _ci(fss_ci[k][-1], gap=gap if r.get("fss") else "")
                          for k in range(min(2, len(thr)))]
                cells.append(_f(r.get("crps"), 4)
                             + _ci(r.get("crps_ci"), 4, gap if r.get("crps") is not None else ""))
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        if why:
            out.append(f"\n[–]: no 95% interval, {why} (docs/metrics.md, Bootstrap).")
        out.append("")
    training = doc.get("training") or {}
    if training:
        out.append("| run | steps | training (s) | s / step (probe) | best validation loss |")
        out.append("|---|---|---|---|---|")
        for key, r in training.items():
            out.append(f"| {key} | {r.get('steps')} | {_f(r.get('train_s'), 1)} | "
                       f"{_f(r.get('probe_s_per_step'), 4)} | {_f(r.get('best_val'), 4)} |")
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- numbers for prose
BEGIN = "<!-- generated from"  # the line that opens a generated-tables block
END = "<!-- end of generated tables -->"
NUMBER = re.compile(r"<!--n:([^>]+?)-->(.*?)<!--/n-->", re.S)
DIGITS = {"crps": 4, "brier": 4, "mse": 5, "b_mse": 5, "mae": 4, "b_mae": 4, "best_val": 4,
          "probe_s_per_step": 4, "train_s": 1, "minutes": 2}


def _fmt(key: str, v, signed: bool) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool) or (isinstance(v, int) and not signed):
        return str(v)
    d = DIGITS.get(key, 3)
    return f"{v:+.{d}f}" if signed else f"{v:.{d}f}"


def _pair(key: str, p, signed: bool) -> str:
    if not p or p[0] is None:
        return "–"
    return f"[{_fmt(key, p[0], signed)}, {_fmt(key, p[1], signed)}]"


def _cell(score: str, v, ci: bool, signed: bool) -> str:
    return _pair(score, v, signed) if ci else _fmt(score, v, signed)


def numbers(doc: dict) -> dict[str, str]:
    """Every number of a study's report.json under a stable key, formatted as the docs
    print it: ``GROUP/ROW/SCORE@THRESHOLD`` (``fss@THRESHOLD/SCALEpx``), ``…_ci`` for its
    95% interval, ``…_minus_REF`` for a paired difference (signed); ``GROUP/windows``;
    ``train/FOLD/ROW/steps|train_s|probe_s_per_step|best_val``; ``seconds/STAGE`` and
    ``seconds/total`` (timing.json of the run); ``version/PACKAGE``, ``machine``."""
    res = doc["results"]
    thr = [f"{v:g}" for v in res["thresholds"]["values"]]
    out: dict[str, str] = {}
    for g, grp in res["groups"].items():
        out[f"{g}/windows"] = str(grp["windows"])
        for name, row in grp["methods"].items():
            scales = row.get("fss_scales_px") or []
            for key, v in row.items():
                base = key[:-3] if key.endswith("_ci") else key
                score = base.split("_minus_")[0]
                if key.endswith("_per_lead") or key in ("fss_all", "fss_scales_px",
                                                        "fss_scales_km") or v is None:
                    continue
                signed, ci = "_minus_" in base, key.endswith("_ci")
                at = f"{g}/{name}/{key}"
                if score == "fss" and isinstance(v, list):
                    for k, per in enumerate(v):
                        for j, x in enumerate(per or []):
                            if j < len(scales):
                                out[f"{at}@{thr[k]}/{scales[j]}px"] = _cell(score, x, ci,
                                                                            signed)
                elif isinstance(v, list) and len(v) == len(thr) and not (ci and score == "crps"):
                    for k, x in enumerate(v):
                        out[f"{at}@{thr[k]}"] = _cell(score, x, ci, signed)
                elif isinstance(v, (int, float)) or ci:
                    out[at] = _cell(score, v, ci, signed)
    for run, r in (doc.get("training") or {}).items():
        for key in ("steps", "train_s", "probe_s_per_step", "best_val", "minutes"):
            if r.get(key) is not None:
                out[f"train/{run}/{key}"] = _fmt(key, r[key], False)
    for stage, s in (doc.get("timing") or {}).items():
        out[f"seconds/{stage}"] = f"{s:.1f}"
    if doc.get("timing"):
        out["seconds/total"] = f"{sum(doc['timing'].values()):.1f}"
    man = doc.get("manifest") or {}
    for pkg, v in (man.get("versions") or {}).items():
        out[f"version/{pkg}"] = str(v)
    if man.get("machine"):
        out["machine"] = man["machine"]
    return out


def update_markdown(text: str, doc: dict, where: str = "the document") -> str:
    """``text`` with its generated-tables block (from a line starting ``<!-- generated
    from`` to ``<!-- end of generated tables -->``) made again from ``doc``, and every
    marked number ``<!--n:KEY-->…<!--/n-->`` set to :func:`numbers`' KEY. A key that the
    report lacks is a RadarcastError naming it (nothing is changed)."""
    from radarcast.errors import RadarcastError

    table = numbers(doc)
    unknown = [m.group(1) for m in NUMBER.finditer(text) if m.group(1).strip() not in table]
    if unknown:
        raise RadarcastError(f"{where}: marked number <!--n:{unknown[0]}--> is not in the "
                             f"report ({len(table)} keys; list them with --keys)")
    text = NUMBER.sub(lambda m: f"<!--n:{m.group(1)}-->{table[m.group(1).strip()]}<!--/n-->",
                      text)
    lines = text.split("\n")
    begin = next((i for i, ln in enumerate(lines) if ln.startswith(BEGIN)), None)
    if begin is None:
        return text
    end = next((i for i in range(begin + 1, len(lines)) if lines[i].startswith(END)), None)
    if end is None:
        raise RadarcastError(f"{where}: a generated-tables block opens at line {begin + 1} "
                             f"but has no closing {END!r} line")
    tables = results_markdown(doc).rstrip("\n").split("\n")
    return "\n".join([*lines[: begin + 1], *tables, *lines[end:]])
