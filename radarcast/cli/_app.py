"""The Typer application object and what every command shares: console, errors, progress."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from radarcast import __version__

app = typer.Typer(
    name="radarcast",
    help="Radar precipitation nowcasting: datasets, ROVER, ConvLSTM/LSTM, scores, animations.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def _version(value: bool) -> None:
    if value:
        console.print(f"radarcast {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Radar precipitation nowcasting from raw grids to scores and animations."""


ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        help="CPU threads for torch (default: the cores free now; 1 on a busy machine).",
        show_default=False,
    ),
]


def apply_threads(threads: int | None) -> int:
    """Set the compute threads for this command (radarcast.threads.set_threads)."""
    from radarcast.threads import set_threads

    return set_threads(threads)


def fail(message: str) -> NoReturn:
    """Print one red line on stderr and exit with code 1."""
    err_console.print(Text("error: ", style="bold red") + Text(str(message)), soft_wrap=True)
    raise typer.Exit(1)


def user_errors(fn: Callable) -> Callable:
    """Turn a user's mistake (RadarcastError, OSError) or Ctrl-C into one line and an exit
    code, never a traceback. Anything else is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from radarcast.errors import RadarcastError

        if not getattr(sys.unraisablehook, "quiet_hdf5", False):
            sys.unraisablehook = _quiet_hdf5_dealloc(sys.unraisablehook)
        try:
            return fn(*args, **kwargs)
        except RadarcastError as e:
            fail(str(e))
        except OSError as e:
            message, write_failed = describe_os_error(e)
            if write_failed:
                # HDF5 crashes at interpreter exit after a failed file write (h5py#914, in
                # libhdf5): the library already removed its temporary file, so end here.
                err_console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(1)
            fail(message)
        except KeyboardInterrupt:
            err_console.print(Text("interrupted: no partial file was left", style="yellow"))
            raise typer.Exit(130) from None

    return wrapper


def _quiet_hdf5_dealloc(hook: Callable) -> Callable:
    """After a failed write, h5py reports every handle it cannot release as an ignored
    exception with a traceback; the one-line error already says what happened."""

    def quiet(unraisable) -> None:
        if "h5py" not in repr(unraisable.object):
            hook(unraisable)

    quiet.quiet_hdf5 = True
    return quiet


def describe_os_error(e: OSError) -> tuple[str, bool]:
    """One line for an OSError, and whether it is a failed write inside HDF5 (whose long
    multi-line message names the file, errno and error text)."""
    text = str(e.strerror or e)
    where = f"{e.filename}: " if getattr(e, "filename", None) else ""
    m = re.search(
        r"(?:file)?name = '([^']*)'.*?errno = (\d+), error message = '([^']*)'", text, re.S
    )
    if m is None:
        return " ".join(f"{where}{text}".split()), False
    # name the output, not the hidden temporary file it was being written to
    name = re.sub(r"(^|/)\.([^/]+)\.\d+\.tmp(\.[^/.]+)?$", r"\1\2\3", m.group(1))
    return f"{name}: {m.group(3)} (errno {m.group(2)})", "write failed" in text


def command(*args, **kwargs) -> Callable:
    """``@app.command`` with :func:`user_errors` applied."""

    def decorate(fn: Callable) -> Callable:
        return app.command(*args, **kwargs)(user_errors(fn))

    return decorate


@contextmanager
def progress(description: str, transient: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar, handed to library code as ``callback(done, total)``.

    The bar is drawn only when stderr is a terminal, so logs and error output stay clean.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,  # no bar, and no stray blank line, in logs
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def parse_floats(text: str, what: str) -> list[float]:
    """'0.5,2,5' → [0.5, 2.0, 5.0], with an error naming ``what`` otherwise."""
    from radarcast.errors import RadarcastError

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RadarcastError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise RadarcastError(f"{what} is empty")
    return values
