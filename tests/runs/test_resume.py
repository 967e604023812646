"""Resuming runs from their checkpoints: after a crash at any point, after an outage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maestro_lite import (
    ModelConnectionError,
    RetryPolicy,
    RunInterruptedError,
    RunNotFound,
    UserError,
)
from maestro_lite.events import ModelAttempted, RunInterrupted, RunResumed, RunStarted
from maestro_lite.models import FunctionModel, ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.runs import SQLiteRunStore

from ..orchestration.conftest import MemoryRetriever, step_of
from .conftest import Killed, KillingStore, fix_then_replan_model

TASK = "Compare the two versions"
REQUIREMENTS = ["cover the governing law of both versions"]
NO_WAIT = RetryPolicy(max_retries=1, initial_delay=0.0, jitter=0.0)


async def test_a_run_killed_after_any_event_resumes_to_the_same_result(
    contracts: MemoryRetriever, tmp_path: Path
) -> None:
    baseline_model = fix_then_replan_model()
    baseline_store = SQLiteRunStore(tmp_path / "baseline.sqlite3")
    baseline = await Maestro(baseline_model, concurrency=1, run_store=baseline_store).run(
        TASK, corpus=contracts, requirements=REQUIREMENTS, run_id="base"
    )
    assert [r.decision.action for r in baseline.rounds] == ["fix", "replan", "finish"]
    n_events = len(baseline_store.events("base"))
    assert n_events == len(baseline.events) > 30

    for after in range(n_events):
        db = tmp_path / f"killed-{after}.sqlite3"
        first = fix_then_replan_model()
        dying = KillingStore(db, after=after)
        with pytest.raises(Killed):
            await Maestro(first, concurrency=1, run_store=dying).run(
                TASK, corpus=contracts, requirements=REQUIREMENTS, run_id="r"
            )
        # A new process: a new store on the same file, a new model.
        second = fix_then_replan_model()
        store = SQLiteRunStore(db)
        assert store.get("r").status == "running"
        result = await Maestro(second, concurrency=1, run_store=store).resume("r", corpus=contracts)
        where = f"killed after event {after}"
        assert result.status == baseline.status == "passed", where
        assert result.output_text == baseline.output_text, where
        assert [r.decision for r in result.rounds] == [r.decision for r in baseline.rounds], where
        assert result.plan == baseline.plan, where
        # Only the call in flight when the process died may be made again (every unit of
        # work here is one call): nothing that had finished is paid for twice.
        repeated = len(first.calls) + len(second.calls) - len(baseline_model.calls)
        assert repeated in (0, 1), where
        # Every recorded attempt counts, in both sessions.
        attempts = [e for e in result.events if isinstance(e, ModelAttempted)]
        assert result.usage.requests == len(attempts), where
        assert store.get("r").summary.usage == result.usage, where
        assert sum(isinstance(e, RunStarted) for e in result.events) == (1 if after else 0)
        store.close()
        dying.close()


def outage_model(down: dict[str, bool]) -> FunctionModel:
    """The scenario's model behind an endpoint that refuses connections while down["now"]."""
    healthy = fix_then_replan_model()

    def call(c: ModelCall) -> Any:
        if down["now"]:
            raise ModelConnectionError("connection refused", model="routed", hint="Start it.")
        return healthy._function(c)

    return FunctionModel(call, name="routed")


async def test_an_outage_stops_the_run_with_its_state_saved_and_it_resumes(
    contracts: MemoryRetriever,
) -> None:
    down = {"now": False}
    answered = 0

    def count(event: Any) -> None:
        nonlocal answered
        if isinstance(event, ModelAttempted) and event.outcome == "ok":
            answered += 1
            down["now"] = answered == 3  # the endpoint dies after plan, s1 and s2

    store = SQLiteRunStore()
    model = outage_model(down)
    maestro = Maestro(model, concurrency=1, run_store=store, retry=NO_WAIT, on_event=count)
    with pytest.raises(RunInterruptedError) as info:
        await maestro.run(TASK, corpus=contracts, requirements=REQUIREMENTS, run_id="r")
    error = info.value
    assert error.run_id == "r" and isinstance(error.cause, ModelConnectionError)
    assert "connection refused" in str(error) and "maestro resume r" in (error.hint or "")
    record = store.get("r")
    assert record.status == "interrupted" and "connection refused" in (record.summary.error or "")
    assert {s.step_id for s in record.steps if s.status == "done"} == {"s1", "s2"}
    calls_before = len(model.calls)
    assert record.summary.usage.requests == calls_before == 5  # plan, s1, s2, s3 tried twice

    down["now"] = False
    answered = -100  # keep it up
    result = await maestro.resume("r", corpus=contracts)
    assert result.status == "passed"
    resumed = model.calls[calls_before:]
    # Neither the plan nor the finished steps s1 and s2 were asked for again.
    assert all(
        "A previous plan ran" in c.last_user for c in resumed if c.schema_title == "PlanDraft"
    )
    instructions = [step_of(c) for c in resumed if c.schema_title == "StepAnswer"]
    assert not any(i.startswith("Notice period in the") for i in instructions)
    assert instructions[0] == "Compare the notice periods"
    assert result.usage.requests == len(model.calls)
    assert result.usage.failed_requests == 2
    kinds = [type(e) for e in result.events]
    assert kinds.count(RunInterrupted) == 1 and kinds.count(RunResumed) == 1
    assert store.get("r").status == "passed"


async def test_resume_refuses_what_cannot_work(contracts: MemoryRetriever) -> None:
    store = SQLiteRunStore()
    maestro = Maestro(fix_then_replan_model(), run_store=store)
    with pytest.raises(RunNotFound):
        await maestro.resume("nope")
    await maestro.run(TASK, corpus=contracts, requirements=REQUIREMENTS, run_id="done")
    with pytest.raises(UserError, match="already finished"):
        await maestro.resume("done")
    with pytest.raises(UserError, match="needs the run store"):
        await Maestro(fix_then_replan_model()).resume("done")
