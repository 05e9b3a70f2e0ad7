"""A report's results as Markdown tables (for docs written from a study, numbers untouched by
hand): ``radarcast report STUDY/report.json -o tables.md``."""

from __future__ import annotations


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _ci(pair) -> str:
    return "" if not pair or pair[0] is None else f" [{_f(pair[0])}, {_f(pair[1])}]"


def _signed(v, pair) -> str:
    if v is None:
        return "–"
    return f"{v:+.3f}" + ("" if not pair or pair[0] is None
                          else f" [{pair[0]:+.3f}, {pair[1]:+.3f}]")


def results_markdown(doc: dict) -> str:
    """Per group (pooled first): CSI and HSS with 95% intervals per threshold, the paired
    CSI difference to the reference, MSE and B-MSE, FSS at the largest scale and CRPS (where
    evaluate scored them); then the training table."""
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
        head = [*(f"CSI ≥ {t}" for t in thr), *(f"HSS ≥ {t}" for t in thr[:2]),
                *(f"CSI − {ref}, ≥ {t}" for t in thr[:2]), "MSE", "B-MSE"]
        if scales:
            head += [*(f"FSS {scales[-1]} px ≥ {t}" for t in thr[:2]), "CRPS"]
        out.append("| method | " + " | ".join(head) + " |")
        out.append("|---" * (len(head) + 1) + "|")
        for name, r in grp["methods"].items():
            cells = [_f(r["csi"][k]) + _ci((r.get("csi_ci") or [None] * len(thr))[k])
                     for k in range(len(thr))]
            cells += [_f(r["hss"][k]) for k in range(min(2, len(thr)))]
            for k in range(min(2, len(thr))):
                cells.append("–" if name == ref else _signed(
                    (r.get(f"csi_minus_{ref}") or [None] * len(thr))[k],
                    (r.get(f"csi_minus_{ref}_ci") or [None] * len(thr))[k]))
            cells += [_f(r.get("mse"), 5), _f(r.get("b_mse"), 5)]
            if scales:
                fss = r.get("fss") or [[None] * len(scales)] * len(thr)
                cells += [_f(fss[k][-1]) for k in range(min(2, len(thr)))]
                cells.append(_f(r.get("crps"), 4))
            out.append(f"| {name} | " + " | ".join(cells) + " |")
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
