"""Flakiness check (issue 21): the README's test command run N times in a row, some runs
beside CPU-heavy burner processes; every run's pass/fail counts and duration into a JSON.

Nightly only: it refuses to start unless RADARCAST_NIGHTLY=1 (the full check is 20 whole
suite runs, hours on a small machine). The full check, from the repository root:

    RADARCAST_NIGHTLY=1 python bench/flakiness.py

A small proof on one file: ``--runs 2 --tests tests/test_cli_basics.py``. Burners run on
every ``--burn-every``-th run (default 2: runs 2, 4, ...), ``--burners`` processes each.

On a machine of many cores, ``--parallel K`` runs K suites side by side (each in its own
copy of the repository and its own pytest temporary folder; the others are the CPU-heavy
work beside it, so no burners are started), and ``--deadline S`` starts no new run after S
seconds (runs in flight finish), so that a lent machine's time limit is kept:

    RADARCAST_NIGHTLY=1 python bench/flakiness.py --parallel 6 --runs 12 --deadline 300
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)")


def _burn() -> None:  # a CPU-heavy neighbour: pure arithmetic until terminated
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2**31


def _summary(text: str) -> dict[str, int]:
    """Counts from pytest's last summary line ('1 failed, 334 passed in 9.1s')."""
    lines = [ln for ln in text.splitlines() if COUNTS.search(ln)]
    found = dict((k.rstrip("s") if k.startswith("error") else k, int(n))
                 for n, k in COUNTS.findall(lines[-1])) if lines else {}
    return {k: found.get(k, 0) for k in ("passed", "failed", "error", "skipped")}


def one_run(i: int, tests: list[str], burners: int, cwd: Path | None = None) -> dict:
    procs = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(burners)]
    for p in procs:
        p.start()
    env = {k: v for k, v in os.environ.items() if k != "RADARCAST_NIGHTLY"}  # the CI suite
    t0 = time.perf_counter()
    extra = []
    if cwd is not None:  # a copy of the repository: its own code and temporary folder
        env["PYTHONPATH"] = os.pathsep.join([str(cwd), *filter(None, [env.get("PYTHONPATH")])])
        extra = ["--basetemp", str(cwd / ".pytest-tmp")]
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            *extra, *tests], capture_output=True, text=True, env=env, cwd=cwd)
    finally:
        for p in procs:
            p.terminate()
            p.join()
    seconds = time.perf_counter() - t0
    failed = [ln for ln in r.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    return {"run": i, "burners": burners, "side_by_side": cwd is not None,
            "exit_code": r.returncode, "seconds": round(seconds, 2),
            **_summary(r.stdout), "failures": failed, "load_after": os.getloadavg()[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--burners", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--burn-every", type=int, default=2, help="burners on every k-th run")
    ap.add_argument("--tests", nargs="*", default=[], help="pytest arguments (default: all)")
    ap.add_argument("--out", default="bench/results/flakiness.json")
    ap.add_argument("--parallel", type=int, default=1, help="suites side by side")
    ap.add_argument("--deadline", type=float, default=0, help="start no run after S seconds")
    a = ap.parse_args()
    if os.environ.get("RADARCAST_NIGHTLY") != "1":
        print("flakiness check is nightly: set RADARCAST_NIGHTLY=1", file=sys.stderr)
        return 2
    runs: list[dict] = []

    def save() -> int:  # after every run, so that a check stopped by a time limit keeps its counts
        green = sum(r["exit_code"] == 0 for r in runs)
        write_json(a.out, {"command": ["python", "-m", "pytest", "-q", *a.tests],
                           "runs": sorted(runs, key=lambda r: r["run"]), "green": green,
                           "total": len(runs), "cpu_count": os.cpu_count(),
                           "parallel": a.parallel, "python": sys.version.split()[0]})
        return green

    (side_by_side if a.parallel > 1 else in_a_row)(a, runs, save)
    green = save()
    print(f"{green}/{len(runs)} runs green")
    return 0 if green == len(runs) else 1


def _report(run: dict, total: int) -> None:
    print(f"run {run['run']}/{total}: exit {run['exit_code']}, {run['passed']} passed, "
          f"{run['failed']} failed, {run['skipped']} skipped, {run['seconds']} s, "
          f"{run['burners']} burners{', side by side' if run['side_by_side'] else ''}",
          *run["failures"], sep="\n  ", flush=True)


def side_by_side(a, runs: list[dict], save) -> None:
    """K suites at a time, each in its own copy of the repository, until --runs or the
    --deadline; a new run starts as soon as one ends."""
    import shutil
    import tempfile
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    repo = Path(__file__).resolve().parents[1]
    skip = shutil.ignore_patterns(".git", ".venv", ".whl*", ".carry", "__pycache__", ".pytest*")
    root = Path(tempfile.mkdtemp(prefix="flaky-"))
    if (repo.parent / "shared").is_dir():  # the real-data tests find ../shared from each copy
        (root / "shared").symlink_to(repo.parent / "shared")
    t0, started, pending = time.perf_counter(), 0, set()
    with ThreadPoolExecutor(a.parallel) as pool:
        while True:
            while (len(pending) < a.parallel and started < a.runs
                   and not (a.deadline and time.perf_counter() - t0 > a.deadline)):
                started += 1
                copy = root / f"r{started}"
                shutil.copytree(repo, copy, ignore=skip, symlinks=True)
                pending.add(pool.submit(one_run, started, a.tests, 0, copy))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                runs.append(f.result())
                _report(runs[-1], a.runs)
                save()
    shutil.rmtree(root, ignore_errors=True)


def in_a_row(a, runs: list[dict], save) -> None:
    for i in range(1, a.runs + 1):
        if a.deadline and runs and sum(r["seconds"] for r in runs) > a.deadline:
            break
        burners = a.burners if a.burn_every and i % a.burn_every == 0 else 0
        runs.append(one_run(i, a.tests, burners))
        _report(runs[-1], a.runs)
        save()


if __name__ == "__main__":
    sys.exit(main())
