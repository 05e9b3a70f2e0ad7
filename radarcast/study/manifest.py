"""The study folder's manifest: which unit of work is done, with what inputs, and what it wrote.

``STUDY/manifest.json`` maps each unit ('prepare/NAME', 'train/FOLD/RUN', …) to the hash
of its inputs and configuration (its *key*) and to the content hash of every file it wrote.
A unit is skipped on a rerun when its key is the same and its files are still there with
the recorded hashes; the manifest is rewritten atomically after every unit, so a killed
study loses at most the unit it was in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from radarcast.errors import RadarcastError

SCHEMA = "radarcast-study/1"
NAME = "manifest.json"


def file_hash(path: Path, cache: dict | None = None) -> str:
    """sha256 (16 hex digits) of a file's bytes; ``cache`` maps (path, size, mtime) → hash."""
    st = path.stat()
    tag = f"{path}:{st.st_size}:{st.st_mtime_ns}"
    if cache is not None and tag in cache:
        return cache[tag]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()[:16]
    if cache is not None:
        cache[tag] = digest
    return digest


def write_atomic(path: Path, text: str | bytes) -> Path:
    """Write ``text`` to a hidden sibling, then move it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        (tmp.write_bytes if isinstance(text, bytes) else tmp.write_text)(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class Manifest:
    """The units done in one study folder (``root``)."""

    def __init__(self, root: Path, data: dict):
        self.root = root
        self.data = data
        self._hashes: dict = {}

    @classmethod
    def open(cls, root: Path, study_digest: str, study_file: str, resume: bool,
             overwrite: bool) -> Manifest:
        """The manifest of ``root``, after checking that the folder belongs to this study.

        A folder of another study file is refused unless ``resume`` (keep the units whose
        keys still match) or ``overwrite`` (start over; the folder is emptied)."""
        root = Path(root)
        path = root / NAME
        if root.exists() and not root.is_dir():
            raise RadarcastError(f"--out {root} is a file, expected a folder")
        if overwrite and root.exists():
            _empty(root)
        if not root.exists():
            if not root.parent.exists():
                raise RadarcastError(f"folder {root.parent} does not exist")
            root.mkdir()
        data = None
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise RadarcastError(f"{path}: unreadable study manifest ({e})") from None
            if data.get("schema") != SCHEMA:
                raise RadarcastError(f"{path} is not a radarcast study manifest")
        elif any(p for p in root.iterdir() if not p.name.startswith(".")):
            raise RadarcastError(f"{root} is not empty and holds no study; choose another "
                                 "--out or pass --overwrite")
        if data is not None and data["study_digest"] != study_digest and not resume:
            raise RadarcastError(
                f"{root} holds the study of another study file ({data.get('study_file')}); "
                "pass --resume to keep what still matches, or --overwrite to start over")
        data = data or {"schema": SCHEMA, "units": {}}
        data.update(study_digest=study_digest, study_file=study_file)
        m = cls(root, data)
        m.save()
        return m

    def save(self) -> None:
        write_atomic(self.root / NAME, json.dumps(self.data, indent=1, sort_keys=True))

    def hash(self, path: Path) -> str:
        return file_hash(path, self._hashes)

    def done(self, unit: str, key: str) -> bool:
        """Whether ``unit`` finished with this ``key`` and its files are unchanged."""
        entry = self.data["units"].get(unit)
        if not entry or entry.get("key") != key or entry.get("state") != "done":
            return False
        for rel, digest in entry["outputs"].items():
            p = self.root / rel
            if not p.is_file() or self.hash(p) != digest:
                return False
        return True

    def started(self, unit: str, key: str) -> dict | None:
        """The info of an unfinished ``unit`` started with this ``key`` (to resume it)."""
        entry = self.data["units"].get(unit)
        if entry and entry.get("key") == key and entry.get("state") == "started":
            return entry.get("info", {})
        return None

    def start(self, unit: str, key: str, info: dict | None = None) -> None:
        self.data["units"][unit] = {"key": key, "state": "started", "info": info or {},
                                    "outputs": {}}
        self.save()

    def finish(self, unit: str, key: str, outputs: list[Path], info: dict | None = None) -> None:
        """Record ``unit`` as done with the hashes of ``outputs`` (paths under the root)."""
        old = self.data["units"].get(unit, {}).get("info", {})
        self.data["units"][unit] = {
            "key": key, "state": "done", "info": {**old, **(info or {})},
            "outputs": {str(p.relative_to(self.root)): self.hash(p) for p in outputs},
            "done_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.save()

    def output_hash(self, unit: str) -> str:
        """One hash of everything ``unit`` wrote (the input key of the units after it)."""
        entry = self.data["units"][unit]
        return hashlib.sha256(json.dumps(entry["outputs"], sort_keys=True).encode()
                              ).hexdigest()[:16]

    def info(self, unit: str) -> dict:
        return self.data["units"].get(unit, {}).get("info", {})


def _empty(root: Path) -> None:
    if not (root / NAME).exists() and any(root.iterdir()):
        raise RadarcastError(f"{root} holds no study manifest; --overwrite empties only "
                             "study folders (remove it yourself)")
    for p in root.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
