"""report.json → one self-contained HTML page (no scripts, no network; images as data URIs)."""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path

from radarcast.study.svg import line_plot

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.86em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.pos{color:#0a6b22}.neg{color:#a31515}.plots{display:flex;flex-wrap:wrap;gap:1em}
.case{margin:1em 0}.case img{max-width:100%;border:1px solid #ddd}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}
.note{color:#555;font-size:.9em}td.text{text-align:left;white-space:normal}
"""


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def svg_img(svg: str, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="{data_uri(svg.encode(), "image/svg+xml")}">'


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


NO_CI = " <span class=note>[–]</span>"  # an interval withheld: too few independent units


def no_interval(grp: dict, res: dict) -> str | None:
    """Why a group has no intervals (its bootstrap scheme's ``no_interval``), or None. A group
    without its own scheme (an older report) takes the results' one."""
    boot = grp.get("bootstrap") or res.get("bootstrap") or {}
    return (boot.get("scheme") or {}).get("no_interval")


def _ci(pair, digits: int = 3, gap: str = "") -> str:
    if not pair or pair[0] is None:
        return gap
    return f" <span class=note>[{_f(pair[0], digits)}, {_f(pair[1], digits)}]</span>"


def _signed(v, pair, digits: int = 3, lower_is_better: bool = False, gap: str = "") -> str:
    """A difference to the reference with its interval: green where the interval says
    better (above 0, or below 0 for a score where lower is better), red where worse."""
    if v is None:
        return "–"
    cls = ""
    if pair and pair[0] is not None:
        above, below = pair[0] > 0, pair[1] < 0
        if lower_is_better:
            above, below = below, above
        cls = "pos" if above else "neg" if below else ""
    return f'<span class="{cls}">{v:+.{digits}f}</span>{_ci(pair, digits, gap)}'


def render_html(doc: dict, images: dict[str, Path]) -> str:
    """The report page of a study report.json (or of ``radarcast report``'s document)."""
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>"
             f"{escape(doc.get('title', 'report'))}</title><style>{STYLE}</style></head><body>",
             f"<h1>{escape(doc.get('title', 'report'))}</h1>"]
    if doc.get("question"):
        parts.append(f"<p><b>Question.</b> {escape(doc['question'])}</p>")
    if doc.get("credits"):
        parts.append(f"<p class=note>{escape(doc['credits'])}</p>")
    if doc.get("sources"):
        parts.append("<p class=note>Scores from: " + ", ".join(
            escape(s) for s in doc["sources"]) + "</p>")
    if doc.get("data"):
        parts.append(data_section(doc))
    if doc.get("study"):
        parts.append(methods_section(doc))
    parts.append(results_section(doc["results"]))
    if doc.get("cases"):
        parts.append(cases_section(doc["cases"], images))
    if doc.get("training"):
        parts.append(training_section(doc["training"]))
    parts.append(conventions_section(doc))
    if doc.get("manifest"):
        parts.append(manifest_section(doc))
    parts.append("</body></html>")
    return "".join(parts)


def _table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{c}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def data_section(doc: dict) -> str:
    rows = [[escape(d["label"]), _short(d["source"]), f"{d['grid'][0]}×{d['grid'][1]}",
             str(d["frames"]), f"{d['first']} – {d['last']}",
             escape(", ".join(f"{k}: {v}" for k, v in d["roles"].items())),
             str(d["test_windows"])] for d in doc["data"]]
    s = doc["study"]["study"]
    return ("<h2>Data and split</h2>" + _table(
        ["event", "source", "grid", "frames", "time (UTC)", "role per fold", "test windows"],
        rows) + f"<p class=note>Split mode: {escape(s['split'])}; windows of {s['n_in']} frames"
        f" in → {s['n_out']} out, every start. No test window lies within n_in + n_out frames"
        " of a frame seen in training or validation (checked before training).</p>")


def _short(text: str, n: int = 60) -> str:
    """At most ``n`` characters (the end, where the file names are), the whole as a tooltip."""
    shown = text if len(text) <= n else "…" + text[-n:]
    return f'<span title="{escape(text)}">{escape(shown)}</span>'


def methods_section(doc: dict) -> str:
    rows = []
    training = doc.get("training", {})
    for name, m in doc["study"]["methods"].items():
        runs = [r for r in training.values() if r["row"] == name or
                r["row"].startswith(f"{name}-s")]
        steps = ", ".join(str(r.get("steps")) for r in runs) or "–"
        secs = ", ".join(_f(r.get("train_s"), 0) for r in runs) or "–"
        members = {"members": m["members"]} if m.get("members") is not None else {}
        settings = {**m["train"], **members, **m["options"]}
        opts = json.dumps(settings) if settings else ""
        seeded = m["kind"] == "model" or members  # a model, an ensemble
        rows.append([escape(name), escape(m["kind"]), escape(m["preset"] or ""), steps, secs,
                     escape(",".join(str(x) for x in m["seeds"]) if seeded else ""),
                     escape(opts)])
    return "<h2>Methods</h2>" + _table(
        ["method", "kind", "preset", "steps", "training s", "seeds", "settings"], rows)


def results_section(res: dict) -> str:
    thr, ref = res["thresholds"], res["reference"]
    out = ["<h2>Results</h2><p class=note>Mean over lead times of the per-lead score (counts "
           "pooled over the windows of a lead), with 95% bootstrap intervals; Δ is the paired "
           f"difference to <b>{escape(ref)}</b> with its interval (the same resamples for "
           "every row and score). FSS, Brier and CRPS are evaluate's (scores.json, sums "
           "pooled over windows; an ensemble's FSS is that of its probability field, its "
           "CSI/HSS those of its mean); their intervals resample the same windows' sums. "
           "Green: the interval of Δ says better than the reference, red: worse (lower is "
           "better for Brier and CRPS).</p>"]
    groups = res["groups"]
    order = (["pooled"] if "pooled" in groups else []) + [g for g in groups if g != "pooled"]
    for g in order:
        grp = groups[g]
        out.append(f"<h3>{escape(g)} ({grp['windows']} windows)</h3>")
        why = no_interval(grp, res)
        gap = NO_CI if why else ""
        if why:
            out.append(f"<p class=note>[–]: no 95% interval, {escape(why)} (a resampling "
                       "interval from so few independent units would look precise without "
                       "being so; docs/metrics.md, Bootstrap).</p>")
        for k, label in enumerate(thr["labels"]):
            out.append(f"<h4>≥ {escape(label)}</h4>" + _threshold_table(grp, k, ref, gap))
        out.append(_continuous(grp, ref, gap))
        plots = [svg_img(line_plot(
            {n: (res["lead_min"], [_at(v, k) for v in r["csi_per_lead"]])
             for n, r in grp["methods"].items()},
            f"CSI ≥ {label}, {g}", "lead time (min)", "CSI"), f"CSI vs lead {label} {g}")
            for k, label in enumerate(thr["labels"])]
        out.append('<div class="plots">' + "".join(plots) + "</div>")
    return "".join(out)


def _threshold_table(grp: dict, k: int, ref: str, gap: str = "") -> str:
    """One threshold's table: CSI/HSS with intervals, their Δ to ``ref``, FSS per scale (and
    its Δ), and Brier (and its Δ) where a row is an ensemble; ``gap`` stands where an
    interval is missing (:data:`NO_CI` when the group's scheme withheld them)."""
    methods = grp["methods"]
    scales = next((r["fss_scales_px"] for r in methods.values() if r.get("fss_scales_px")), [])
    ensembles = any((r.get("members") or 1) > 1 for r in methods.values())
    rows = []
    for name, r in methods.items():
        cells = [escape(name) + (f" <span class=note>(M = {r['members']})</span>"
                                 if (r.get("members") or 1) > 1 else "")]
        for score in ("csi", "hss"):
            cells.append(_f(_at(r.get(score), k)) + _ci(_at(r.get(f"{score}_ci"), k), gap=gap))
        cells += [_f(_at(r.get("pod"), k)), _f(_at(r.get("far"), k)),
                  _f(_at(r.get("bias"), k))]
        mine = name == ref
        for score in ("csi", "hss"):
            cells.append("–" if mine else _signed(_at(r.get(f"{score}_minus_{ref}"), k),
                                                  _at(r.get(f"{score}_minus_{ref}_ci"), k),
                                                  gap=gap))
        fss, dfss = _at(r.get("fss"), k), _at(r.get(f"fss_minus_{ref}"), k)
        fss_ci, dfss_ci = _at(r.get("fss_ci"), k), _at(r.get(f"fss_minus_{ref}_ci"), k)
        for j in range(len(scales)):
            cells.append(_f(_at(fss, j)) + _ci(_at(fss_ci, j), gap=gap if fss else "") + (
                "" if mine or dfss is None
                else f" <br>Δ {_signed(_at(dfss, j), _at(dfss_ci, j), gap=gap)}"))
        if ensembles:
            cells.append(_f(_at(r.get("brier"), k), 4)
                         + _ci(_at(r.get("brier_ci"), k), 4, gap if r.get("brier") else ""))
            cells.append("–" if mine else _signed(_at(r.get(f"brier_minus_{ref}"), k),
                                                  _at(r.get(f"brier_minus_{ref}_ci"), k), 4,
                                                  lower_is_better=True, gap=gap))
        rows.append(cells)
    head = ["method", "CSI", "HSS", "POD", "FAR", "bias", f"Δ CSI vs {escape(ref)}",
            f"Δ HSS vs {escape(ref)}", *(f"FSS {n} px (Δ)" for n in scales)]
    if ensembles:
        head += ["Brier", f"Δ Brier vs {escape(ref)}"]
    return _table(head, rows)


def _at(v, k):
    return None if v is None else v[k]


def _continuous(grp: dict, ref: str, gap: str = "") -> str:
    rows = [[escape(n), _f(r.get("mse"), 5), _f(r.get("b_mse"), 5), _f(r.get("mae"), 4),
             _f(r.get("crps"), 4) + _ci(r.get("crps_ci"), 4,
                                        gap if r.get("crps") is not None else ""),
             "–" if n == ref else _signed(r.get(f"crps_minus_{ref}"),
                                          r.get(f"crps_minus_{ref}_ci"), 4, True, gap),
             _f(r.get("spread_skill")), _f(r.get("rank_flatness"))]
            for n, r in grp["methods"].items()]
    return _table(["method", "MSE", "B-MSE", "MAE", "CRPS", f"Δ CRPS vs {escape(ref)}",
                   "spread–skill", "rank flatness"], rows)


def cases_section(cases: list[dict], images: dict[str, Path]) -> str:
    out = ["<h2>Cases</h2><p class=note>Panels: input, truth, then each method. The second "
           "animation colours each method's forecast as hits, misses and false alarms against "
           "the truth at the overlay threshold.</p>"]
    for i, c in enumerate(cases):
        title = c["title"] or f"{c['dataset']}, test window {c['window']}"
        out.append(f'<div class="case"><h3>{escape(title)}</h3><p class=note>'
                   f"methods: {escape(', '.join(c['methods']))}; overlay ≥ {c['overlay']:g} "
                   f"{escape(c['overlay_units'])}</p>")
        for tag in ("plain", "overlay"):
            data = Path(images[f"case{i}_{tag}"]).read_bytes()
            out.append(f'<div><img alt="case {i} {tag}"{_zoom(data)} '
                       f'src="{data_uri(data, "image/gif")}"></div>')
        out.append("</div>")
    return "".join(out)


ZOOM_BELOW = 1200  # a case animation narrower than this many pixels is shown twice as large


def _zoom(gif: bytes) -> str:
    """A width attribute showing a small GIF at twice its size, its pixels kept sharp (the
    study encodes panels small: the width is in the GIF's logical screen descriptor)."""
    width = int.from_bytes(gif[6:8], "little")
    if not 0 < width < ZOOM_BELOW // 2:
        return ""
    return f' width="{2 * width}" style="image-rendering:pixelated"'


def training_section(training: dict) -> str:
    folds = sorted({r["fold"] for r in training.values()})
    out = ["<h2>Training curves</h2><p class=note>Loss of each optimizer step and of each "
           "validation (metrics.jsonl of every run; checkpoints kept under runs/).</p>"]
    for f in folds:
        runs = {r["row"]: r for r in training.values() if r["fold"] == f}
        out.append('<div class="plots">')
        out.append(svg_img(line_plot({n: (r["train_loss"]["step"], r["train_loss"]["loss"])
                                      for n, r in runs.items()}, f"training loss ({f})",
                                     "step", "loss"), f"training loss {f}"))
        out.append(svg_img(line_plot({n: (r["val_loss"]["step"], r["val_loss"]["loss"])
                                      for n, r in runs.items()}, f"validation loss ({f})",
                                     "step", "loss"), f"validation loss {f}"))
        out.append("</div>")
    return "".join(out)


def conventions_section(doc: dict) -> str:
    from radarcast.evaluation import CONVENTIONS

    conv = doc.get("conventions") or CONVENTIONS
    boot = doc["results"].get("bootstrap") or {}
    items = [*conv.items(), *((f"bootstrap {k}", v) for k, v in boot.items())]
    rows = "".join(f"<tr><td>{escape(k)}</td><td class=text>{escape(str(v))}</td></tr>"
                   for k, v in items)
    return (f"<h2>Conventions</h2><table><thead><tr><th>convention</th><th>what</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")


def manifest_section(doc: dict) -> str:
    man = doc["manifest"]
    rows = [[escape(k), escape(str(v))] for k, v in man["versions"].items()]
    rows += [["machine", escape(man["machine"])], ["git commit", escape(str(man["git_commit"]))],
             ["study file", escape(man["study_file"])], ["study digest", man["study_digest"]]]
    data = [[escape(d["name"]), d["content_hash"], d["file_sha256"],
             escape(json.dumps(d["units"]))] for d in doc["data"]]
    units = [[escape(u), e["key"], escape(str(e["done_at"])), str(len(e["outputs"]))]
             for u, e in sorted(man["units"].items())]
    return ("<h2>Manifest</h2>" + _table(["", ""], rows) +
            _table(["dataset", "content hash", "file sha256", "units"], data) +
            "<details><summary>units of work</summary>" +
            _table(["unit", "key", "done", "files"], units) + "</details>" +
            f"<details><summary>study file</summary><pre>{escape(man['study_text'])}</pre>"
            "</details>")
