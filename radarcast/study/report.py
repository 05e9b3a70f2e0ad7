"""The study's report: ``report.json`` (every number) and ``report.html`` (self-contained:
styles, plots and animations inline as data URIs; nothing fetched from a network).

:func:`report_unit` is the study's last stage; :func:`report_from_scores` makes the same
page from scores.json files written by ``radarcast evaluate``.
"""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import numpy as np

from radarcast.study.config import Study, hash_json, to_json
from radarcast.study.manifest import Manifest, write_atomic
from radarcast.study.render import render_html

MAX_CURVE_POINTS = 300
PANEL_PX = 96  # a case panel's side in the GIF at least (grids smaller than this enlarged)


def report_unit(study: Study, out: Path, plan: list[dict], m: Manifest, emit):
    """report.html and report.json from evaluate/results.json, the runs and the cases."""
    html, js = out / "report.html", out / "report.json"
    key = hash_json({"evaluate": m.output_hash("evaluate"), "cases": to_json(study)["cases"],
                     "trains": sorted(m.output_hash(u) for u in m.data["units"]
                                      if u.startswith("train/")), "study": study.digest()})
    if m.done("report", key):
        return html, js
    emit("report")
    results = json.loads((out / "evaluate" / "results.json").read_text())
    group_schemes(study, out, results)
    doc = {
        "schema": "radarcast-study-report/1",
        "title": study.settings.name,
        "question": study.settings.question,
        "credits": study.settings.credits,
        "study": to_json(study),
        "data": data_table(study, out, plan, m),
        "results": results,
        "training": training_curves(out, m),
        "manifest": provenance(study, out, m),
    }
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    doc["cases"], images = cases(study, out, plan, results, figures)
    write_atomic(js, json.dumps(doc, indent=1, default=_plain))
    write_atomic(html, render_html(doc, images))
    m.finish("report", key, [html, js, *images.values()])
    return html, js


def group_schemes(study: Study, out: Path, results: dict) -> None:
    """Give each group of ``results`` its own bootstrap settings (``group["bootstrap"]``: the
    scheme, and why it has no interval where it has none): an event's from its scores.json,
    the pooled events' planned again from the events' windows, as
    :func:`radarcast.study.scoring.pool` resampled them (events kept apart)."""
    from radarcast.bootstrap import plan
    from radarcast.data.store import open_dataset
    from radarcast.errors import RadarcastError
    from radarcast.study.scoring import GROUP_OFFSET

    s = study.settings
    groups = results.get("groups", {})
    starts, segments = [], []
    for g, grp in groups.items():
        path = out / "evaluate" / str(grp.get("fold")) / g / "scores.json"
        if g == "pooled" or not path.is_file():
            continue
        doc = json.loads(path.read_text())
        if not doc.get("bootstrap"):
            return
        grp["bootstrap"] = {k: v for k, v in doc["bootstrap"].items() if k != "methods"}
        st = np.asarray(doc["window_starts"], dtype=np.int64)
        try:
            with open_dataset(Path(grp["dataset"]["path"])) as ds:
                seg = np.asarray(ds.segments)[st]
        except (OSError, RadarcastError):  # data gone: the pooled group keeps the first's
            return
        starts.append(st + len(starts) * GROUP_OFFSET)
        segments.append(seg + len(segments) * GROUP_OFFSET)
    if "pooled" in groups and starts:
        scheme, _ = plan(np.concatenate(starts), np.concatenate(segments), s.n_in + s.n_out,
                         s.bootstrap_unit)
        groups["pooled"]["bootstrap"] = {**(results.get("bootstrap") or {}),
                                         "scheme": scheme.to_dict(),
                                         "resampled": scheme.describe()}


def _plain(v):
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def data_table(study: Study, out: Path, plan: list[dict], m: Manifest) -> list[dict]:
    """One row per event: label, source, frames, time span, role per fold, test windows."""
    from radarcast.data.store import format_time, open_dataset
    from radarcast.study.data import folds, role_tag

    s = study.settings
    rows = []
    for name, spec in study.datasets.items():
        with open_dataset(out / "data" / f"{name}.h5") as ds:
            ident = ds.identity()
            row = {"name": name, "label": spec.label or name,
                   "source": m.info(f"prepare/{name}").get("source", ""),
                   "frames": int(ds.n_frames), "grid": [int(ds.height), int(ds.width)],
                   "timestep_s": int(ds.timestep_s),
                   "first": format_time(int(ds.times[0])), "last": format_time(int(ds.times[-1])),
                   "content_hash": ident["content_hash"],
                   "file_sha256": m.data["units"][f"prepare/{name}"]["outputs"][
                       f"data/{name}.h5"],
                   "units": ds.units.attrs()}
        row["roles"] = {f.name: role_tag(f.roles[name]) for f in folds(study)}
        row["test_windows"] = sum(len(np.atleast_1d(_starts(p["dataset"], s)))
                                  for p in plan if p["event"] == name)
        rows.append(row)
    return rows


