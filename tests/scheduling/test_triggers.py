"""Completion triggers: a chain A -> B gets A's result; failures start failure triggers;
a cycle is refused when it is declared."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from maestro_lite import Settings
from maestro_lite.models import ModelCall
from maestro_lite.runs import SQLiteRunStore
from maestro_lite.scheduling import (
    JobContext,
    JobOutcome,
    JobRunner,
    ManualClock,
    RunJob,
    SQLiteScheduleStore,
    Trigger,
    TriggerCycleError,
    check_triggers,
)

from ..orchestration.conftest import V1, V2, MemoryRetriever, make_chunk
from ..orchestration.test_orchestrator import answer_notice, judge_mentions, notice_plan, routed
from .conftest import make_worker, wait_for

NOTICE = "Notice fell from 90 days (2023) to 60 days (2025)."


class MemoryCorpora:
    """Corpora by name, in memory."""

    def __init__(self, **corpora: MemoryRetriever) -> None:
        self.corpora = corpora

    async def corpus(self, name: str) -> MemoryRetriever:
        return self.corpora[name]


def contracts() -> MemoryRetriever:
    return MemoryRetriever(
        [make_chunk("v1", "Agreement 2023", V1), make_chunk("v2", "Agreement 2025", V2)]
    )


def memo(name: str, after: str) -> Trigger:
    return Trigger.create(
        name,
        after=after,
        job=RunJob(task="Memo on run {run_id}, which found: {output}", corpus="contracts"),
    )


def test_a_declared_cycle_is_refused_naming_it(store: SQLiteScheduleStore) -> None:
    store.add_trigger(memo("b", after="a"))
    store.add_trigger(memo("c", after="b"))
    with pytest.raises(TriggerCycleError) as refused:
        store.add_trigger(memo("a", after="c"))
    assert str(refused.value) == "trigger 'a' would start a cycle: a -> b -> c -> a"
    assert refused.value.cycle == ["a", "b", "c", "a"]
    assert [t.name for t in store.triggers()] == ["b", "c"]  # nothing was saved
    with pytest.raises(TriggerCycleError, match="'d' would start a cycle: d -> d"):
        store.add_trigger(memo("d", after="d"))
    check_triggers([memo("b", after="a"), memo("c", after="a")])  # a fan-out is fine
    with pytest.raises(TriggerCycleError, match="x -> y -> x"):
        check_triggers([memo("x", after="y"), memo("y", after="x")], first="x")


async def test_a_chain_passes_the_finished_runs_result_to_the_next_run(
    settings: Settings, store: SQLiteScheduleStore
) -> None:
    store.add_trigger(memo("memo", after="notice"))
    store.add_trigger(
        Trigger.create(
            "escalate", after="notice", on="failure", job=RunJob(task="Escalate {job_id}")
        )
    )
    planned: list[str] = []

    def plan(call: ModelCall) -> dict[str, Any]:
        planned.append(call.prompt)
        return notice_plan(call)

    model = routed(plan, answer_notice, judge_mentions("90 days", "60 days"))
    clock = ManualClock(datetime(2026, 3, 23, 9, 0, tzinfo=UTC))
    worker = make_worker(
        settings, store, clock, model=model, corpora=MemoryCorpora(contracts=contracts())
    )
    async with worker:
        first = worker.submit(
            RunJob(
                task="How did the notice period change?",
                corpus="contracts",
                requirements=["state both notice periods"],
            ),
            name="notice",
        )
        await wait_for(lambda: len(store.jobs()) == 2 and store.jobs()[0].status == "passed")
    a, b = store.job(first.job_id), store.jobs()[0]
    assert a.status == "passed" and a.outcome is not None
    assert a.outcome.output == NOTICE and a.outcome.run_ids == [f"{a.job_id}-1"]

    # B was started by A's completion, with A's run and output as its input.
    assert (b.source, b.name) == ("trigger", "memo")
    assert b.inputs.previous is not None and b.inputs.previous.job_id == a.job_id
    assert b.inputs.previous.outcome == a.outcome
    expected = f"Memo on run {a.job_id}-1, which found: {NOTICE}"
    assert b.spec.task == expected  # type: ignore[union-attr]
    assert b.status == "passed" and b.outcome is not None
    with SQLiteRunStore.open(settings) as runs:
        assert runs.get(b.outcome.run_ids[0]).spec.task == expected
    assert any(expected in prompt for prompt in planned)  # the model was asked B's task
    assert [j.name for j in store.jobs()] == ["memo", "notice"]  # no escalation


async def test_a_failure_starts_the_failure_triggers_only(
    settings: Settings, store: SQLiteScheduleStore
) -> None:
    store.add_trigger(memo("memo", after="nightly"))
    store.add_trigger(
        Trigger.create(
            "escalate",
            after="nightly",
            on="failure",
            job=RunJob(task="Escalate job {job_id}: it ended {status}"),
        )
    )
    ran: list[str] = []

    async def runner(job: RunJob, context: JobContext) -> JobOutcome:
        ran.append(job.task)
        if job.task == "flaky":
            raise RuntimeError("the endpoint is gone")
        return JobOutcome(status="passed")

    clock = ManualClock(datetime(2026, 3, 23, 9, 0, tzinfo=UTC))
    async with make_worker(
        settings, store, clock, runners={"run": JobRunner(RunJob, runner)}
    ) as worker:
        failed = worker.submit(RunJob(task="flaky"), name="nightly")
        await wait_for(lambda: len(ran) == 2 and store.jobs()[0].status == "passed")
    job = store.job(failed.job_id)
    assert job.status == "failed" and job.error == "RuntimeError: the endpoint is gone"
    assert ran == ["flaky", f"Escalate job {failed.job_id}: it ended failed"]
