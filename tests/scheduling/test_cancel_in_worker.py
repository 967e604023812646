"""Cancelling one run inside a worker stops that run alone: its job fails with the reason,
the worker's other jobs go on, and the cancelled run resumes from its checkpoints."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from maestro_lite import Maestro, Settings
from maestro_lite.errors import RunCancelled, RunInterruptedError
from maestro_lite.models import FunctionModel, ModelCall
from maestro_lite.runs import SQLiteRunStore, cancel_run
from maestro_lite.scheduling import ManualClock, RunJob, SQLiteScheduleStore

from ..orchestration.test_orchestrator import answer_notice, judge_mentions, notice_plan, routed
from .conftest import make_worker, wait_for
from .test_triggers import MemoryCorpora, contracts

STUCK = "Which notice period applies? (this run's synthesis waits until it is cancelled)"


def model_stuck_on(task: str) -> tuple[FunctionModel, list[str]]:
    """The notice scenario's model; the synthesis step of ``task``'s run never returns."""
    inner = routed(notice_plan, answer_notice, judge_mentions("90 days", "60 days"))
    synthesised: list[str] = []

    async def answer(call: ModelCall) -> Any:
        # s3 compares the notice periods; only ``task``'s run has it wait.
        if call.step_id == "s3" and "Overall task: " + task in call.prompt:
            synthesised.append(task)
            await asyncio.Event().wait()  # until cancelled
        return await inner.request(
            call.messages, json_schema=call.json_schema, settings=call.settings
        )

    return FunctionModel(answer, name="routed"), synthesised


async def test_a_cancelled_run_stops_alone_and_the_worker_goes_on(
    settings: Settings, store: SQLiteScheduleStore
) -> None:
    model, synthesised = model_stuck_on(STUCK)
    clock = ManualClock(datetime(2026, 3, 23, 9, 0, tzinfo=UTC))
    worker = make_worker(
        settings, store, clock, model=model, corpora=MemoryCorpora(contracts=contracts())
    )
    runs = SQLiteRunStore.open(settings)
    try:
        async with worker:
            stuck = worker.submit(RunJob(task=STUCK, corpus="contracts"), name="stuck")
            await wait_for(lambda: synthesised)
            said = cancel_run(runs, f"{stuck.job_id}-1")
            assert f"stop run {stuck.job_id}-1" in said
            await wait_for(lambda: store.job(stuck.job_id).status == "failed")
            after = worker.submit(
                RunJob(task="How did the notice period change?", corpus="contracts"),
                name="after",
            )
            await wait_for(lambda: store.job(after.job_id).status in ("passed", "failed"))
        failed, passed = store.job(stuck.job_id), store.job(after.job_id)
        assert failed.outcome is not None and "cancelled by request" in (failed.outcome.error or "")
        assert passed.status == "passed"
        record = runs.get(f"{stuck.job_id}-1")
        assert record.status == "interrupted"
        assert {s.step_id for s in record.steps if s.status == "done"} == {"s1", "s2"}
    finally:
        runs.close()


async def test_a_cancel_is_taken_once_so_the_resumed_run_finishes(settings: Settings) -> None:
    model, synthesised = model_stuck_on(STUCK)
    runs = SQLiteRunStore.open(settings)
    try:
        maestro = Maestro(model, run_store=runs)
        run = asyncio.create_task(maestro.run(STUCK, corpus=contracts(), run_id="r1"))
        await wait_for(lambda: synthesised)
        cancel_run(runs, "r1")
        try:
            await run
        except RunInterruptedError as stopped:
            assert isinstance(stopped.cause, RunCancelled)
            assert "maestro resume r1" in (stopped.hint or "")
        else:
            raise AssertionError("the cancelled run finished")
        assert runs.get("r1").status == "interrupted"
        assert not runs.take_cancel("r1")  # the request was consumed by the run it stopped

        plain = routed(notice_plan, answer_notice, judge_mentions("90 days", "60 days"))
        resumed = await Maestro(plain, run_store=runs).resume("r1", corpus=contracts())
        assert resumed.status == "passed"
        assert not any("2023 version" in c.prompt for c in plain.calls)  # s1 and s2 were not repaid
    finally:
        runs.close()
