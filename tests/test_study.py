"""`radarcast study`: examples/smoke.toml end to end (CLI subprocess, once), reruns that skip,
a changed method that retrains only itself, and bad study files refused in one line."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_cli

SMOKE = REPO / "examples" / "smoke.toml"


def radarcast(*args, cwd=REPO, check=False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "radarcast", *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict:
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_smoke_study_writes_report_and_keeps_checkpoints(smoke):
    doc = json.loads((smoke / "report.json").read_text())
    group = doc["results"]["groups"]["day4"]
    assert set(group["methods"]) == {"persistence", "rover", "rover-ens", "convlstm-tiny",
                                     "convlstm2-tiny"}
    assert group["windows"] == 11  # 20 frames, windows of 4 + 6, every start
    # one day of 11 windows is 1.1 blocks of 10: too few for an interval, so none is given
    # (the rule of radarcast.bootstrap; a case with enough blocks: tests/test_bootstrap.py)
    rover, p = group["methods"]["rover"], group["methods"]["persistence"]
    assert rover["csi_ci"] == [[None, None]] * 3 and p["csi_minus_rover_ci"][0] == [None, None]
    assert p["csi_minus_rover"][0] is not None  # the estimate itself stays
    why = group["bootstrap"]["scheme"]["no_interval"]
    assert why == "11 windows make 1.1 blocks of 10 windows; an interval needs ≥ 5"
    for row in ("convlstm-tiny", "convlstm2-tiny"):
        run = smoke / "runs" / "main" / row
        assert (run / "best.pt").stat().st_size > 0 and (run / "last.pt").is_file()
        assert doc["training"][f"main/{row}"]["steps"] == 30
    html = (smoke / "report.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "<script" not in html
    assert html.count("data:image/gif;base64,") == 2 and "data:image/svg+xml" in html
    cells = re.sub(r"<[^>]+>", " ", html)  # "[–]" where the interval would be, and why
    assert f"{rover['csi'][0]:.3f}  [–]" in cells and f"no 95% interval, {why}" in cells
    assert doc["manifest"]["study_digest"] and doc["data"][0]["content_hash"]


def test_report_carries_evaluates_fss_crps_brier(smoke):
    """The report's FSS/CRPS/Brier are the numbers evaluate wrote into scores.json (the
    ROVER ensemble's probability-field FSS, CRPS and Brier; each row's FSS per scale),
    shown in the page's tables, not placeholders."""
    import re

    scores = json.loads((smoke / "evaluate" / "main" / "day4" / "scores.json").read_text())
    doc = json.loads((smoke / "report.json").read_text())
    rows = doc["results"]["groups"]["day4"]["methods"]
    by_name = {m["name"]: m["probabilistic"] for m in scores["methods"]}
    ens = by_name["rover-ens"]
    assert ens["members"] == 4 and rows["rover-ens"]["members"] == 4
    for name, p in by_name.items():
        kind = "probability" if p["members"] > 1 else "deterministic"
        assert rows[name]["fss"] == p["mean_over_leads"]["fss"][kind]
        assert rows[name]["crps"] == p["mean_over_leads"]["crps"]
        assert rows[name]["brier"] == p["mean_over_leads"]["brier"]
    assert rows["rover-ens"]["crps_minus_rover"] == pytest.approx(
        ens["mean_over_leads"]["crps"] - by_name["rover"]["mean_over_leads"]["crps"])
    html = (smoke / "report.html").read_text()
    assert "FSS 16 px" in html and "Brier" in html and "CRPS" in html and "(M = 4)" in html
    # the page's cells: the ensemble's FSS at 16 px at the first threshold, its CRPS
    cells = re.sub(r"<[^>]+>", " ", html)
    assert f"{ens['mean_over_leads']['fss']['probability'][0][2]:.3f}" in cells
    assert f"{ens['mean_over_leads']['crps']:.4f}" in cells
    assert f"{ens['mean_over_leads']['brier'][0]:.4f}" in cells


def test_rerun_skips_every_unit(smoke):
    before = tree_hashes(smoke)
    r = run_cli("study", SMOKE, "-o", smoke)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr  # no unit of work ran
    assert tree_hashes(smoke) == before


