"""The ``maestro`` command: a thin layer over the library.

Errors from maestro-lite print as one line (what happened, and what to do) instead of a
traceback; set ``MAESTRO_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import os
import sys

from ..errors import MaestroError

# Each module registers its commands on `app` when imported.
from . import demo, docs, doctor, eval, models, pipelines, run, schedule, ui, watch, worker  # noqa: F401
from . import runs as _runs  # noqa: F401
from ._app import app, report_error
from ._common import err_console

__all__ = ["app", "main"]


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
