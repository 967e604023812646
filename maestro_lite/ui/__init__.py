"""``maestro ui``: a web dashboard over the run store and the schedule store.

Runs (filter, search, pages), a run (its plan as a graph, a timeline of steps and model
calls, evidence, citations, requirements and decisions, live while it runs), operations
(queue, schedules, watches, triggers, corpora), performance, and actions (resume, cancel,
submit, pause). Needs the ``ui`` extra (``pip install 'maestro-lite[ui]'``).

Safe by default: it serves 127.0.0.1 only; any other address needs ``MAESTRO_UI_TOKEN``
(see :mod:`maestro_lite.ui.security`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ..errors import UserError
from ..scheduling import Job, JobRunner, default_runners
from ..settings import Settings
from .security import check_bind

__all__ = ["address", "new_token", "serve"]


def _missing(exc: ImportError) -> UserError:
    return UserError(
        f"the dashboard needs the ui extra ({exc.name} is not installed)",
        hint="pip install 'maestro-lite[ui]'",
    )


def address(host: str, port: int, token: str | None) -> str:
    """The address to open (with the token, which the first page trades for a cookie)."""
    shown = f"[{host}]" if ":" in host else host
    suffix = f"/?token={quote(token)}" if token else "/"
    return f"http://{shown}:{port}{suffix}"


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    settings: Settings | None = None,
    announce: Callable[[str], None] | None = None,
    runners: Mapping[str, JobRunner[Any]] | None = None,
    job_parser: Callable[[Sequence[str]], Job] | None = None,
) -> None:
    """Serve the dashboard until interrupted (Ctrl-C, SIGTERM).

    Args:
        host: The address to bind; anything but loopback needs ``token``.
        port: The port (0 picks a free one).
        token: Required from every request when set.
        settings: Where the stores are; from the environment when ``None``.
        announce: Called with the address to open once the server listens.
        runners: The kinds of job shown typed (the core's ``run`` when ``None``).
        job_parser: Reads the command line of a job submitted from the operations page
            (without one, submitting is refused).

    Raises:
        UserError: A non-loopback ``host`` without a token, a port that cannot be bound,
            or the ``ui`` extra missing.
    """
    check_bind(host, token)
    try:
        import uvicorn

        from .app import DashboardConfig, create_app
    except ImportError as exc:
        raise _missing(exc) from None
    config = DashboardConfig(
        settings=settings or Settings.from_env(),
        host=host,
        token=token,
        runners=dict(runners) if runners is not None else default_runners(),
        job_parser=job_parser,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        # uvicorn offers no event for "listening"; it sets a flag.
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if not server.started:
            try:
                await task
            except SystemExit:  # uvicorn exits when it cannot bind
                pass
            raise UserError(f"cannot listen on {host}:{port}", hint="Is the port in use? --port")
        bound = server.servers[0].sockets[0].getsockname()[1]
        if announce is not None:
            announce(address(host, bound, token))
        await task

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass  # Ctrl-C is how the dashboard is stopped: uvicorn has shut down cleanly


def new_token() -> str:
    """A token good for ``MAESTRO_UI_TOKEN``."""
    return secrets.token_urlsafe(24)
