"""What the report stage adds to a study's evaluate stage: report_seconds / evaluate_seconds.

Runs a study once (train, forecast and the rest as the study file says), then times its
evaluate stage and its report stage ``--repeats`` times each, side by side in this process
(by dropping both units from the manifest, so exactly those stages are redone), and
profiles one report run to say where its time goes (the case animations' GIF encoding, the
frames, the page). Writes bench/results/study_report.json.

    python bench/study_report.py                       # examples/smoke.toml, CPU
    python bench/study_report.py examples/thesis.toml --device cuda --out /tmp/thesis
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import tempfile
from pathlib import Path

from _common import write_json

REPO = Path(__file__).resolve().parents[1]
WHERE = {"animate": "radarcast/animation/__init__.py", "encode_gif": "animation/gif.py",
         "animation_frames": "animation/frames.py", "render_html": "study/render.py",
         "cases": "study/report.py"}


def redo(study, out: Path, unit: str, device: str) -> dict:
    """Drop ``unit`` (and the report after it) from the manifest, rerun: stage seconds."""
    from radarcast.study import run_study

    path = out / "manifest.json"
    man = json.loads(path.read_text())
    for u in (unit, "report"):
        man["units"].pop(u, None)
    path.write_text(json.dumps(man))
    return run_study(study, out, device=device).seconds


def profile_report(study, out: Path, device: str) -> dict:
    prof = cProfile.Profile()
    prof.enable()
    redo(study, out, "report", device)
    prof.disable()
    stats = pstats.Stats(prof).stats
    found = {}
    for (file, _line, func), (_cc, _nc, _tt, cum, _callers) in stats.items():
        if func in WHERE and file.endswith(WHERE[func]):
            found[func] = round(found.get(func, 0.0) + cum, 4)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", nargs="?", default=str(REPO / "examples" / "smoke.toml"))
    ap.add_argument("--out", help="study folder (default: a temporary one; reused if there)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=str(REPO / "bench" / "results" / "study_report.json"))
    a = ap.parse_args()
    from radarcast.study import load_study, run_study

    study = load_study(a.study)
    out = Path(a.out or tempfile.mkdtemp(prefix="study_report_")) / "study"
    out.parent.mkdir(parents=True, exist_ok=True)
    first = run_study(study, out, device=a.device, resume=True).seconds
    runs = [redo(study, out, "evaluate", a.device) for _ in range(a.repeats)]  # both redone
    evaluate, report = [r["evaluate"] for r in runs], [r["report"] for r in runs]
    parts = profile_report(study, out, a.device)
    ev, rep = statistics.median(evaluate), statistics.median(report)
    payload = {"study": a.study, "device": a.device, "load_avg": os.getloadavg(),
               "cpus": os.cpu_count(), "first_run_seconds": first,
               "evaluate_seconds": evaluate, "report_seconds": report,
               "ratio_report_to_evaluate": round(rep / ev, 4),
               "report_profile_cumulative_s": parts}
    print(json.dumps({k: payload[k] for k in ("evaluate_seconds", "report_seconds",
                                             "ratio_report_to_evaluate", "load_avg")}))
    write_json(a.json, payload)


if __name__ == "__main__":
    main()
