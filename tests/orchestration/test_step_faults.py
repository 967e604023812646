"""A step that takes too long fails alone; an endpoint that is down stops the whole run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from maestro_lite import ModelConnectionError, RetryPolicy, RunInterruptedError
from maestro_lite.budget import Budget
from maestro_lite.models import ModelCall
from maestro_lite.orchestrator import Maestro

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