def test_changed_method_retrains_only_itself(smoke, tmp_path):
    out = tmp_path / "study"
    shutil.copytree(smoke, out)
    changed = tmp_path / "smoke.toml"
    text = SMOKE.read_text().replace("lr = 3e-3", "lr = 2e-3")
    changed.write_text(text.replace('"../', '"' + str(REPO) + "/"))
    refused = run_cli("study", changed, "-o", out)
    assert refused.returncode == 1 and "--resume" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert tree_hashes(out) == tree_hashes(smoke)  # nothing of the earlier study lost
    r = run_cli("study", changed, "-o", out, "--resume", "--threads", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    trained = [line for line in r.stderr.splitlines() if line.strip().startswith("train ")]
    assert [t.split()[1] for t in trained] == ["convlstm2-tiny"], r.stderr
    assert "forecast rover" not in r.stderr and "prepare" not in r.stderr
    same = "runs/main/convlstm-tiny/best.pt"
    assert digest(out / same) == digest(smoke / same)
    other = "runs/main/convlstm2-tiny/best.pt"
    assert digest(out / other) != digest(smoke / other)


def test_report_command_from_evaluate_scores(smoke, tmp_path):
    scores = smoke / "evaluate" / "main" / "day4" / "scores.json"
    page = tmp_path / "page.html"
    assert run_cli("report", scores, "-o", page).returncode == 0
    html = page.read_text()
    assert "rover" in html and "<table" in html
    doc = json.loads(page.with_suffix(".json").read_text())
    assert doc["results"]["groups"]["day4__test"]["methods"]["rover"]["csi"]
    again = run_cli("report", scores, "-o", page)
    assert again.returncode == 1 and "--overwrite" in again.stderr


# --------------------------------------------------------------------------- bad input
BASE = """
[study]
n_in = 2
n_out = 2
thresholds = [0.5]
bootstrap = 10
reference = "persistence"
[datasets.a]
synth = { sequences = 1, frames = 10, size = 16, seed = 1, start = "2024-01-01T00:00Z" }
split = "train"
[datasets.b]
synth = { sequences = 1, frames = 10, size = 16, seed = 2, start = "2024-01-03T00:00Z" }
split = "test"
[methods.persistence]
kind = "persistence"
"""


def refused(tmp_path, text: str, *extra) -> str:
    study = tmp_path / "s.toml"
    study.write_text(text)
    r = run_cli("study", study, "-o", tmp_path / "out", *extra)  # in-process: same handler
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()  # progress lines of units that ran, then the error
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], r.stderr
    return errors[0]


def test_unknown_key_is_named_with_the_valid_ones(tmp_path):
    line = refused(tmp_path, BASE.replace("n_in = 2", "n_in = 2\nbootstrapp = 3"))
    assert "'bootstrapp'" in line and "bootstrap" in line and "thresholds" in line


def test_unknown_method_kind_is_named(tmp_path):
    line = refused(tmp_path, BASE + '[methods.x]\nkind = "pysteps"\n')
    assert "'pysteps'" in line and "persistence, rover, pysteps:extrapolation" in line
    assert line.endswith("pysteps:anvil, model")


def test_rover_ensemble_keys_are_checked(tmp_path):
    line = refused(tmp_path, BASE + '[methods.e]\nkind = "rover"\nmember = 4\n')
    assert "'member'" in line and "members" in line and "seeds" in line
    line = refused(tmp_path, BASE.replace('kind = "persistence"',
                                          'kind = "persistence"\nmembers = 3'))
    assert "members is for the kinds that make ensembles (rover, pysteps:steps)" in line


def test_unknown_training_key_is_named(tmp_path):
    line = refused(tmp_path, BASE + '[methods.m]\npreset = "convlstm-1"\nsteps = 2\n'
                   'train = { learning_rate = 1 }\n')
    assert "'learning_rate'" in line and "lr" in line


def test_leaking_split_is_refused_before_training(tmp_path):
    text = BASE.replace('start = "2024-01-03T00:00Z"', 'start = "2024-01-01T00:55Z"')
    line = refused(tmp_path, text + '[methods.m]\npreset = "convlstm-1"\nsteps = 2\n')
    assert "leaks" in line and "test window 0 of b" in line
    assert not (tmp_path / "out" / "runs").exists()


def test_event_missing_from_the_data(tmp_path):
    text = BASE.replace('synth = { sequences = 1, frames = 10, size = 16, seed = 2, '
                        'start = "2024-01-03T00:00Z" }', f'raw = "{tmp_path}/nothing/*.gif"')
    line = refused(tmp_path, text)
    assert "datasets.b" in line and "missing from the data" in line


def test_case_naming_an_undeclared_event(tmp_path):
    line = refused(tmp_path, BASE + '[[cases]]\ndataset = "c"\n')
    assert "'c'" in line and "declared: a, b" in line


LOEO = BASE.replace('split = "test"', 'split = "train"') + """
[datasets.c]
synth = { sequences = 1, frames = 10, size = 16, seed = 3, start = "2024-01-05T00:00Z" }
split = "train"
[methods.m]
kind = "model"
preset = "convlstm-1"
steps = 2
train = { model_config = { hidden = [4] }, crop = 16, batch_size = 2, val_windows = 2 }
"""


