"""A torchrun run leaves no gloo thread alive after train(): the process group is freed by
destroy_process_group, not left to interpreter exit (issue 21's SIGABRT at teardown)."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import os, sys
from radarcast.training import TrainConfig, train
train(TrainConfig(datasets=(sys.argv[1],), preset="convlstm-1", model_config={"hidden": (4,)},
      n_in=2, n_out=3, crop=16, batch_size=4, steps=2, val_every=2, workers=0, device="cpu",
      out=sys.argv[2]))
names = sorted(open(f"/proc/self/task/{t}/comm").read().strip()
               for t in os.listdir("/proc/self/task"))
# one file per rank: two ranks printing to one pipe can interleave their lines
with open(f"threads{os.environ['RANK']}.txt", "w") as fh:
    fh.write(",".join(n for n in names if "gloo" in n))
"""


def test_no_gloo_thread_outlives_train(tiny_dataset, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(script), str(tiny_dataset), str(tmp_path / "run")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    left = {rank: (tmp_path / f"threads{rank}.txt").read_text() for rank in (0, 1)}
    assert left == {0: "", 1: ""}, left  # gloo threads still alive after train(), per rank
