"""The Typer application object and what every command shares: console, errors, progress."""

from __future__ import annotations

import functools
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from radarcast import __version__
from radarcast.errors import describe_os_error, output_name  # noqa: F401  (output_name: re-exported)


class OneLineUsageErrors(TyperGroup):
    """The app's command group. Click reports a usage error (a value of the wrong type, a
    missing argument, an unknown option or command) as a usage box and exit code 2; radarcast
    makes each one line on stderr naming the option and the value, exit code 1, like every
    other bad input. Subcommands parse their arguments inside the group's ``invoke``, so
    these two methods see every usage error. ``--help`` is not an error and stays as it is."""

    def make_context(self, info_name, args, *rest, **kwargs):
        with _one_line_usage_errors(info_name or "radarcast"):
            return super().make_context(info_name, args, *rest, **kwargs)

    def invoke(self, ctx):
        with _one_line_usage_errors(ctx.command_path, ctx):
            return super().invoke(ctx)

    def resolve_command(self, ctx, args):
        name, cmd, rest = super().resolve_command(ctx, args)
        ctx.meta["radarcast.command"] = f"{ctx.command_path} {name}"  # for errors without ctx
        return name, cmd, rest


@contextmanager
def _one_line_usage_errors(path: str, ctx=None) -> Iterator[None]:
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    try:
        yield
    except NoArgsIsHelpError:  # `radarcast` alone prints the help
        raise
    except ClickException as e:
        if getattr(e, "ctx", None) is not None:
            path = e.ctx.command_path
        elif ctx is not None:  # the parser's own errors (an option without its value)
            path = ctx.meta.get("radarcast.command", path)
        line = usage_line(e, path)
        err_console.print(Text("error: ", style="bold red") + Text(line), soft_wrap=True)
        raise typer.Exit(1) from None


def usage_line(e, command_path: str) -> str:
    """Click's usage error as one line: what is wrong with which option, and where the help is,
    e.g. ``--members: 'abc' is not a whole number (see radarcast forecast --help)``."""
    from typer._click.exceptions import BadParameter, MissingParameter

    see = f" (see {command_path} --help)"
    param = getattr(e, "param", None)
    if isinstance(e, BadParameter) and param is not None:
        name = _param_name(param)
        if isinstance(e, MissingParameter):
            text = f"{name} is required" if param.param_type_name == "option" else (
                f"missing argument {name}")  # fmt: skip
        else:
            text = f"{name}: {_bad_value(e)}"
    else:
        text = e.format_message()
        text = text[:1].lower() + text[1:]  # "no such option: --x", as radarcast's own lines
    return " ".join(text.split()).rstrip(".") + see


def _param_name(param) -> str:
    if param.param_type_name == "option":
        return max(param.opts, key=len)  # --output, not -o
    return (param.name or "argument").upper()


def _bad_value(e) -> str:
    """'abc' is not a whole number / a number; else the validator's own reason."""
    cause = e.__cause__
    errors = cause.errors() if hasattr(cause, "errors") else []
    if not errors:
        return e.message
    first = errors[0]
    value, kind = first.get("input"), first.get("type", "")
    if kind.startswith("int_"):
        return f"{value!r} is not a whole number"
    if kind.startswith("float_"):
        return f"{value!r} is not a number"
    reason = re.sub(r"^(Value|Assertion) error, ", "", str(first.get("msg", e.message)))
    return reason if repr(value) in reason else f"{value!r}: {reason}"


app = typer.Typer(
    name="radarcast",
    cls=OneLineUsageErrors,
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
            check_text_arguments(kwargs)
            with warnings.catch_warnings():
                if not sys.warnoptions:  # -W or PYTHONWARNINGS: the user asked to see them
                    warnings.simplefilter("ignore")  # other libraries' notes, not ours
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


def check_text_arguments(kwargs: dict) -> None:
    """Refuse an argument that holds bytes that are not UTF-8 (a file name made elsewhere):
    radarcast records names inside the files it writes, and HDF5 stores text as UTF-8."""
    from radarcast.errors import RadarcastError

    for name, value in kwargs.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(v, (str, os.PathLike)):
                continue
            text = os.fspath(v)
            if not isinstance(text, str):
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                raise RadarcastError(
                    f"'{shown}' ({name.replace('_', '-')}): the name is not valid UTF-8 text; "
                    "rename the file (radarcast records names inside the files it writes)"
                ) from None


def _quiet_hdf5_dealloc(hook: Callable) -> Callable:
    """After a failed write, h5py reports every handle it cannot release as an ignored
    exception with a traceback; the one-line error already says what happened."""

    def quiet(unraisable) -> None:
        if "h5py" not in repr(unraisable.object):
            hook(unraisable)

    quiet.quiet_hdf5 = True
    return quiet


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
    for v in values:
        if not math.isfinite(v):
            raise RadarcastError(f"{what} must be finite numbers, got {v}")
    return values


def at_least(value: float | None, low: float, what: str) -> None:
    """Refuse ``value`` below ``low`` by the option's name (None: not given, fine)."""
    from radarcast.errors import RadarcastError

    if value is not None and not value >= low:
        raise RadarcastError(f"{what} must be ≥ {low}, got {value}")
