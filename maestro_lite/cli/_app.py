"""The ``maestro`` command group: one line for every error, every value checked as parsed.

Every command and sub-command group of the CLI is a :class:`MaestroGroup`, so whatever is
added later gets the same treatment without asking for it:

- a :class:`~maestro_lite.errors.MaestroError` prints as one line (what happened, and what
  to do) with exit code 2 for misuse and 1 otherwise; an ``OSError`` (a disk full, a
  permission denied) as one line too; anything else as one line that says it is a bug.
  ``MAESTRO_DEBUG=1`` shows the traceback instead.
- an empty or blank value (``maestro run ""``, ``--corpus ""``) and a float that is not a
  number (``--settle nan``) are refused with the option's name before the command runs.
- ``-h`` is ``--help`` everywhere.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from ..errors import MaestroError, UserError
from ._common import err_console

__all__ = ["CONTEXT", "MaestroGroup", "app", "report_error"]

_SIGNALS: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    # Other errors of click's (vendored by typer or not), which typer reports itself.
    *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
)
_USAGE: tuple[type[BaseException], ...] = tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
"""Context settings of every group: ``-h`` as ``--help``."""


def report_error(exc: BaseException) -> int:
    """Print ``exc`` as one line on stderr; the exit code it calls for."""
    if isinstance(exc, MaestroError):
        line = f"[bold red]error:[/] {escape(str(exc))}"
        if exc.hint:
            line += f" [dim]->[/] {escape(exc.hint)}"
        code = 2 if isinstance(exc, UserError) else 1
    elif isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        line = f"[bold red]error:[/] {escape(exc.strerror or str(exc))}{escape(str(where))}"
        code = 1
    else:
        line = (
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))} "
            "[dim]-> a bug in maestro-lite: please report it (MAESTRO_DEBUG=1 shows the "
            "traceback)[/]"
        )
        code = 1
    err_console.print(line, highlight=False, soft_wrap=True)
    return code


def _report_usage(exc: Any) -> int:
    """A bad option or argument as one line (typer would draw a box, wrapped at 80
    columns); the exit code of a usage error."""
    where = exc.ctx.command_path if exc.ctx is not None else "maestro"
    err_console.print(
        f"[bold red]error:[/] {escape(exc.format_message())} [dim]->[/] see `{where} -h`",
        highlight=False,
        soft_wrap=True,
    )
    return int(exc.exit_code)


def _blank(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return any(isinstance(v, str) and not v.strip() for v in value)
    return False


def _guard_param(param: Any) -> None:
    """Check ``param``'s raw value (a blank string) and its converted one (NaN) before the
    command runs; typer's own conversion and range checks run in between."""
    convert: Callable[[Any, Any], Any] = param.process_value

    def process_value(ctx: Any, value: Any) -> Any:
        if _blank(value):
            raise typer.BadParameter("must not be empty", ctx=ctx, param=param)
        converted = convert(ctx, value)
        if isinstance(converted, float) and math.isnan(converted):
            raise typer.BadParameter("must be a number", ctx=ctx, param=param)
        return converted

    param.process_value = process_value


def _guard(command: Any) -> None:
    if getattr(command, "_maestro_guarded", False):
        return
    for param in command.params:
        _guard_param(param)
    command._maestro_guarded = True


class MaestroGroup(TyperGroup):
    """A typer group whose commands check their values and report errors in one line."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            _guard(command)
        return name, command, rest

    def invoke(self, ctx: Any) -> Any:
        if ctx.parent is not None:  # the outermost group reports for all of them
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except _USAGE as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise  # typer prints the help
            raise typer.Exit(_report_usage(exc)) from None
        except _SIGNALS:
            raise
        except Exception as exc:
            if os.environ.get("MAESTRO_DEBUG"):
                raise
            raise typer.Exit(report_error(exc)) from None


app = typer.Typer(
    name="maestro",
    help="Plan, execute and validate LLM work over documents, offline by default.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=MaestroGroup,
    context_settings=CONTEXT,
)
"""The ``maestro`` command; each module of :mod:`maestro_lite.cli` registers its commands on
it when imported (importing the package imports them all)."""
