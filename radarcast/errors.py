"""The project's exception for bad user input.

Library code raises :class:`RadarcastError` (a ``ValueError``) at public boundaries with a
message that names what was expected and what came; the CLI turns it into one red line and
exit code 1.
"""


import os
import re


class RadarcastError(ValueError):
    """Bad input from a user: a file, a flag or a configuration value."""


def memory_limit() -> int:
    """Bytes of memory this process may use at most: the machine's physical memory, or a
    smaller cgroup limit (containers) where one is set."""
    import os

    limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            text = fh.read().strip()
        if text.isdigit():
            limit = min(limit, int(text))
    except OSError:
        pass
    return limit


def gib(nbytes: float) -> str:
    """``nbytes`` as a short GiB figure for messages."""
    return f"{nbytes / 2**30:,.1f} GiB"


def check_size(nbytes: float, what: str) -> None:
    """Refuse, before anything is allocated, work whose memory ``nbytes`` exceeds what
    this machine has; ``what`` names the request (e.g. ``"--resize 100000x100000"``)."""
    limit = memory_limit()
    if nbytes > limit:
        raise RadarcastError(
            f"{what} would need about {gib(nbytes)} of memory; this machine has {gib(limit)}"
        )


# a writer's hidden temporary (data/schema.py temporary_path): .NAME.PID.tmp, .STEM.PID.tmp.SUF,
# and anything inside one (a Zarr store is a folder)
_TEMPORARY = re.compile(r"(^|/)\.([^/]+)\.\d+\.tmp(\.[^/.]+)?(/.*)?$")


def output_name(path) -> str:
    """The user's output for a path that names a writer's hidden temporary (or a file in
    it), e.g. ``out/.a.nc.123.tmp`` → ``out/a.nc``; other paths as they are."""
    text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    return _TEMPORARY.sub(r"\1\2\3", text)  # (a file descriptor is a number)


def describe_os_error(e: OSError) -> tuple[str, bool]:
    """One line for an OSError, naming the output rather than its hidden temporary, and
    whether it is a failed write inside HDF5 (whose long multi-line message names the file,
    errno and error text)."""
    text = str(e.strerror or e)
    names = [output_name(f) for f in (e.filename, e.filename2) if f is not None and f != ""]
    names = list(dict.fromkeys(names))  # a rename names both ends: often one output
    where = f"{' -> '.join(names)}: " if names else ""
    m = re.search(
        r"(?:file)?name = '([^']*)'.*?errno = (\d+), error message = '([^']*)'", text, re.S
    )
    if m is None:
        return " ".join(f"{where}{text}".split()), False
    return f"{output_name(m.group(1))}: {m.group(3)} (errno {m.group(2)})", "write failed" in text
