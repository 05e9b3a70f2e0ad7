"""Configuration: frozen dataclasses, resolved as defaults < TOML file < command-line flags.

Each stage keeps its config dataclass beside its code (``RoverConfig`` in the ROVER module,
a model's config in its model file, ``TrainConfig`` in training); this module holds the
machinery they share: build from a dict with unknown keys refused, merge the layers, and
write the resolved result back as TOML so that it can be passed in again.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from radarcast.errors import RadarcastError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

C = TypeVar("C")


def count_or(value: int | None, default: int, what: str) -> int:
    """``value`` where one was given, else ``default``: a given 0, a negative or a fraction
    is refused by name, never silently taken for "the default" (as ``value or default``
    would)."""
    if value is None:
        return int(default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or value < 1:
        raise RadarcastError(f"{what} must be a whole number ≥ 1, got {value}")
    return int(value)


def check_finite(value: Any, what: str) -> None:
    """Refuse anything but a finite real number by name: NaN passes every comparison a
    range check makes, and ±inf breaks the arithmetic after it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RadarcastError(f"{what} must be a finite number, got {value}")


def to_dict(cfg: Any) -> dict:
    """A config dataclass (nested ones too) → plain dict of TOML-friendly values."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, Path):
            v = str(v)
        out[f.name] = v
    return out


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Turn a TOML/flag value into the field's declared type where that is unambiguous."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(value, non_none[0], where)
        return value
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value, where)
    if (hint is dict or origin is dict) and not isinstance(value, dict):
        raise RadarcastError(f"{where}: expected a table of keys and values, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value]
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, where) for v in value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise RadarcastError(f"{where}: expected {hint.__name__}, got {value!r}")
    if hint is int and isinstance(value, bool):
        raise RadarcastError(f"{where}: expected int, got {value!r}")
    return value


def from_dict(cls: type[C], data: dict, section: str = "") -> C:
    """Build ``cls`` from ``data``, refusing keys that ``cls`` does not have."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f" in [{section}]" if section else ""
        raise RadarcastError(
            f"unknown config key {unknown[0]!r}{where}; valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {
        k: _coerce(v, hints[k], f"{section + '.' if section else ''}{k}") for k, v in data.items()
    }
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise RadarcastError(f"bad config for {cls.__name__}: {e}") from None


def load_toml(path: str | os.PathLike) -> dict:
    """Read a TOML file; a syntax error becomes a RadarcastError naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise RadarcastError(f"{path}: no such config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RadarcastError(f"{path}: not valid TOML ({e})") from None


def resolve(
    cls: type[C],
    toml: dict | None = None,
    flags: dict | None = None,
    section: str = "",
    source: str | os.PathLike | None = None,
) -> C:
    """Defaults < ``toml`` < ``flags``; flags whose value is None are left out.

    Every TOML value is checked first, also those a flag replaces (a file that is wrong
    must not pass because today's command line happens to cover the mistake); errors in it
    name ``source``, the file it came from.
    """
    merged: dict = {}
    if toml:
        try:
            from_dict(cls, toml, section)
        except RadarcastError as e:
            raise RadarcastError(f"{source}: {e}" if source else str(e)) from None
        merged.update(toml)
    if flags:
        merged.update({k: v for k, v in flags.items() if v is not None})
    return from_dict(cls, merged, section)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(data: dict) -> str:
    """Plain values first, then one ``[table]`` per nested dict (one level of nesting
    within tables); None values are left out, as TOML has no null."""
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []

    def emit(prefix: str, d: dict) -> None:
        for k, v in d.items():
            if v is None:
                continue
            if isinstance(v, dict):
                tables.append((f"{prefix}{k}", v))
            else:
                lines.append(f"{k} = {_toml_value(v)}")

    emit("", data)
    while tables:
        name, d = tables.pop(0)
        lines.append("")
        lines.append(f"[{name}]")
        emit(f"{name}.", d)
    return "\n".join(lines).lstrip("\n") + "\n"


def write_toml(data: dict, path: str | os.PathLike) -> Path:
    """Write ``data`` as TOML atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dumps_toml(data))
    os.replace(tmp, path)
    return path