def _starts(path: Path, s) -> np.ndarray:
    from radarcast.data.store import open_dataset

    with open_dataset(path) as ds:
        return ds.windows(s.n_in, s.n_out, "test")


def training_curves(out: Path, m: Manifest) -> dict:
    """Per run: steps, seconds, best validation, and its loss curves from metrics.jsonl."""
    runs = {}
    for unit, entry in sorted(m.data["units"].items()):
        if not unit.startswith("train/") or entry.get("state") != "done":
            continue
        _, fold, row = unit.split("/", 2)
        steps, loss, vsteps, vloss = [], [], [], []
        for line in (out / "runs" / fold / row / "metrics.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r.get("event") == "step":
                steps.append(r["step"])
                loss.append(r["loss"])
            elif r.get("event") == "val":
                vsteps.append(r["step"])
                vloss.append(r["val_loss"])
        every = max(1, len(steps) // MAX_CURVE_POINTS)
        runs[f"{fold}/{row}"] = {
            "fold": fold, "row": row, **entry.get("info", {}),
            "checkpoint": f"runs/{fold}/{row}/best.pt",
            "train_loss": {"step": steps[::every], "loss": loss[::every]},
            "val_loss": {"step": vsteps, "loss": vloss},
        }
    return runs


def provenance(study: Study, out: Path, m: Manifest) -> dict:
    """Versions, the git commit of the code, the study file and the manifest's units."""
    from importlib import metadata

    from radarcast import __version__

    versions = {"radarcast": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "torch", "h5py", "scikit-image", "imageio"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "versions": versions, "machine": platform.platform(), "git_commit": git_commit(),
        "study_file": str(study.path), "study_digest": study.digest(),
        "study_text": study.path.read_text(),
        "units": {u: {"key": e["key"], "state": e.get("state"), "done_at": e.get("done_at"),
                      "outputs": e.get("outputs", {})} for u, e in m.data["units"].items()},
    }


def git_commit() -> str | None:
    """The commit of the radarcast checkout running this; None outside a git checkout or
    where this code is not tracked by the repository around it (a copy in an ignored
    folder would otherwise report that repository's commit)."""
    here = Path(__file__).resolve().parent
    try:
        tracked = subprocess.run(["git", "-C", str(here), "ls-files", "--error-unmatch",
                                  Path(__file__).name], capture_output=True, timeout=10)
        if tracked.returncode != 0:
            return None
        r = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                           text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0:
        return None
    return r.stdout.strip() + (" (with local changes)" if dirty.stdout.strip() else "")


def pick_window(path: Path, s, kind, threshold_px: float) -> int:
    """Index of the test window to draw: a number, 'growth' (most wet area gained from t0 to
    the last lead) or 'wettest' (most wet area at t0)."""
    from radarcast.data.store import open_dataset
    from radarcast.errors import RadarcastError

    with open_dataset(path) as ds:
        starts = ds.windows(s.n_in, s.n_out, "test")
        if isinstance(kind, int):
            if not 0 <= kind < len(starts):
                raise RadarcastError(f"case window {kind} is out of range: {path.name} has "
                                     f"test windows 0..{len(starts) - 1}")
            return kind
        last = starts + s.n_in - 1  # t0 of each window: its last input frame
        end = starts + s.n_in + s.n_out - 1  # its last lead
        needed = np.unique(np.concatenate([last, end]) if kind == "growth" else last)
        # only the frames the choice looks at (t0 and, for 'growth', the last lead)
        wet = {int(t): float((ds.frames(int(t), int(t) + 1)[0] >= threshold_px).sum())
               for t in needed}
    t0 = np.array([wet[int(t)] for t in last])
    if kind == "wettest":
        return int(np.argmax(t0))
    gain = np.array([wet[int(t)] for t in end]) - t0
    return int(np.argmax(gain))


def cases(study: Study, out: Path, plan: list[dict], results: dict, figures: Path):
    """Animations of each case (plain and with hit/miss/false-alarm overlay)."""
    from radarcast.animation import AnimateConfig, animate
    from radarcast.data.store import open_dataset

    s = study.settings
    docs, images = [], {}
    thr = results["thresholds"]
    for i, case in enumerate(study.cases):
        p = next(p for p in plan if p["event"] == case.dataset)
        with open_dataset(p["dataset"]) as ds:
            first_px = float(ds.units.to_pixel(np.array([thr["values"][0]]), thr["units"])[0])
            # panels of about PANEL_PX, at most 2 screen pixels a grid cell; the page shows
            # small ones enlarged (render.ZOOM), so the GIF holds no repeated pixels to encode
            scale = int(min(2, max(1, PANEL_PX // max(ds.height, ds.width))))
        k = pick_window(p["dataset"], s, case.window, first_px)
        wanted = case.methods or tuple(study.methods)
        files = [f for f in p["files"] if any(f.stem == w or f.stem.startswith(f"{w}-s")
                                              for w in wanted)]
        live = ("persistence",) if "persistence" in wanted else ()
        overlay = case.overlay if case.overlay is not None else thr["values"][0]
        units = thr["units"] if thr["units"] in ("mmh", "dbz", "pixel") else "dbz"
        entry = {"dataset": case.dataset, "fold": p["fold"].name, "window": k,
                 "title": case.title, "methods": [*live, *(f.stem for f in files)],
                 "overlay": overlay, "overlay_units": units, "animations": {}}
        for tag, ov in (("plain", None), ("overlay", overlay)):
            path = figures / f"case{i}_{tag}.gif"
            res = animate(p["dataset"], path, methods=live, forecasts=files, window=k,
                          config=AnimateConfig(units=units, overlay=ov, scale=scale, fps=3,
                                               n_in=s.n_in, n_out=s.n_out),
                          overwrite=True)
            images[f"case{i}_{tag}"] = path
            entry["animations"][tag] = str(path.relative_to(out))
            entry["start"] = res.start
        docs.append(entry)
    return docs, images


def report_from_scores(paths: list, output, title: str = "radarcast scores") -> Path:
    """A page from scores.json files of ``evaluate`` (or from a study's report.json):
    ``output`` .html (and a .json of its numbers beside it), or .md (Markdown tables)."""
    from radarcast.errors import RadarcastError
    from radarcast.study.markdown import results_markdown
    from radarcast.study.scoring import summarise_json

    output = Path(output)
    if output.suffix not in (".html", ".md"):
        raise RadarcastError(f"{output}: give a .html or .md output")
    groups, first, study_doc = {}, None, None
    for p in map(Path, paths):
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise RadarcastError(f"{p}: not a readable scores.json ({e})") from None
        if doc.get("schema") == "radarcast-study-report/1" and len(paths) == 1:
            study_doc = doc
            break
        if doc.get("schema") != "radarcast-scores/1":
            raise RadarcastError(f"{p} is not a scores.json of radarcast evaluate nor a study "
                                 f"report.json (schema {doc.get('schema')!r})")
        first = first or doc
        name = Path(doc["dataset"]["path"]).stem
        group = summarise_json(doc)
        if doc.get("bootstrap"):  # its scheme: why it has no intervals, where it has none
            group["bootstrap"] = {k: v for k, v in doc["bootstrap"].items() if k != "methods"}
        groups[name if name not in groups else f"{name} ({p})"] = group
    if study_doc is None:
        thr = first["thresholds"]
        results = {"reference": "persistence", "thresholds": {
            "values": thr["values"], "units": thr["units"],
            "labels": [f"{v:g} {thr['units']}" for v in thr["values"]]},
            "lead_min": first["lead_min"], "bootstrap": {
                k: v for k, v in (first.get("bootstrap") or {}).items() if k != "methods"},
            "groups": groups}
        study_doc = {"schema": "radarcast-study-report/1", "title": title, "question": "",
                     "results": results, "conventions": first.get("conventions"),
                     "sources": [str(p) for p in paths]}
    if output.suffix == ".md":
        return write_atomic(output, results_markdown(study_doc))
    if "manifest" in study_doc:
        raise RadarcastError("a study's report.json is made into .md tables only; its "
                             "report.html is in the study folder")
    write_atomic(output.with_suffix(".json"), json.dumps(study_doc, indent=1, default=_plain))
    return write_atomic(output, render_html(study_doc, {}))


def refresh_numbers(paths: list, document=None, list_keys: bool = False) -> str:
    """``radarcast report STUDY/report.json --update DOC.md`` (rewrite DOC.md's generated
    tables and marked numbers, atomically; returns its path) or ``--keys`` (returns every
    KEY = value line). ``timing.json`` beside report.json adds the stage seconds."""
    from radarcast.errors import RadarcastError
    from radarcast.study.markdown import numbers, update_markdown

    if len(paths) != 1:
        raise RadarcastError("--update and --keys take one study report.json")
    path = Path(paths[0])
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RadarcastError(f"{path}: not a readable report.json ({e})") from None
    if doc.get("schema") != "radarcast-study-report/1" or "results" not in doc:
        raise RadarcastError(f"{path} is not a study's report.json (schema "
                             f"{doc.get('schema')!r})")
    timing = path.with_name("timing.json")
    if timing.is_file():
        try:
            doc["timing"] = json.loads(timing.read_text())
        except ValueError:
            raise RadarcastError(f"{timing}: not readable JSON") from None
    if list_keys:
        return "\n".join(f"{k} = {v}" for k, v in numbers(doc).items())
    document = Path(document)
    try:
        text = document.read_text()
    except OSError as e:
        raise RadarcastError(f"{document}: cannot read ({e.strerror})") from None
    write_atomic(document, update_markdown(text, doc, str(document)))
    return str(document)
