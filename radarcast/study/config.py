"""The study file: datasets, split, methods, scoring and cases, read from TOML and checked.

A study file has one ``[study]`` table, a ``[datasets.NAME]`` table per event, a
``[methods.NAME]`` table per method and optional ``[[cases]]`` to animate. Unknown keys and
methods are refused by name with the valid ones listed; paths are relative to the study
file. Layout and every key: docs/study.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from radarcast.baselines.pysteps_methods import N_IN as PYSTEPS_N_IN
from radarcast.config import from_dict, load_toml
from radarcast.errors import RadarcastError
from radarcast.forecasters import ENSEMBLE_OPTIONS, METHODS

KINDS = (*METHODS, "model")  # the forecasters registry's names, and a trained model
ENSEMBLES = tuple(ENSEMBLE_OPTIONS)  # the kinds that take members
SPLIT_MODES = ("fixed", "leave-one-event-out")
ROLES = {"train": (1.0, 0.0, 0.0), "val": (0.0, 1.0, 0.0), "test": (0.0, 0.0, 1.0)}
SECTIONS = ("study", "datasets", "methods", "cases")


@dataclass(frozen=True)
class StudySettings:
    """The ``[study]`` table: the question, window lengths, scoring and the split mode.

    ``thresholds`` are in ``units`` ('mmh', 'dbz', 'pixel'), or ``preset`` names a set;
    ``reference`` is the method every other is differenced against (paired bootstrap,
    resampling ``bootstrap_unit``: 'auto', 'segment', 'block' or 'window', radarcast.bootstrap);
    ``split`` 'fixed' uses each dataset's ``split``, 'leave-one-event-out' holds out each
    test-pool event in turn and trains on the others (the first of them split by
    ``cv_validation`` for validation); ``parallel`` trainings run at once.
    """

    name: str = "study"
    question: str = ""
    n_in: int = 5
    n_out: int = 12
    thresholds: tuple[float, ...] = (0.5, 2.0, 5.0, 10.0)
    units: str = "mmh"
    preset: str | None = None
    fss_scales: tuple[int, ...] = (1, 4, 16)
    bootstrap: int = 1000
    bootstrap_unit: str = "auto"
    seed: int = 0
    reference: str = "rover"
    split: str = "fixed"
    cv_events: tuple[str, ...] = ()
    cv_validation: tuple[float, float, float] = (0.55, 0.45, 0.0)
    parallel: int = 1
    credits: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """One event: raw files (``raw`` globs + ``preprocess`` options), synthetic storms
    (``synth``: SynthConfig fields) or an existing dataset (``h5``); its ``split`` is a role
    ('train', 'val', 'test') or train/val/test fractions of its frames."""

    name: str = ""
    label: str = ""
    raw: tuple[str, ...] = ()
    preprocess: dict = field(default_factory=dict)
    synth: dict = field(default_factory=dict)
    h5: str | None = None
    split: str | tuple[float, ...] = "train"


@dataclass(frozen=True)
class MethodSpec:
    """One method: ``kind`` a name of the forecasters registry (persistence, rover,
    pysteps:extrapolation | sprog | steps | anvil) or model. A model trains from ``preset``
    for ``steps`` steps (or ``minutes`` of training, probed) per seed in ``seeds``; ``train``
    holds any other TrainConfig field; ``options`` go to the forecaster. A kind that makes
    ensembles (:data:`ENSEMBLES`) with ``members`` is that ensemble (``forecast --method
    KIND --members N --seed S``), one row per seed in ``seeds``, scored with CRPS/Brier
    beside its ensemble mean's CSI/HSS."""

    name: str = ""
    kind: str = "model"
    label: str = ""
    preset: str | None = None
    steps: int | None = None
    minutes: float | None = None
    seeds: tuple[int, ...] = (0,)
    members: int | None = None
    train: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CaseSpec:
    """A window to animate: ``window`` index in the dataset's test windows, or 'growth'
    (most wet area gained from t0 to the last lead) or 'wettest' (most wet area at t0)."""

    dataset: str = ""
    window: int | str = "wettest"
    methods: tuple[str, ...] = ()
    overlay: float | None = None
    title: str = ""


@dataclass(frozen=True)
class Study:
    """A whole study file, checked; ``root`` is the folder of the study file."""

    settings: StudySettings
    datasets: dict[str, DatasetSpec]
    methods: dict[str, MethodSpec]
    cases: tuple[CaseSpec, ...]
    root: Path
    path: Path

    def digest(self) -> str:
        """A hash of everything the study file declares (not of its formatting)."""
        return hash_json(to_json(self))

    def models(self) -> list[MethodSpec]:
        return [m for m in self.methods.values() if m.kind == "model"]

    def resolve_path(self, text: str) -> Path:
        p = Path(text).expanduser()
        return p if p.is_absolute() else self.root / p


