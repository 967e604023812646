"""``--ray ADDRESS`` on the commands that can use a Ray cluster (``worker``, ``ingest``,
``extract``); ``MAESTRO_RAY_ADDRESS`` when the option is not given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.markup import escape

from ..settings import Settings
from ._common import err_console

__all__ = ["RAY", "ray_session"]

RAY = typer.Option(
    None,
    "--ray",
    help="Use the Ray cluster whose head is at HOST:PORT (default: MAESTRO_RAY_ADDRESS; "
    "extra [ray]).",
)
"""The ``--ray`` option."""


@contextmanager
def ray_session(option: str | None, settings: Settings, what: str) -> Iterator[str | None]:
    """The cluster address to use (``None``: none), connected for the block and left
    after it; says on stderr what runs there."""
    address = option or settings.ray_address
    if address is None:
        yield None
        return
    from ..cluster import connect, disconnect

    connect(address)
    err_console.print(f"{what} on the Ray cluster at {escape(address)}", highlight=False)
    try:
        yield address
    finally:
        disconnect()
