"""What several benchmarks share: a synthetic dataset made through the CLI, and one JSON file
of results under bench/results/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def rss_mib(pid: int) -> float | None:
    """Resident memory of process ``pid`` now (/proc/PID/status VmRSS), or None if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def write_json(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` as indented JSON (folders made as needed) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    print(f"wrote {path}")
    return path


def make_dataset(folder: Path, size: int, frames: int, sequences: int) -> Path:
    """``radarcast synth`` (npy stacks) then ``radarcast preprocess`` into
    ``folder/synth{size}.h5``; an existing file is reused."""
    raw, out = folder / f"raw{size}", folder / f"synth{size}.h5"
    if out.exists():
        return out
    cli = [sys.executable, "-m", "radarcast"]
    subprocess.run(
        [*cli, "synth", str(raw), "--size", str(size), "--frames", str(frames),
         "--sequences", str(sequences), "--format", "npy"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run([*cli, "preprocess", str(raw), "-o", str(out)], check=True, capture_output=True)
    return out
