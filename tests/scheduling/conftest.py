"""Helpers for scheduling tests: a recording job runner, a worker factory, waiting for
observable state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from maestro_lite import Settings
from maestro_lite.events import Event
from maestro_lite.scheduling import (
    Clock,
    JobContext,
    JobInputs,
    JobOutcome,
    JobRunner,
    ManualClock,
    RunJob,
    ScheduleStore,
    SQLiteScheduleStore,
    Worker,
    WorkerEvent,
)
from maestro_lite.testing import FunctionModel, HashingEmbedder

from ..services.stores import schedule_store


class Recorder(JobRunner[RunJob]):
    """A runner of ``run`` jobs that records what it was asked to run and passes every job."""

    def __init__(self) -> None:
        super().__init__(RunJob, self._record)
        self.jobs: list[tuple[RunJob, JobInputs]] = []

    async def _record(self, job: RunJob, context: JobContext) -> JobOutcome:
        self.jobs.append((job, context.inputs))
        return JobOutcome(status="passed", output=f"ran {job.describe()}")


async def wait_for(predicate: Callable[[], object]) -> None:
    """Wait until ``predicate()`` is true: observable state (store rows, recorded calls)
    that other tasks, threads or processes change, so there is no event to await; a minute
    at most, so a broken test fails instead of hanging."""
    async with asyncio.timeout(60):
        while not predicate():  # noqa: ASYNC110 (polled state, not an asyncio.Event)
            await asyncio.sleep(0.02)


async def settled(clock: ManualClock, sleepers: int) -> None:
    """Wait until ``sleepers`` tasks (the scheduler, each watch) sleep on ``clock`` again:
    they have handled the present. A minute at most."""
    async with asyncio.timeout(60):
        await clock.wait_for_sleepers(sleepers)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", embedder="hashing")


@pytest.fixture
def store(settings: Settings, db: str) -> Any:
    """The schedule store: in SQLite beside the runs of ``settings``, then in PostgreSQL (the
    ``db`` fixture runs every test that takes it against both)."""
    if db.startswith("postgresql://"):
        yield schedule_store(db)
        return
    with SQLiteScheduleStore.open(settings) as opened:
        yield opened


def no_model() -> FunctionModel:
    def refuse(call: Any) -> Any:
        raise AssertionError("this test's jobs make no model calls")

    return FunctionModel(refuse, name="none")


def make_worker(
    settings: Settings,
    store: ScheduleStore,
    clock: Clock,
    *,
    runner: Recorder | None = None,
    events: list[WorkerEvent | Event] | None = None,
    model: FunctionModel | None = None,
    **kwargs: Any,
) -> Worker:
    """A worker over ``store`` whose ``run`` jobs go to ``runner`` (when given)."""
    sink = events if events is not None else []
    if runner is not None:
        kwargs["runners"] = {"run": runner}
    kwargs.setdefault("embedder", HashingEmbedder())
    kwargs.setdefault("queue_poll", 0.05)
    return Worker(
        model or no_model(),
        settings=settings,
        schedule_store=store,
        clock=clock,
        on_event=sink.append,
        **kwargs,
    )
