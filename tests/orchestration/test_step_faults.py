"""A step that takes too long fails alone; an endpoint that is down stops the whole run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from maestro_lite import ModelConnectionError, RetryPolicy, RunInterruptedError
from maestro_lite.budget import Budget
from maestro_lite.events import ModelAttempted
from maestro_lite.models import ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.runs import SQLiteRunStore

from .conftest import MemoryRetriever, step_of
from .test_orchestrator import answer_notice, judge_mentions, notice_plan, routed


async def test_a_step_past_its_timeout_fails_and_the_run_goes_on(
    contracts: MemoryRetriever,
) -> None:
    never = asyncio.Event()

    async def step(call: ModelCall) -> Any:
        if "2025" in step_of(call):
            await never.wait()  # a model that never answers this step
        return answer_notice(call)

    model = routed(notice_plan, step, judge_mentions())
    result = await Maestro(model, step_timeout=0.2).run(
        "notice?", corpus=contracts, budget=Budget(max_rounds=1)
    )
    assert result.status == "failed"  # the synthesis needs s2
    assert result.steps["s1"].status == "done"
    assert result.steps["s2"].status == "failed"
    assert "StepTimeout" in (result.steps["s2"].error or "")
    assert result.steps["s3"].status == "skipped"
    # The cut-off call reached the model: it counts in usage, in the step's trace and events.
    assert len(model.calls) == 3  # plan, s1, s2
    assert result.usage.requests == 3 and result.usage.failed_requests == 1
    (cut,) = result.steps["s2"].attempts
    assert cut.outcome == "error" and "cancelled" in (cut.error or "")
    assert cut.usage.requests == 1 and cut.usage.input_tokens > 0  # the prompt it was sent
    assert result.steps["s2"].usage == cut.usage
    events = [e for e in result.events if isinstance(e, ModelAttempted)]
    assert [e.purpose for e in events].count("step:s2") == 1
    assert sum(e.usage.requests for e in events) == result.usage.requests


async def test_an_endpoint_down_stops_the_run_and_cancels_steps_in_flight(
    contracts: MemoryRetriever,
) -> None:
    s1_started = asyncio.Event()
    s1_cancelled = False

    async def step(call: ModelCall) -> Any:
        nonlocal s1_cancelled
        if "2023" in step_of(call):
            s1_started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                s1_cancelled = True
                raise
        await s1_started.wait()
        raise ModelConnectionError("connection refused", model="routed")

    model = routed(notice_plan, step, judge_mentions())
    maestro = Maestro(model, retry=RetryPolicy(max_retries=1, initial_delay=0, jitter=0))
    with pytest.raises(RunInterruptedError, match="connection refused") as info:
        await maestro.run("notice?", corpus=contracts)
    assert s1_cancelled  # nothing keeps running after the run stopped
    assert "run_store" in (info.value.hint or "")  # without a store it cannot be resumed


async def test_calls_cancelled_when_the_run_stops_are_counted_and_recorded(
    contracts: MemoryRetriever,
) -> None:
    s1_started = asyncio.Event()

    async def step(call: ModelCall) -> Any:
        if "2023" in step_of(call):
            s1_started.set()
            await asyncio.Event().wait()  # in flight when the run stops
        await s1_started.wait()
        raise ModelConnectionError("connection refused", model="routed")

    store = SQLiteRunStore()
    model = routed(notice_plan, step, judge_mentions())
    maestro = Maestro(model, run_store=store, retry=RetryPolicy(max_retries=0))
    with pytest.raises(RunInterruptedError):
        await maestro.run("notice?", corpus=contracts, run_id="r")
    record = store.get("r")
    assert len(model.calls) == 3  # plan, s1 (cancelled), s2 (refused)
    assert record.summary.usage.requests == 3 and record.summary.usage.failed_requests == 2
    attempts = [e for e in store.events("r") if isinstance(e, ModelAttempted)]
    s1 = [e for e in attempts if e.purpose == "step:s1"]
    assert len(s1) == 1 and "cancelled" in (s1[0].error or "")
    assert s1[0].usage.input_tokens > 0
