"""Two gloo processes under torchrun train to the same weights as one process, and leave no
gloo thread alive once train has returned: the process group is freed by
destroy_process_group, not left to interpreter exit (issue 21's SIGABRT at teardown). One
torchrun run serves both tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from radarcast.checkpoint import load_checkpoint
from radarcast.models import build_model
from radarcast.training import TrainConfig, train

# `python -m radarcast ARGS` (runpy, as torchrun -m does), then each rank lists the gloo
# threads still alive, one file per rank (two ranks printing to one pipe interleave)
PROBE = """
import os, runpy, sys
sys.argv = ["radarcast", *sys.argv[1:]]
try:
    runpy.run_module("radarcast", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
names = sorted(open(f"/proc/self/task/{t}/comm").read().strip()
               for t in os.listdir("/proc/self/task"))
with open(f"threads{os.environ['RANK']}.txt", "w") as fh:
    fh.write(",".join(n for n in names if "gloo" in n))
sys.exit(code)
"""
FLAGS = ["--n-in", "2", "--n-out", "3", "--crop", "16", "--batch-size", "4", "--steps", "4",
         "--val-every", "2", "--lr", "0.01", "--seed", "3", "--workers", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    """`torchrun --standalone --nproc-per-node=2 -m radarcast train` on the tiny dataset."""
    from conftest import write_tiny_dataset

    tmp_path = tmp_path_factory.mktemp("ddp")
    dataset = write_tiny_dataset(tmp_path / "tiny.h5")
    toml = tmp_path / "run.toml"
    toml.write_text('preset = "convlstm-1"\n\n[model_config]\nhidden = [4]\n')
    (tmp_path / "probe.py").write_text(PROBE)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(tmp_path / "probe.py"), "train", str(dataset), "--out", str(tmp_path / "ddp"),
           *FLAGS, "--config", str(toml)]
    r = torchrun(cmd, env, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp_path, dataset


def torchrun(cmd: list[str], env: dict, cwd, timeout: float = 300):
    """subprocess.run for a torchrun job: on timeout the whole job is killed, ranks
    included (killing the launcher alone left a stuck rank running after the suite)."""
    import signal

    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, cwd=cwd, start_new_session=True)  # fmt: skip
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        msg = f"torchrun job still running after {timeout} s: {err[-2000:]}"
        raise AssertionError(msg) from None
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def test_no_gloo_thread_outlives_train(ddp):
    left = {rank: (ddp[0] / f"threads{rank}.txt").read_text() for rank in (0, 1)}
    assert left == {0: "", 1: ""}, left  # gloo threads still alive after train(), per rank


def test_two_gloo_processes_match_one_process(ddp, tmp_path):
    out, tiny_dataset = ddp
    # warmup_steps is not a flag: the TOML default (100) applies to both runs alike
    single = TrainConfig(
        datasets=(str(tiny_dataset),),
        preset="convlstm-1",
        model_config={"hidden": (4,)},
        n_in=2,
        n_out=3,
        crop=16,
        batch_size=4,
        steps=4,
        val_every=2,
        lr=0.01,
        seed=3,
        workers=0,
        device="cpu",
        out=str(tmp_path / "one"),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process (OMP_NUM_THREADS=1)
    try:
        train(single)
    finally:
        torch.set_num_threads(threads)
    a = load_checkpoint(out / "ddp" / "last.pt")
    b = load_checkpoint(tmp_path / "one" / "last.pt")
    assert a["step"] == b["step"] == 4
    for k, v in b["state_dict"].items():
        torch.testing.assert_close(a["state_dict"][k], v, rtol=1e-5, atol=1e-6, msg=k)
    torch.manual_seed(3)
    init = build_model("convlstm", {"hidden": (4,)}).state_dict()
    assert any(not torch.equal(init[k], v) for k, v in b["state_dict"].items())
    end = json.loads((out / "ddp" / "metrics.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["processes"] == 2
    assert sorted(p.name for p in (out / "ddp").iterdir()) == [
        "best.pt",
        "config.toml",
        "last.pt",
        "metrics.jsonl",
    ]


# `python -m radarcast ARGS` in which one rank's FAIL_STEP-th optimizer step fails as
# FAIL_MODE says (raise: a bad batch; hang: a stuck rank; kill: SIGKILL, no last word);
# the moment is written to failed_at.txt. A test hook in the probe, not in radarcast.
FAIL_PROBE = """
import os, runpy, signal, sys, time
sys.argv = ["radarcast", *sys.argv[1:]]
from radarcast.errors import RadarcastError
from radarcast.training import step

real, calls = step.TrainStep.__call__, [0]
def failing(self, batch):
    calls[0] += 1
    if os.environ["RANK"] == os.environ["FAIL_RANK"] and calls[0] == int(os.environ["FAIL_STEP"]):
        with open("failed_at.txt", "w") as fh:
            fh.write(repr(time.time()))
        mode = os.environ["FAIL_MODE"]
        if mode == "raise":
            raise RadarcastError("batch 3 holds no finite value (test hook)")
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(600)
    return real(self, batch)
step.TrainStep.__call__ = failing
runpy.run_module("radarcast", run_name="__main__", alter_sys=True)
"""
FAILURES = [
    pytest.param("raise", "1", "rank 1 of 2 failed: batch 3 holds no finite value (test hook); "
                 "rank 0 stopped with it", id="raise"),
    pytest.param("kill", "1", "rank 1 of 2 failed: its process ended without a word (killed, "
                 "or crashed: see its log); rank 0 stopped with it", marks=pytest.mark.slow,
                 id="kill"),
    pytest.param("hang", "0", "another rank failed: it did not answer for 3 s (stuck?; "
                 "dist_timeout_s); rank 1 stopped with it", marks=pytest.mark.slow, id="hang"),
]


@pytest.mark.parametrize(("mode", "rank", "line"), FAILURES)
def test_a_failing_rank_stops_the_job_within_seconds_with_one_line(tmp_path, mode, rank, line):
    """Rank `rank` fails at its 3rd step, after the checkpoint of step 2: the other rank stops
    within seconds (not gloo's 30 min) with one line naming it, and last.pt stays whole."""
    import time

    from conftest import write_tiny_dataset

    dataset = write_tiny_dataset(tmp_path / "tiny.h5")
    # a stuck rank is caught by the collectives' timeout; the others must not need it
    timeout = "dist_timeout_s = 3\n" if mode == "hang" else ""
    (tmp_path / "run.toml").write_text(
        f'preset = "convlstm-1"\n{timeout}\n[model_config]\nhidden = [4]\n'
    )
    (tmp_path / "probe.py").write_text(FAIL_PROBE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FAIL_RANK": rank, "FAIL_STEP": "3",
           "FAIL_MODE": mode}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(tmp_path / "probe.py"), "train", str(dataset), "--out", str(tmp_path / "run"),
           *FLAGS, "--steps", "6", "--config", str(tmp_path / "run.toml")]
    r = torchrun(cmd, env, tmp_path)
    ended = time.time()
    assert r.returncode != 0
    took = ended - float((tmp_path / "failed_at.txt").read_text())
    print(f"{mode}: the job ended {took:.1f} s after the failure (load {os.getloadavg()[0]:.1f})")
    assert took < 20, f"the job took {took:.1f} s to stop after the failure"
    survivor = "1" if rank == "0" else "0"
    lines = [x for x in r.stderr.splitlines() if x.startswith(f"[rank{survivor}]:") or
             x.startswith("error:")]
    mine = [x for x in lines if line in x]
    assert len(mine) == 1, r.stderr[-3000:]
    assert not any("Traceback" in x or "gloo" in x for x in lines), r.stderr[-3000:]
    if mode == "raise":  # the failed rank's own reason, in its own one line too
        assert "error: batch 3 holds no finite value (test hook)" in r.stderr
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["best.pt", "config.toml", "last.pt", "metrics.jsonl"], names
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 2
