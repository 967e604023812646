"""Shared pieces of the CLI: consoles, settings from options, progress bars."""

from __future__ import annotations

import atexit
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..cache import ResponseCache
from ..limits import Limiter
from ..models import (
    ChatModel,
    ModelRegistry,
    fallback_settings,
    model_from_settings,
    parse_model_spec,
)
from ..models import Progress as ProgressCallback
from ..runs import open_run_store
from ..settings import Settings
from ..telemetry import RunTracer
from ..untrusted import one_line

console = Console()
err_console = Console(stderr=True)


def shown(text: str) -> str:
    """A title, file name or path as a status line shows it: on one line (a file name's
    newlines cannot start a line of their own), rich markup escaped."""
    return escape(one_line(text))


def load_settings(model: str | None = None) -> Settings:
    """Settings from the environment, with a ``--model provider:name`` option on top; the
    home folder made if need be (an unusable ``MAESTRO_HOME`` is one line naming it)."""
    settings = Settings.from_env()
    settings.ensure_home()
    return parse_model_spec(model, settings) if model else settings


@contextmanager
def byte_progress(description: str) -> Iterator[ProgressCallback]:
    """A rich progress bar on stderr fed by (done, total) byte counts."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def open_model(settings: Settings) -> ChatModel:
    """The configured chat model; a local registry model is pulled and verified first, with a
    progress bar, so the first request does not stall silently."""
    model = model_from_settings(settings)
    for each in (settings, fallback_settings(settings)):
        if each is None or each.provider != "local":
            continue
        registry = ModelRegistry(each.models_dir, allow_download=each.allow_download)
        name = each.resolved_model
        if name in registry.known and registry.info(name).status != "verified":
            with byte_progress(f"pull {name}") as progress:
                registry.ensure(name, progress=progress)
    return model


NO_CACHE = typer.Option(
    False, "--no-cache", help="Ask the model afresh instead of reusing cached answers."
)
"""``--no-cache``, the same on every command that runs a model."""


@contextmanager
def durable(settings: Settings) -> Iterator[dict[str, Any]]:
    """``Maestro`` arguments of CLI runs: the run store (``maestro runs``, ``maestro
    resume``) and the response cache, both under the settings' home, and the provider
    limits the settings set (``MAESTRO_MAX_CONCURRENT`` ...)."""
    store = open_run_store(settings)
    cache = ResponseCache.open(settings)
    try:
        yield {"run_store": store, "cache": cache, "limiter": Limiter.from_settings(settings)}
    finally:
        store.close()
        cache.close()


@cache
def _tracer() -> RunTracer | None:
    tracer = RunTracer.from_env()
    if tracer is not None:
        atexit.register(tracer.shutdown)  # send the last spans before the process ends
    return tracer


Handler = Callable[[Any], Awaitable[None] | None]


def fan_out(*handlers: Handler | None) -> Handler | None:
    """One event handler calling each of ``handlers`` (``None`` ones left out) in turn."""
    present = [h for h in handlers if h is not None]
    if len(present) <= 1:
        return present[0] if present else None

    async def each(event: Any) -> None:
        for handler in present:
            outcome = handler(event)
            if outcome is not None:
                await outcome

    return each


def traced(handler: Handler | None) -> Handler | None:
    """``handler``, plus the OpenTelemetry span exporter when ``OTEL_EXPORTER_OTLP_ENDPOINT``
    (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set: every CLI run and worker traces."""
    return fan_out(_tracer(), handler)
