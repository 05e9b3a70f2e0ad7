"""Input files: expanding paths and globs, telling their kind, and frame times from names."""

from __future__ import annotations

import glob
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from radarcast.data.raw import CIKM_SUFFIXES, IMAGE_SUFFIXES, NUMPY_SUFFIXES
from radarcast.errors import RadarcastError


# --------------------------------------------------------------------------- inputs
def has_suffix(path: Path, suffixes: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


def resolve_inputs(inputs: list[str], suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files, folders and globs → a list of files, in the order given; a folder gives its
    files sorted by name (only those ending in ``suffixes`` when given). Raises
    RadarcastError when nothing matched."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                q
                for q in p.iterdir()
                if q.is_file()
                and not q.name.startswith(".")
                and (suffixes is None or has_suffix(q, suffixes))
            )
            if not found:
                raise RadarcastError(f"{p}: the folder holds no input files")
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        elif glob.has_magic(item):
            found = sorted(Path(q) for q in glob.glob(item) if Path(q).is_file())
            if not found:
                raise RadarcastError(f"{item}: no files match this pattern")
            paths.extend(found)
        else:
            raise RadarcastError(f"{item}: no such file or folder")
    if not paths:
        raise RadarcastError("no inputs given")
    return paths


def detect_kind(paths: list[Path]) -> str:
    """'images', 'npy' or 'cikm' from the file suffixes (all inputs must agree)."""
    kinds = set()
    for p in paths:
        if has_suffix(p, IMAGE_SUFFIXES):
            kinds.add("images")
        elif has_suffix(p, NUMPY_SUFFIXES):
            kinds.add("npy")
        elif has_suffix(p, CIKM_SUFFIXES):
            kinds.add("cikm")
        else:
            raise RadarcastError(
                f"{p}: unknown input type; expected {', '.join(IMAGE_SUFFIXES + NUMPY_SUFFIXES)}"
                " or a CIKM .txt (or pass --format)"
            )
    if len(kinds) > 1:
        raise RadarcastError(
            f"inputs mix kinds ({', '.join(sorted(kinds))}); give one kind per run"
        )
    return kinds.pop()


# --------------------------------------------------------------------------- times
_DIRECTIVES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "j": r"\d{3}",
    "H": r"\d{2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
}


def compile_time_pattern(pattern: str) -> Callable[[str], int | None]:
    """A strftime pattern → function(file name) → seconds since the epoch (UTC), or None
    when the name does not contain the pattern. The pattern may match any part of the name;
    ``*`` and ``?`` match any text / any one character."""
    regex, directives, i = "", [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "%" and i + 1 < len(pattern):
            d = pattern[i + 1]
            if d == "%":
                regex += "%"
            elif d in _DIRECTIVES:
                regex += f"({_DIRECTIVES[d]})"
                directives.append("%" + d)
            else:
                raise RadarcastError(
                    f"--time-pattern {pattern!r}: %{d} is not supported; "
                    "use %Y %y %m %d %j %H %M %S"
                )
            i += 2
            continue
        regex += ".*?" if c == "*" else "." if c == "?" else re.escape(c)
        i += 1
    if not directives:
        raise RadarcastError(f"--time-pattern {pattern!r} holds no strftime field such as %Y")
    compiled = re.compile(regex)

    def parse(name: str) -> int | None:
        m = compiled.search(name)
        if m is None:
            return None
        try:
            dt = datetime.strptime("|".join(m.groups()), "|".join(directives))
        except ValueError:
            return None
        return int(dt.replace(tzinfo=timezone.utc).timestamp())

    return parse


def times_from_names(paths: list[Path], pattern: str | None) -> list[int | None]:
    if pattern is None:
        return [None] * len(paths)
    parse = compile_time_pattern(pattern)
    out = []
    for p in paths:
        t = parse(p.name)
        if t is None:
            raise RadarcastError(f"{p}: the file name does not match --time-pattern {pattern!r}")
        out.append(t)
    return out
