"""The project's exception for bad user input.

Library code raises :class:`RadarcastError` (a ``ValueError``) at public boundaries with a
message that names what was expected and what came; the CLI turns it into one red line and
exit code 1.
"""


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