@pytest.mark.nightly  # three trainings in a pool of spawned processes: ~70 s on a busy 2-core box
def test_leave_one_event_out(tmp_path):
    study = tmp_path / "cv.toml"
    study.write_text(LOEO.replace('reference = "persistence"',
                                  'reference = "persistence"\nsplit = "leave-one-event-out"\n'
                                  "cv_validation = [0.5, 0.5, 0]\nparallel = 3"))
    out = tmp_path / "cv"
    r = radarcast("study", study, "-o", out, "--threads", "1", "--stop-after", "evaluate",
                  check=True)
    doc = json.loads((out / "evaluate" / "results.json").read_text())
    assert set(doc["groups"]) == {"a", "b", "c", "pooled"}
    assert "3 at a time" in r.stderr  # the three folds' trainings in a pool, started together
    for event in "abc":  # each event scored by the model trained without it
        assert doc["groups"][event]["fold"] == f"loeo-{event}"
        assert (out / "runs" / f"loeo-{event}" / "m" / "best.pt").is_file()
        cfg = (out / "runs" / f"loeo-{event}" / "m" / "config.toml").read_text()
        assert f"{event}__" not in cfg
    pooled = doc["groups"]["pooled"]
    assert pooled["windows"] == sum(doc["groups"][e]["windows"] for e in "abc")
    assert set(pooled["methods"]) == {"persistence", "m"}
    # one event's 7 windows are 1.75 blocks of 4: no interval; the three events pooled are
    # 5.25 blocks, enough (radarcast.bootstrap.MIN_INDEPENDENT), so FSS/CRPS get intervals
    assert doc["groups"]["a"]["methods"]["m"]["crps_ci"] == [None, None]
    m = pooled["methods"]["m"]
    lo, hi = m["crps_ci"]
    assert lo <= m["crps"] <= hi
    lo, hi = m["crps_minus_persistence_ci"]
    assert lo <= m["crps_minus_persistence"] <= hi


def study_killed(out: Path, stage: str, study: Path = SMOKE) -> None:
    """Run the study in a subprocess and SIGKILL it once ``stage`` has begun: its first
    progress line, or (train) after the first model's first validation checkpoint."""
    import signal
    import threading
    import time

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-m", "radarcast", "study", str(study), "-o", str(out),
                          "--threads", "1"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    timer = threading.Timer(300, lambda: os.killpg(p.pid, signal.SIGKILL))
    timer.start()
    metrics = out / "runs" / "main" / "convlstm-tiny" / "metrics.jsonl"
    seen = ""
    try:
        for line in p.stderr:
            seen += line
            word = line.split()[0] if line.split() else ""
            if stage == "train" and word == "train":
                while p.poll() is None and not (metrics.exists()
                                                and '"val"' in metrics.read_text()):
                    time.sleep(0.05)
            if word == stage or (stage == "train" and word == "train"):
                break
        assert p.poll() is None, f"the study ended before it was killed in {stage}: {seen}"
        os.killpg(p.pid, signal.SIGKILL)
    finally:
        timer.cancel()
        p.wait()
    assert not (out / "report.json").exists() or stage == "report"


def same_numbers(out: Path, ref: Path) -> None:
    done = json.loads((out / "report.json").read_text())
    want = json.loads((ref / "report.json").read_text())
    assert done["results"]["groups"] == json.loads(
        json.dumps(want["results"]["groups"]).replace(str(ref), str(out)))
    assert done["training"].keys() == want["training"].keys()


def test_killed_in_evaluate_resumes_to_the_same_results(smoke, tmp_path):
    """The quick CI case of #21: the smoke study's folder with its evaluate and report undone,
    SIGKILL during evaluate, rerun: every number of the report is the uninterrupted study's."""
    out = tmp_path / "study"
    shutil.copytree(smoke, out)
    man = json.loads((out / "manifest.json").read_text())
    for unit in ("evaluate", "report"):
        man["units"].pop(unit)
    (out / "manifest.json").write_text(json.dumps(man))
    (out / "report.json").unlink()
    study_killed(out, "evaluate")
    r = run_cli("study", SMOKE, "-o", out, "--threads", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "train " not in r.stderr and "forecast " not in r.stderr
    same_numbers(out, smoke)


@pytest.mark.nightly  # a whole smoke study and its rerun per stage: ~20 s each on 2 busy cores
@pytest.mark.parametrize("stage", ["prepare", "train", "forecast", "evaluate", "report"])
def test_killed_at_each_stage_resumes_to_the_same_results(smoke, tmp_path, stage):
    """SIGKILL once ``stage`` has begun (train: after a model's first checkpoint, so that the
    run resumes from last.pt), rerun: every number of the report is the uninterrupted
    study's, and the checkpoints are kept."""
    out = tmp_path / "study"
    study_killed(out, stage)
    radarcast("study", SMOKE, "-o", out, "--threads", "1", check=True)
    same_numbers(out, smoke)
    assert (out / "runs" / "main" / "convlstm-tiny" / "best.pt").is_file()
