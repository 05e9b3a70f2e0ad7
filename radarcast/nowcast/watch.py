"""Live mode: a nowcast for every new complete radar file that arrives in a folder.

A file counts as complete when its size and modification time have not changed for
``settle_s`` seconds (a file still being written keeps changing); hidden files,
``*.tmp``/``*.part`` names and files not of the reader's kind (a checksum ``X.gif.md5``
beside ``X.gif``) are never read. Each new file is the newest frame of one
nowcast, written atomically as ``OUT_DIR/nowcast_YYYYmmddTHHMMZ.SUFFIX``; an output that
already exists marks its file as done, so a restart (or ``--once`` from cron) redoes
nothing. A file that cannot be read, or that is older than the newest nowcast made
(late), is logged and skipped. State is the folder listing and one number per run, so
memory stays flat however long it runs.
"""

from __future__ import annotations

import fnmatch
import math
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from radarcast.errors import RadarcastError, describe_os_error

MAX_WAIT_S = 86400  # --settle and --poll: more than a day is a typo, and select() overflows
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
LogFn = Callable[[str, str], None]
"""log(kind, message): kind is 'done', 'skip', 'wait' or 'info'."""


@dataclass(frozen=True)
class WatchConfig:
    """Where to look, what to write and how patiently.

    ``pattern`` is a glob on file names; ``suffix`` the output format (.h5, .nc, ...);
    ``settle_s`` how long a file must stay unchanged; ``poll_s`` the scan interval;
    ``inputs`` the suffixes of the reader's files (others are no frames), None: any.
    """

    folder: Path
    pattern: str
    out_dir: Path
    suffix: str = ".h5"
    settle_s: float = 2.0
    poll_s: float = 1.0
    once: bool = False
    inputs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # a NaN or negative wait silently means "no wait", inf or 1e308 overflows select()
        for name, v, low in (("--settle", self.settle_s, "≥ 0"), ("--poll", self.poll_s, "> 0")):
            ok = isinstance(v, (int, float)) and math.isfinite(v) and v <= MAX_WAIT_S
            if not ok or v < 0 or (low == "> 0" and v == 0):
                raise RadarcastError(
                    f"{name} must be a number of seconds {low} and ≤ {MAX_WAIT_S} (a day), got {v}"
                )


def check_folders(cfg: WatchConfig) -> None:
    """RadarcastError unless the watched folder and the output folder exist."""
    if not cfg.folder.is_dir():
        raise RadarcastError(f"--watch {cfg.folder}: no such folder")
    if not cfg.out_dir.is_dir():
        raise RadarcastError(f"--out-dir {cfg.out_dir}: no such folder")


def output_name(out_dir: Path, analysis_time: int, suffix: str) -> Path:
    stamp = datetime.fromtimestamp(analysis_time, tz=timezone.utc).strftime("%Y%m%dT%H%MZ")
    return out_dir / f"nowcast_{stamp}{suffix}"


class StopFlag:
    """A stop flag that a signal handler may set: ``set``/``is_set``/``wait`` as
    :class:`threading.Event`, without its lock.

    ``threading.Event.set`` from a signal handler deadlocks: the handler runs in the main
    thread between two bytecodes, and when those are inside ``Event.wait`` (which holds the
    event's lock around its wait) ``set`` blocks on that lock forever, and every later
    SIGTERM with it. Here ``set`` stores a bool and writes one byte to a pipe (no lock);
    ``wait`` sleeps in ``select`` on that pipe, so a signal wakes it at once.
    """

    def __init__(self) -> None:
        self._flag = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)

    def set(self) -> None:
        self._flag = True
        try:
            os.write(self._w, b"x")
        except OSError:  # pipe full (already woken) or closed
            pass

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        if not self._flag:
            select.select([self._r], [], [], timeout)
        return self._flag

    def close(self) -> None:
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass


class Stopper:
    """SIGTERM and SIGINT set a flag that the loop checks (and that wakes its sleep);
    the old handlers are restored on exit."""

    def __init__(self) -> None:
        self.event = StopFlag()
        self._old: dict = {}

    def _handler(self, signum, frame) -> None:
        self.event.set()

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self.event.close()


