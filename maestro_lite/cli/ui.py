"""``maestro ui``: serve the dashboard (the ``ui`` extra)."""

from __future__ import annotations

import os

import typer

from ..ui import serve
from ._app import app
from ._common import console, load_settings
from ._jobargs import JOB_RUNNERS, job_from_args


@app.command("ui")
def ui_command(
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to serve; anything but loopback needs MAESTRO_UI_TOKEN.",
    ),
    port: int = typer.Option(8765, "--port", help="Port (0: any free one).", min=0, max=65535),
) -> None:
    """A web dashboard of every run, live: plans, timelines, evidence, requirements,
    the worker's queue and schedules, performance; resume, cancel, submit, pause.

    Set MAESTRO_UI_TOKEN to require a token from every request (needed to serve an
    address other machines can reach).
    """
    token = os.environ.get("MAESTRO_UI_TOKEN") or None

    def announce(address: str) -> None:
        console.print(f"maestro-lite dashboard: {address}  (Ctrl-C stops it)", highlight=False)

    serve(
        host=host,
        port=port,
        token=token,
        settings=load_settings(),
        announce=announce,
        runners=JOB_RUNNERS,
        job_parser=job_from_args,
    )
