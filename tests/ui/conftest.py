"""Fixtures for the dashboard: runs recorded with scripted models, and a live server.

The recorded documents hold markup on purpose (a file name, a title and a quoted sentence
with ``<script>``): the dashboard must show it as text.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the dashboard needs the ui extra")

import uvicorn

from maestro_lite.budget import Budget
from maestro_lite.cli._jobargs import JOB_RUNNERS, job_from_args
from maestro_lite.orchestrator import Maestro
from maestro_lite.result import RunResult
from maestro_lite.runs import RunSpec, open_run_store
from maestro_lite.settings import Settings
from maestro_lite.ui.app import DashboardConfig, create_app

from ..orchestration.conftest import V1, V2, MemoryRetriever, make_chunk
from ..runs.conftest import fix_then_replan_model

HOSTILE = "<script>window.pwned=1</script>"
TASK = f"Compare the two versions {HOSTILE}"
REQUIREMENTS = ["cover the governing law of both versions"]


def hostile_contracts() -> MemoryRetriever:
    """The two contract versions, one with markup in its title, path and notice sentence."""
    v1 = V1.replace("90 days written notice.", f"90 days written notice {HOSTILE}.")
    first = make_chunk("v1", f"Agreement 2023 {HOSTILE}", v1)
    first = first.model_copy(update={"path": '<img src=x onerror="window.pwned=2">.txt'})
    return MemoryRetriever([first, make_chunk("v2", "Agreement 2025", V2)])


async def record_run(settings: Settings, run_id: str, **options: Any) -> RunResult:
    """A run of the fix-then-replan scenario (3 rounds) recorded in the settings' store."""
    with open_run_store(settings) as store:
        return await Maestro(
            options.pop("model", None) or fix_then_replan_model(),
            concurrency=2,
            run_store=store,
        ).run(
            TASK,
            corpus=options.pop("corpus", None) or hostile_contracts(),
            requirements=REQUIREMENTS,
            run_id=run_id,
            **options,
        )


def spec(run_id: str, task: str, corpus: str | None = "contracts") -> RunSpec:
    return RunSpec.of(
        run_id=run_id,
        task=task,
        corpus=corpus,
        requirements=[],
        budget=Budget(),
        plan=None,
        output_type=None,
        data_types={},
        cache=True,
    )


@pytest.fixture
def settings() -> Settings:
    """The settings of the isolated home every test gets (MAESTRO_HOME)."""
    return Settings.from_env()


@contextmanager
def live_server(config: DashboardConfig) -> Iterator[str]:
    """The dashboard served on a free loopback port in a thread; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def dashboard_over(settings: Settings) -> AbstractContextManager[str]:
    """A dashboard over ``settings``' stores, without the corpora (no vector store needed)."""
    config = DashboardConfig(
        settings=settings, poll=0.05, corpora=False, job_parser=job_from_args, runners=JOB_RUNNERS
    )
    return live_server(config)


@pytest.fixture
def dashboard(settings: Settings) -> Iterator[str]:
    """A dashboard over the test's home."""
    with dashboard_over(settings) as url:
        yield url


@pytest.fixture
def runs_db(settings: Settings) -> Path:
    return settings.runs_db


def record_sync(settings: Settings, run_id: str, **options: Any) -> RunResult:
    """:func:`record_run` from synchronous code, in a thread of its own (Playwright's sync
    API keeps an event loop running in the test's thread)."""
    out: list[RunResult] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            out.append(asyncio.run(record_run(settings, run_id, **options)))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=go)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]
