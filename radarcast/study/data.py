"""The prepare stage: each event becomes one dataset, then one file per role it plays.

``data/NAME.h5`` is the event as preprocessed (or synthesised, or the given .h5 copied by
reference); ``data/NAME__ROLE.h5`` is the same frames with the split of that role (all
train, all test, or train/val fractions), so that ``radarcast train`` and ``evaluate`` read
the split from the file as always. A fold says which role every event plays: one fold
('main') for a fixed split, one per held-out event for leave-one-event-out. Before any
training, :func:`check_leaks` refuses a test window within n_in + n_out frames of a frame
that training or validation sees.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radarcast.errors import RadarcastError
from radarcast.study.config import Study, hash_json, role_fractions
from radarcast.study.manifest import Manifest

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Fold:
    """Which role (train/val/test fractions, or None for the file's own split) each event
    plays in one training-and-testing round."""

    name: str
    roles: dict

    def tests(self) -> list[str]:
        return [d for d, r in self.roles.items() if r is None or r[2] > 0]

    def trains(self) -> list[str]:
        """Events that training reads (train or validation frames)."""
        return [d for d, r in self.roles.items() if r is None or r[0] > 0 or r[1] > 0]


def folds(study: Study) -> list[Fold]:
    """The folds of the study's split mode."""
    s = study.settings
    base = {n: role_fractions(d.split) for n, d in study.datasets.items()}
    if s.split == "fixed":
        return [Fold("main", base)]
    pool = list(s.cv_events or study.datasets)
    out = []
    for held in pool:
        roles = {n: (r if r is None or r[2] == 0 else (1.0, 0.0, 0.0)) for n, r in base.items()}
        others = [n for n in pool if n != held]
        roles[others[0]] = tuple(s.cv_validation)
        roles[held] = (0.0, 0.0, 1.0)
        out.append(Fold(f"loeo-{held}", roles))
    return out


def role_tag(fractions) -> str:
    if fractions is None:
        return "file"
    for name, f in zip(SPLIT_NAMES, np.eye(3), strict=True):
        if np.allclose(fractions, f):
            return name
    return "f" + "-".join(f"{x:g}" for x in fractions)


def prepare_event(study: Study, name: str, out: Path, m: Manifest, emit) -> Path:
    """``data/NAME.h5`` for one event, skipped when its inputs and options are unchanged."""
    spec = study.datasets[name]
    s = study.settings
    path = out / "data" / f"{name}.h5"
    path.parent.mkdir(exist_ok=True)
    key = hash_json({"spec": spec.__dict__, "n_in": s.n_in, "n_out": s.n_out,
                     "inputs": _input_hashes(study, spec, m)})
    unit = f"prepare/{name}"
    if m.done(unit, key):
        return path
    emit(f"prepare {name}")
    if spec.h5 is not None:
        src = study.resolve_path(spec.h5)
        _copy_atomic(src, path)
    elif spec.synth:
        _synth(spec.synth, path, s, out)
    else:
        _preprocess(study, spec, path)
    m.finish(unit, key, [path], {"source": _source_of(study, spec)})
    return path


def _input_hashes(study: Study, spec, m: Manifest) -> list:
    from radarcast.data.readers import resolve_inputs

    if spec.synth:
        return []
    if spec.h5 is not None:
        p = study.resolve_path(spec.h5)
        if not p.is_file():
            raise RadarcastError(f"datasets.{spec.name}: {p}: no such dataset file")
        return [m.hash(p)]
    try:
        files = resolve_inputs([str(study.resolve_path(g)) for g in spec.raw])
    except RadarcastError as e:
        raise RadarcastError(f"datasets.{spec.name}: the event is missing from the data: "
                             f"{e}") from None
    return [(f.name, m.hash(f)) for f in files]


def _source_of(study: Study, spec) -> str:
    if spec.synth:
        return "synthetic storms (radarcast synth): " + ", ".join(
            f"{k}={v}" for k, v in sorted(spec.synth.items()))
    if spec.h5 is not None:
        return str(study.resolve_path(spec.h5))
    return ", ".join(spec.raw)


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _synth(options: dict, path: Path, s, out: Path) -> None:
    from radarcast.config import from_dict
    from radarcast.data.preprocess import PreprocessConfig, preprocess
    from radarcast.data.synthetic import SynthConfig, write_synth

    opts = dict(options)
    size = opts.pop("size", None)
    if size is not None:
        opts.setdefault("height", size)
        opts.setdefault("width", size)
    cfg = from_dict(SynthConfig, opts, f"datasets.{path.stem}.synth")
    raw = out / "data" / f".{path.stem}.raw"
    shutil.rmtree(raw, ignore_errors=True)
    try:
        write_synth(raw, cfg, fmt="npy")
        pcfg = PreprocessConfig(timestep_s=cfg.timestep_s, start=cfg.start, n_in=s.n_in,
                                n_out=s.n_out, split=(1.0, 0.0, 0.0), overwrite=True)
        preprocess([raw], path, pcfg)
    finally:
        shutil.rmtree(raw, ignore_errors=True)


def _preprocess(study: Study, spec, path: Path) -> None:
    from radarcast.config import from_dict
    from radarcast.data.preprocess import PreprocessConfig, preprocess

    opts = {**spec.preprocess, "n_in": study.settings.n_in, "n_out": study.settings.n_out,
            "split": (1.0, 0.0, 0.0), "overwrite": True}
    for key in ("crop", "resize", "nodata"):
        if isinstance(opts.get(key), list):
            opts[key] = tuple(opts[key])
    cfg = from_dict(PreprocessConfig, opts, f"datasets.{spec.name}.preprocess")
    preprocess([str(study.resolve_path(g)) for g in spec.raw], path, cfg)


def role_file(out: Path, name: str, fractions, m: Manifest, window: int) -> Path:
    """``data/NAME__ROLE.h5``: the prepared event with the split of ``fractions``."""
    base = out / "data" / f"{name}.h5"
    path = out / "data" / f"{name}__{role_tag(fractions)}.h5"
    unit = f"prepare/{name}__{role_tag(fractions)}"
    key = hash_json({"base": m.output_hash(f"prepare/{name}"), "fractions": fractions,
                     "window": window})
    if m.done(unit, key):
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(base, tmp)
        if fractions is not None:
            _resplit(tmp, tuple(fractions), window)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    m.finish(unit, key, [path])
    return path


def _resplit(path: Path, fractions: tuple, window: int) -> None:
    import json

    import h5py

    from radarcast.data.store import assign_splits

    with h5py.File(path, "r+") as f:
        seg, split = assign_splits(f["segment"][...], fractions, window)
        f["segment"][...] = seg
        f["split"][...] = split
        f.attrs["split_fractions"] = json.dumps(list(fractions))


def check_leaks(fold: Fold, files: dict[str, Path], n_in: int, n_out: int) -> None:
    """Refuse a fold whose test window lies within n_in + n_out frames of a frame that
    training or validation reads (any event: times are UTC)."""
    from radarcast.data.store import format_time, open_dataset

    seen, tests = [], []
    for name in fold.roles:
        with open_dataset(files[name]) as ds:
            if name in fold.trains():
                sel = ds.splits <= 1  # train and val frames
                seen.append((name, ds.times[sel], ds.timestep_s))
            if name in fold.tests():
                starts = ds.windows(n_in, n_out, "test")
                if not len(starts):
                    raise RadarcastError(f"datasets.{name}: no test window of {n_in} + {n_out}"
                                         " frames (too few frames for its split?)")
                tests.append((name, ds.times[starts], ds.times[starts + n_in + n_out - 1]))
    for name, t0, t1 in tests:
        for other, times, step in seen:
            if not len(times):
                continue
            gap = (n_in + n_out) * step
            lo = np.searchsorted(times, t0 - gap, side="right")
            hi = np.searchsorted(times, t1 + gap, side="left")
            bad = np.flatnonzero(hi > lo)
            if len(bad):
                i = int(bad[0])
                raise RadarcastError(
                    f"the split leaks ({fold.name}): test window {i} of {name} "
                    f"({format_time(int(t0[i]))} to {format_time(int(t1[i]))}) is within "
                    f"n_in + n_out = {n_in + n_out} frames of a training/validation frame of "
                    f"{other} ({format_time(int(times[lo[i]]))}); split by whole events")