def hash_json(obj) -> str:
    """sha256 (16 hex digits) of ``obj`` as canonical JSON."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def to_json(study: Study) -> dict:
    """The study as plain data (for the manifest and the report)."""
    return {
        "study": dataclasses.asdict(study.settings),
        "datasets": {k: dataclasses.asdict(v) for k, v in study.datasets.items()},
        "methods": {k: dataclasses.asdict(v) for k, v in study.methods.items()},
        "cases": [dataclasses.asdict(c) for c in study.cases],
    }


def load_study(path) -> Study:
    """Read and check a study file; RadarcastError naming the first problem."""
    path = Path(path)
    doc = load_toml(path)
    where = str(path)
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise RadarcastError(f"{where}: unknown section [{unknown[0]}]; "
                             f"valid sections: {', '.join(SECTIONS)}")
    settings = from_dict(StudySettings, _table(doc, "study", where), "study")
    datasets = {name: _dataset(name, t, where)
                for name, t in _table(doc, "datasets", where).items()}
    methods = {name: _method(name, t, where) for name, t in _table(doc, "methods", where).items()}
    raw_cases = doc.get("cases", [])
    if not isinstance(raw_cases, list):
        raise RadarcastError(f"{where}: cases must be an array of tables ([[cases]])")
    cases = tuple(from_dict(CaseSpec, c, f"cases[{i}]") for i, c in enumerate(raw_cases))
    study = Study(settings, datasets, methods, cases, path.resolve().parent, path.resolve())
    check_study(study)
    return study


def _table(doc: dict, key: str, where: str) -> dict:
    t = doc.get(key, {})
    if not isinstance(t, dict):
        raise RadarcastError(f"{where}: [{key}] must be a table")
    for name, v in t.items():
        if key != "study" and not isinstance(v, dict):
            raise RadarcastError(f"{where}: [{key}.{name}] must be a table")
    return t


def _dataset(name: str, t: dict, where: str) -> DatasetSpec:
    t = dict(t)
    if isinstance(t.get("raw"), str):
        t["raw"] = [t["raw"]]
    split = t.get("split", "train")
    if isinstance(split, list):
        t["split"] = tuple(float(x) for x in split)
    spec = from_dict(DatasetSpec, {**t, "name": name}, f"datasets.{name}")
    sources = [bool(spec.raw), bool(spec.synth), spec.h5 is not None]
    if sum(sources) != 1:
        raise RadarcastError(f"{where}: [datasets.{name}] needs exactly one of raw, synth, h5")
    if spec.split == "file" and spec.h5 is None:
        raise RadarcastError(f"{where}: datasets.{name}.split 'file' is for h5 datasets only")
    if isinstance(spec.split, str) and spec.split not in (*ROLES, "file"):
        raise RadarcastError(f"{where}: datasets.{name}.split {spec.split!r} is not one of "
                             f"{', '.join(ROLES)}, 'file' (h5: its own split) or 3 fractions "
                             "[train, val, test]")
    if isinstance(spec.split, tuple) and (len(spec.split) != 3 or min(spec.split) < 0
                                          or abs(sum(spec.split) - 1) > 1e-6):
        raise RadarcastError(f"{where}: datasets.{name}.split must be 3 fractions ≥ 0 "
                             f"summing to 1, got {list(spec.split)}")
    return spec


def _method(name: str, t: dict, where: str) -> MethodSpec:
    spec = from_dict(MethodSpec, {**t, "name": name}, f"methods.{name}")
    if spec.kind not in KINDS:
        raise RadarcastError(f"{where}: methods.{name}.kind {spec.kind!r} is unknown; "
                             f"valid kinds: {', '.join(KINDS)}")
    if spec.kind.startswith("pysteps:") and pysteps_missing():
        raise RadarcastError(f"{where}: methods.{name}.kind {spec.kind!r} needs pysteps: "
                             "pip install 'radarcast[pysteps]'")
    if spec.kind == "model":
        if (spec.steps is None) == (spec.minutes is None):
            raise RadarcastError(f"{where}: methods.{name} needs one of steps or minutes")
    if spec.members is not None and (spec.kind not in ENSEMBLES or spec.members < 1):
        raise RadarcastError(f"{where}: methods.{name}.members is for the kinds that make "
                             f"ensembles ({', '.join(ENSEMBLES)}), a whole number ≥ 1; got "
                             f"{spec.members!r} for kind {spec.kind!r}")
    if "seeds" in t and spec.kind != "model" and spec.members is None:
        raise RadarcastError(f"{where}: methods.{name}.seeds is for models and for "
                             f"ensembles given members (kinds {', '.join(ENSEMBLES)}); "
                             f"got seeds for kind {spec.kind!r} without members")
    if spec.kind != "model" and {"members", "seed"} & set(spec.options):
        raise RadarcastError(f"{where}: methods.{name}: give members and seeds as keys of "
                             "the method, not in options")
    if not spec.seeds:
        raise RadarcastError(f"{where}: methods.{name}.seeds is empty")
    if spec.kind == "model":
        _check_train_keys(name, spec.train, where)
    elif spec.train or spec.steps or spec.minutes or spec.preset:
        raise RadarcastError(f"{where}: methods.{name} is {spec.kind}: it takes no training "
                             "keys (preset, steps, minutes, train)")
    return spec


def pysteps_missing() -> bool:
    """Whether pysteps cannot be imported (found without importing it: it prints on import)."""
    import importlib.util

    return importlib.util.find_spec("pysteps") is None


# training keys that the study sets itself, per model
STUDY_SET = ("datasets", "out", "steps", "device", "seed", "n_in", "n_out", "preset")


def _check_train_keys(name: str, train: dict, where: str) -> None:
    from radarcast.training import TrainConfig  # torch is imported only when models are asked

    valid = sorted({f.name for f in dataclasses.fields(TrainConfig)} - set(STUDY_SET))
    for key in train:
        if key not in valid:
            raise RadarcastError(f"{where}: unknown key {key!r} in methods.{name}.train; "
                                 f"valid keys: {', '.join(valid)}")


def check_study(study: Study) -> None:
    """Cross-checks: names that refer to each other, a test set, the split mode."""
    s, where = study.settings, str(study.path)
    if s.split not in SPLIT_MODES:
        raise RadarcastError(f"{where}: study.split {s.split!r} is unknown; "
                             f"valid: {', '.join(SPLIT_MODES)}")
    from radarcast.bootstrap import UNITS

    if s.bootstrap_unit not in UNITS:
        raise RadarcastError(f"{where}: study.bootstrap_unit {s.bootstrap_unit!r} is unknown; "
                             f"valid: {', '.join(UNITS)}")
    if not study.datasets:
        raise RadarcastError(f"{where}: no [datasets.NAME] table")
    if not study.methods:
        raise RadarcastError(f"{where}: no [methods.NAME] table")
    if s.n_in < 1 or s.n_out < 1 or s.bootstrap < 0 or s.parallel < 1:
        raise RadarcastError(f"{where}: n_in, n_out and parallel must be ≥ 1, bootstrap ≥ 0")
    for m in study.methods.values():
        if m.kind.startswith("pysteps:") and s.n_in < PYSTEPS_N_IN:
            raise RadarcastError(f"{where}: methods.{m.name} ({m.kind}) needs n_in ≥ "
                                 f"{PYSTEPS_N_IN} input frames; study.n_in is {s.n_in}")
    if s.reference not in study.methods and s.reference != "persistence":
        raise RadarcastError(f"{where}: study.reference {s.reference!r} is not a method; "
                             f"methods: {', '.join(study.methods)}")
    for e in s.cv_events:
        _known(e, study.datasets, "study.cv_events", where)
    tests = [d for d in study.datasets.values() if _has_test(d)]
    if s.split == "fixed" and not tests:
        raise RadarcastError(f"{where}: no dataset has test frames (split = 'test')")
    if s.split == "leave-one-event-out" and len(s.cv_events or study.datasets) < 2:
        raise RadarcastError(f"{where}: leave-one-event-out needs at least 2 events")
    for i, c in enumerate(study.cases):
        _known(c.dataset, study.datasets, f"cases[{i}].dataset", where)
        for m in c.methods:
            _known(m, study.methods, f"cases[{i}].methods", where)
        if isinstance(c.window, str) and c.window not in ("growth", "wettest"):
            raise RadarcastError(f"{where}: cases[{i}].window {c.window!r}: give a window "
                                 "number, 'growth' or 'wettest'")


def _known(name: str, table: dict, key: str, where: str) -> None:
    if name not in table:
        raise RadarcastError(f"{where}: {key} names {name!r}, which is not declared; "
                             f"declared: {', '.join(table)}")


def _has_test(d: DatasetSpec) -> bool:
    return d.split in ("test", "file") or (isinstance(d.split, tuple) and d.split[2] > 0)


def role_fractions(split) -> tuple[float, float, float] | None:
    """A dataset's split as train/val/test fractions (None: the h5 file's own split)."""
    if split == "file":
        return None
    return ROLES[split] if isinstance(split, str) else tuple(split)