def candidates(cfg: WatchConfig) -> dict[str, tuple[int, int]]:
    """name → (size, mtime_ns) of every matching input file of the reader's kind in the
    folder (others are left out without a word: sidecars arrive with every product)."""
    out = {}
    try:
        entries = list(os.scandir(cfg.folder))
    except OSError as e:
        raise RadarcastError(f"{cfg.folder}: cannot list the folder ({e.strerror})") from None
    for e in entries:
        name = e.name
        if name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES):
            continue
        if not fnmatch.fnmatch(name, cfg.pattern):
            continue
        if cfg.inputs is not None and not name.lower().endswith(cfg.inputs):
            continue
        try:
            st = e.stat()
        except OSError:
            continue  # removed between listing and stat
        if e.is_file():
            out[name] = (st.st_size, st.st_mtime_ns)
    return out


def watch(
    cfg: WatchConfig,
    make: Callable[[list[str], Path], tuple[Path, int]],
    time_of: Callable[[str], int | None],
    log: LogFn,
    stop: StopFlag | threading.Event,
) -> int:
    """Run until ``stop`` is set (or one pass with ``cfg.once``); returns nowcasts written.

    ``make(files, out_dir)`` builds and writes one nowcast whose newest input is
    ``files[-1]`` and returns (path, analysis time); ``time_of(name)`` is a file's valid
    time from its name (None when unknown, then files go by name order).
    """
    check_folders(cfg)
    order = lambda n: (time_of(n) or 0, n)  # noqa: E731
    seen = candidates(cfg)  # the last listing: the settle check compares with it
    stable_since = dict.fromkeys(seen, time.monotonic())
    done = set(sorted(seen, key=order)[:-1])  # at start only the newest file is due
    bad: set[str] = set()  # unreadable files: never an input of a later nowcast
    newest = None  # analysis time of the newest nowcast made in this run
    written = 0
    if cfg.once:
        stop.wait(cfg.settle_s)
    while not stop.is_set():
        now = time.monotonic()
        listing = candidates(cfg)
        for name, stat in listing.items():
            if seen.get(name) != stat:
                stable_since[name] = now
        seen = listing
        stable_since = {k: v for k, v in stable_since.items() if k in listing}
        done &= listing.keys()
        bad &= listing.keys()
        ready = [n for n in listing if n not in done and now - stable_since[n] >= cfg.settle_s]
        ready.sort(key=order)
        for name in ready:
            if stop.is_set():
                break
            done.add(name)
            t = time_of(name)
            if t is not None and newest is not None and t <= newest:
                log("skip", f"{name}: late (not newer than the last nowcast); skipped")
                continue
            if t is not None and output_name(cfg.out_dir, t, cfg.suffix).exists():
                continue
            try:
                # unreadable files, and misnamed ones (when this one has a time), are no inputs
                files = [
                    n for n in listing if n not in bad and (t is None or time_of(n) is not None)
                ]
                files.sort(key=order)
                files = [str(cfg.folder / n) for n in files[: files.index(name) + 1]]
                path, t0 = make(files, cfg.out_dir)
            except (RadarcastError, OSError) as e:
                if str(e).startswith(str(cfg.folder / name)):  # the reader refused it
                    bad.add(name)
                reason = describe_os_error(e)[0] if isinstance(e, OSError) else str(e)
                log("skip", f"{name}: {reason}; skipped")
                continue
            except Exception as e:  # noqa: BLE001 - one bad file must not stop a live run
                log("skip", f"{name}: failed ({type(e).__name__}: {e}); skipped")
                continue
            newest = t0 if newest is None else max(newest, t0)
            written += 1
            log("done", f"{name} → {path}")
        if cfg.once:
            pending = [n for n in listing if n not in done]
            if pending:
                log("wait", f"{len(pending)} file(s) still being written; left for the next run")
            break
        stop.wait(cfg.poll_s)
    return written
