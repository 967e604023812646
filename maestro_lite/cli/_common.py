"""Shared pieces of the CLI: consoles, settings from options, progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
from ..runs import SQLiteRunStore
from ..settings import Settings
from ..untrusted import one_line

console = Console()
err_console = Console(stderr=True)


def shown(text: str) -> str:
    """A title, file name or path as a status line shows it: on one line (a file name's
    newlines cannot start a line of their own), rich markup escaped."""
    return escape(one_line(text))


def load_settings(model: str | None = None) -> Settings:
    """Settings from the environment, with a ``--model provider:name`` option on top."""
    settings = Settings.from_env()
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
    store = SQLiteRunStore.open(settings)
    cache = ResponseCache.open(settings)
    try:
        yield {"run_store": store, "cache": cache, "limiter": Limiter.from_settings(settings)}
    finally:
        store.close()
        cache.close()
