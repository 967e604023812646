"""Resuming runs from their checkpoints: after a crash at any point, after an outage."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
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
from maestro_lite.events import (
    ModelAttempted,
    RunInterrupted,
    RunResumed,
    RunStarted,
    StepFinished,
)
from maestro_lite.models import FunctionModel, ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.requirements import Requirement, RequirementLike
from maestro_lite.result import RunResult
from maestro_lite.runs import SQLiteRunStore

from ..orchestration.conftest import MemoryRetriever, cite, step_of
from ..orchestration.test_orchestrator import answer_notice, notice_plan, routed
from ..orchestration.test_run_loop import judge_all
from .conftest import Killed, KillingStore, fix_then_replan_model

TASK = "Compare the two versions"
REQUIREMENTS = ["cover the governing law of both versions"]
NO_WAIT = RetryPolicy(max_retries=1, initial_delay=0.0, jitter=0.0)


def _call_id(call: ModelCall) -> tuple[Any, ...]:
    """What makes two calls identical (as the response cache keys them)."""
    return (tuple(m.content for m in call.messages), call.schema_title, call.settings)


async def every_kill_point(
    tmp_path: Path,
    retriever: MemoryRetriever,
    make_model: Callable[[], FunctionModel],
    requirements: Sequence[RequirementLike],
) -> RunResult:
    """Run the scenario once, then again killed after each of its events in turn, each time
    resumed by a new process (store, model) with no response cache; returns the baseline."""
    baseline_model = make_model()
    baseline_store = SQLiteRunStore(tmp_path / "baseline.sqlite3")
    baseline = await Maestro(baseline_model, concurrency=1, run_store=baseline_store).run(
        TASK, corpus=retriever, requirements=requirements, run_id="base"
    )
    events = baseline_store.events("base")
    assert len(events) == len(baseline.events)

    for after, dying_in in enumerate(events):
        db = tmp_path / f"killed-{after}.sqlite3"
        first = make_model()
        dying = KillingStore(db, after=after)
        with pytest.raises(Killed):
            await Maestro(first, concurrency=1, run_store=dying).run(
                TASK, corpus=retriever, requirements=requirements, run_id="r"
            )
        # A new process: a new store on the same file, a new model.
        second = make_model()
        store = SQLiteRunStore(db)
        assert store.get("r").status == "running"
        result = await Maestro(second, concurrency=1, run_store=store).resume("r", corpus=retriever)
        where = f"killed committing event {after} ({dying_in.kind})"
        assert result.status == baseline.status, where
        assert result.output_text == baseline.output_text, where
        assert [r.decision for r in result.rounds] == [r.decision for r in baseline.rounds], where
        assert result.plan == baseline.plan, where
        # No call is paid twice: checkpoints keep finished work, and every answer is recorded
        # with its attempt, so only a call whose record died with the process is made again
        # (an identical call answered earlier in the run is answered from the record, as a
        # response cache would).
        lost = 1 if dying_in.kind == "model_attempted" else 0
        asked = Counter(_call_id(c) for c in first.calls + second.calls)
        needed = Counter(_call_id(c) for c in baseline_model.calls)
        needed.update(_call_id(c) for c in first.calls[len(first.calls) - lost :])
        assert asked <= needed, where  # each call at most as often as the run needs it
        made = len(first.calls) + len(second.calls)
        # Every recorded attempt counts, in both sessions.
        attempts = [e for e in result.events if isinstance(e, ModelAttempted)]
        assert result.usage.requests == sum(a.usage.requests for a in attempts), where
        assert result.usage.requests == made - lost, where
        assert store.get("r").summary.usage == result.usage, where
        assert sum(isinstance(e, RunStarted) for e in result.events) == (1 if after else 0)
        store.close()
        dying.close()
    return baseline


async def test_a_run_killed_after_any_event_resumes_to_the_same_result(
    contracts: MemoryRetriever, tmp_path: Path
) -> None:
    baseline = await every_kill_point(tmp_path, contracts, fix_then_replan_model, REQUIREMENTS)
    assert [r.decision.action for r in baseline.rounds] == ["fix", "replan", "finish"]
    assert len(baseline.events) > 30


def second_thoughts_model() -> FunctionModel:
    """A model whose first plan draft is rejected (a cycle), whose first answer to s1 does
    not fit its schema (re-asked), and which judges a final and a per-step requirement: the
    calls that no checkpoint holds until the next one is written."""

    def plan(call: ModelCall) -> dict[str, Any]:
        if "That plan cannot be used" in call.last_user:
            return notice_plan(call)
        cyclic = notice_plan(call)
        cyclic["steps"][0]["depends_on"] = ["s3"]
        return cyclic

    def step(call: ModelCall) -> Any:
        reasked = call.messages[-1].content.startswith("That reply does not match")
        if "2023" in step_of(call) and not reasked:
            return {"answer": "90 days."}  # no claims: invalid, re-asked
        return answer_notice(call)

    return routed(plan, step, judge_all())


STEP_JUDGED: list[RequirementLike] = [
    "state both notice periods",
    Requirement.judge("cite the agreement it is about", scope="steps"),
]


async def test_rejected_drafts_reasks_and_judge_calls_are_not_paid_twice_on_resume(
    contracts: MemoryRetriever, tmp_path: Path
) -> None:
    baseline = await every_kill_point(tmp_path, contracts, second_thoughts_model, STEP_JUDGED)
    kinds = [e.kind for e in baseline.events]
    assert kinds.count("plan_rejected") == 1
    assert baseline.usage.reasks == 1
    judged = [e for e in baseline.events if isinstance(e, ModelAttempted) and "judge" in e.purpose]
    assert len(judged) == 4  # the output, then s1, s2, s3
    assert baseline.status == "passed"


async def test_a_crash_from_the_model_during_validation_repeats_no_answered_call(
    contracts: MemoryRetriever,
) -> None:
    """The process dies (an exception from the model) on the third judge call of the round:
    on resume, with no cache, the two judgements already given are not asked again."""
    answered: list[str] = []

    def dying_on_third_judgement(make: Callable[[], FunctionModel]) -> FunctionModel:
        inner = make()

        def call(c: ModelCall) -> Any:
            if c.schema_title == "Verdicts" and sum("Verdicts" in a for a in answered) == 2:
                raise Killed
            reply = inner._function(c)
            answered.append(f"{c.schema_title}:{c.prompt}")
            return reply

        return FunctionModel(call, name="routed")

    store = SQLiteRunStore()
    first = dying_on_third_judgement(second_thoughts_model)
    with pytest.raises(Killed):
        await Maestro(first, concurrency=1, run_store=store).run(
            TASK, corpus=contracts, requirements=STEP_JUDGED, run_id="r"
        )
    assert not store.get("r").rounds  # the round's validation never got recorded
    before = list(answered)
    second = second_thoughts_model()
    result = await Maestro(second, concurrency=1, run_store=store).resume("r", corpus=contracts)
    assert result.status == "passed"
    asked_again = [f"{c.schema_title}:{c.prompt}" for c in second.calls]
    assert not set(asked_again) & set(before)  # zero repeats of answered calls
    assert [c.schema_title for c in second.calls] == ["Verdicts", "Verdicts"]  # s2's, s3's
    # The first two judgements came from the run's record; finished steps were checkpointed.
    replayed = [e for e in result.events if isinstance(e, ModelAttempted) and e.outcome == "cached"]
    assert [e.purpose for e in replayed] == ["judge", "judge:s1"]
    assert result.usage.cached_requests == 2


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


def wide_plan(call: ModelCall) -> dict[str, Any]:
    """Four independent readings, then a synthesis: a plan that runs in parallel."""
    readings = [
        ("s1", "Notice period in the 2023 version", "D1"),
        ("s2", "Notice period in the 2025 version", "D2"),
        ("s3", "Liability cap in the 2023 version", "D1"),
        ("s4", "Liability cap in the 2025 version", "D2"),
    ]
    steps: list[dict[str, Any]] = [
        {
            "id": sid,
            "kind": "answer",
            "instruction": text,
            "depends_on": [],
            "queries": ["terminate notice liability capped"],
            "documents": [doc],
        }
        for sid, text, doc in readings
    ]
    steps.append(
        {
            "id": "s5",
            "kind": "synthesize",
            "instruction": "Compare the notice periods",
            "depends_on": ["s1", "s2", "s3", "s4"],
            "queries": [],
            "documents": [],
        }
    )
    return {"rationale": "Read all four clauses at once.", "steps": steps}


def read_clause(call: ModelCall) -> dict[str, Any]:
    instruction = step_of(call)
    if instruction.startswith("Liability cap"):
        needle = "capped"
        return {"answer": needle, "claims": [{"text": needle, "evidence": cite(call, needle)}]}
    return answer_notice(call)


async def test_a_parallel_run_stopped_mid_round_resumes_without_repeating_finished_steps(
    contracts: MemoryRetriever,
) -> None:
    """s1 and s2 finish, s3 is in flight and s4's endpoint refuses: the run stops with s3
    cancelled. The resume keeps s1 and s2 and runs s3 and s4 once more, in parallel."""
    checkpointed: set[str] = set()
    both_done = asyncio.Event()
    outage = {"on": True}
    in_flight: list[str] = []

    async def step(call: ModelCall) -> Any:
        instruction = step_of(call)
        if outage["on"] and instruction == "Liability cap in the 2023 version":
            in_flight.append(instruction)
            await asyncio.Event().wait()  # in flight when the run stops
        if outage["on"] and instruction == "Liability cap in the 2025 version":
            await both_done.wait()
            raise ModelConnectionError("connection refused", model="routed")
        return read_clause(call)

    def on_event(event: Any) -> None:
        if isinstance(event, StepFinished):
            checkpointed.add(event.step_id)
            if {"s1", "s2"} <= checkpointed:
                both_done.set()

    store = SQLiteRunStore()
    model = routed(wide_plan, step, judge_all())
    maestro = Maestro(
        model, concurrency=4, run_store=store, retry=RetryPolicy(max_retries=0), on_event=on_event
    )
    with pytest.raises(RunInterruptedError):
        await maestro.run(TASK, corpus=contracts, run_id="wide")
    assert in_flight == ["Liability cap in the 2023 version"]
    record = store.get("wide")
    assert {s.step_id for s in record.steps if s.status == "done"} == {"s1", "s2"}
    assert sorted(sid for _, sid in record.running) == ["s3", "s4"]  # started, never finished
    first = len(model.calls)

    outage["on"] = False
    result = await maestro.resume("wide", corpus=contracts)
    assert result.status == "passed"
    resumed = [step_of(c) for c in model.calls[first:] if c.schema_title == "StepAnswer"]
    assert sorted(resumed) == [
        "Compare the notice periods",
        "Liability cap in the 2023 version",
        "Liability cap in the 2025 version",
    ]  # s1 and s2 are not run again; s3 and s4 once each
    assert result.steps["s1"].round == result.steps["s3"].round == 1
    assert result.usage.requests == len(model.calls)  # the cancelled call counted too
