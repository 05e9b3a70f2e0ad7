"""What every benchmark does with its result: one JSON file under bench/results/."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` as indented JSON (folders made as needed) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    print(f"wrote {path}")
    return path
