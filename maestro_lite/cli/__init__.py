"""The ``maestro`` command: a thin layer over the library.

Errors from maestro-lite print as one line (what happened, and what to do) instead of a
traceback; set ``MAESTRO_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from ..errors import MaestroError
from ._app import CONTEXT, MaestroGroup, report_error
from ._common import err_console

app = typer.Typer(
    name="maestro",
    help="Plan, execute and validate LLM work over documents, offline by default.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=MaestroGroup,
    context_settings=CONTEXT,
)

# Each module registers its commands on `app` when imported.
from . import demo, docs, doctor, eval, models, pipelines, run, schedule, ui, watch, worker  # noqa: E402,F401
from . import runs as _runs  # noqa: E402,F401


def main() -> None:
    """Entry point of the ``maestro`` script."""
    try:
        app()
    except MaestroError as exc:  # raised outside a command (the groups report the rest)
        if os.environ.get("MAESTRO_DEBUG"):
            raise
        sys.exit(report_error(exc))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
