"""Runs against a real HTTP endpoint that fails: injected faults, an endpoint that dies."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from maestro_lite import (
    Budget,
    Limiter,
    ProviderLimits,
    RetryPolicy,
    RunInterruptedError,
    UserError,
)
from maestro_lite.events import Event, ModelAttempted, RunResumed, StepFinished
from maestro_lite.models import OpenAIModel
from maestro_lite.orchestrator import Maestro
from maestro_lite.result import RunResult
from maestro_lite.runs import SQLiteRunStore
from maestro_lite.testing import Fault, FaultRates, OpenAICompatibleServer

from ..orchestration.conftest import MemoryRetriever, step_of
from .conftest import answering_reasks, fix_then_replan_model, over_http, unit_of

TASK = "Compare the two versions"
REQUIREMENTS = ["cover the governing law of both versions"]
# Enough retries that a call survives a run of faults at 30%; no real waiting in tests.
PATIENT = RetryPolicy(max_retries=8, initial_delay=0.005, max_delay=0.02)
LIMIT = 2


async def run_all(
    server: OpenAICompatibleServer, retriever: MemoryRetriever, runs: int
) -> list[RunResult]:
    limiter = Limiter({server.base_url: ProviderLimits(max_concurrent=LIMIT)})
    async with OpenAIModel("test-model", base_url=server.base_url, timeout=0.3) as model:
        # Enough re-asks that a call survives a run of bad answers at this rate.
        maestro = Maestro(model, concurrency=4, retry=PATIENT, max_reasks=8, limiter=limiter)
        results = await asyncio.gather(
            *(
                maestro.run(TASK, corpus=retriever, requirements=REQUIREMENTS, run_id=f"run{i}")
                for i in range(runs)
            )
        )
    assert limiter.stats(server.base_url).max_in_flight <= LIMIT
    assert all(r.status == "passed" for r in results), [r.error for r in results]
    return list(results)


FAULTS: list[Fault] = ["429", "500", "timeout", "drop", "malformed", "bad_json", "bad_schema"]
BAD_ANSWERS = ("bad_json", "bad_schema")


async def test_with_30_percent_faults_every_run_completes_with_the_fault_free_output(
    contracts: MemoryRetriever,
) -> None:
    responder = answering_reasks(over_http(fix_then_replan_model()))
    with OpenAICompatibleServer(responder) as clean:
        expected = [r.output_text for r in await run_all(clean, contracts, runs=4)]

    faults = FaultRates(
        rate_429=0.045,
        rate_500=0.045,
        rate_timeout=0.045,
        rate_drop=0.045,
        rate_malformed=0.045,
        rate_bad_json=0.045,
        rate_bad_schema=0.045,
        seed=5,
    )
    with OpenAICompatibleServer(
        responder,
        faults=FAULTS,  # each kind at least once
        rates=faults,
        retry_after=0.01,
        hang_seconds=5,
    ) as faulty:
        results = await run_all(faulty, contracts, runs=4)
    assert [r.output_text for r in results] == expected
    seen = Counter(faulty.outcomes)
    assert set(FAULTS) <= set(seen)
    assert 1 - seen["ok"] / len(faulty.outcomes) >= 0.25  # the share of faulty calls
    # Answers that were not the JSON asked for came back as 200s and were re-asked: each
    # one makes at least the next attempt of its call a re-ask, and every attempt counts.
    bad = sum(seen[f] for f in BAD_ANSWERS)
    reasks = sum(r.usage.reasks for r in results)
    assert reasks >= bad > 0
    invalid = [
        e
        for r in results
        for e in r.events
        if isinstance(e, ModelAttempted) and e.outcome == "invalid"
    ]
    assert len(invalid) == bad
    assert sum(r.usage.requests for r in results) == len(faulty.outcomes)
    # The server's own count: the shared limit held across all runs and every fault.
    assert faulty.max_in_flight == LIMIT


async def test_a_dead_endpoint_stops_the_run_which_resumes_when_it_is_back(
    contracts: MemoryRetriever, tmp_path: Path
) -> None:
    store = SQLiteRunStore(tmp_path / "runs.sqlite3")
    responder = over_http(fix_then_replan_model())
    server = OpenAICompatibleServer(responder).start()
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])

    def kill_after_s2(event: Event) -> None:
        if isinstance(event, StepFinished) and event.step_id == "s2":
            server.stop()  # the endpoint dies: refused connections from now on

    quick = RetryPolicy(max_retries=2, initial_delay=0.0, jitter=0.0)
    async with OpenAIModel("test-model", base_url=server.base_url, timeout=2) as model:
        maestro = Maestro(model, concurrency=1, retry=quick, run_store=store)
        with pytest.raises(RunInterruptedError) as info:
            await maestro.run(
                TASK,
                corpus=contracts,
                requirements=REQUIREMENTS,
                run_id="r",
                on_event=kill_after_s2,
            )
        assert "cannot reach" in str(info.value)
        assert "maestro resume r" in (info.value.hint or "")
        record = store.get("r")
        assert record.status == "interrupted"
        assert {s.step_id for s in record.steps if s.status == "done"} == {"s1", "s2"}
        before = [unit_of(body) for body in server.requests]
        assert before == [
            "plan",
            "step:Notice period in the 2023 version",
            "step:Notice period in the 2025 version",
        ]

        with OpenAICompatibleServer(responder, port=port) as back:
            result = await maestro.resume("r", corpus=contracts)
        assert result.status == "passed"
        after = [unit_of(body) for body in back.requests]
        assert not set(before) & set(after)  # nothing finished was asked for again
        assert after[0] == "step:Compare the notice periods"
        # The 3 refused attempts are recorded and shown, but sent nothing: not requests.
        assert result.usage.requests == len(before) + len(after)
        assert result.usage.unreached_requests == 3
        assert result.usage.failed_requests == 0


async def test_an_outage_spends_no_budget_however_often_the_run_is_resumed_into_it(
    contracts: MemoryRetriever, tmp_path: Path
) -> None:
    responder = over_http(fix_then_replan_model())
    quick = RetryPolicy(max_retries=2, initial_delay=0.0, jitter=0.0)
    with OpenAICompatibleServer(responder) as clean:
        async with OpenAIModel("test-model", base_url=clean.base_url, timeout=2) as model:
            needed = (await Maestro(model, retry=quick).run(TASK, corpus=contracts)).usage
    exact = Budget(max_requests=needed.requests)  # not one request to spare

    store = SQLiteRunStore(tmp_path / "runs.sqlite3")
    server = OpenAICompatibleServer(responder).start()
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])

    def kill_after_s2(event: Event) -> None:
        if isinstance(event, StepFinished) and event.step_id == "s2":
            server.stop()  # a closed port: connections refused, nothing sent

    async with OpenAIModel("test-model", base_url=server.base_url, timeout=2) as model:
        maestro = Maestro(model, concurrency=1, retry=quick, run_store=store)
        with pytest.raises(RunInterruptedError):
            await maestro.run(
                TASK, corpus=contracts, budget=exact, run_id="r", on_event=kill_after_s2
            )
        for _ in range(3):  # resumed while the endpoint is still down
            with pytest.raises(RunInterruptedError, match="nothing was sent"):
                await maestro.resume("r", corpus=contracts)
        down = store.get("r").summary.usage
        assert down.requests == 3 and down.unreached_requests == 4 * 3
        with OpenAICompatibleServer(responder, port=port) as back:
            result = await maestro.resume("r", corpus=contracts)
    assert result.status == "passed" and result.budget_exhausted is None
    assert result.usage.requests == needed.requests == 3 + len(back.requests)
    assert result.usage.unreached_requests == 12
    attempts = [e for e in result.events if isinstance(e, ModelAttempted)]
    assert sum("nothing was sent" in (a.error or "") for a in attempts) == 12  # recorded


async def test_a_run_stopped_on_its_budget_goes_on_with_a_larger_one(
    contracts: MemoryRetriever,
) -> None:
    store = SQLiteRunStore()
    model = fix_then_replan_model()
    maestro = Maestro(model, concurrency=1, run_store=store)
    clean = await Maestro(fix_then_replan_model()).run(
        TASK, corpus=contracts, requirements=REQUIREMENTS
    )
    first = await maestro.run(
        TASK, corpus=contracts, requirements=REQUIREMENTS, budget=Budget(max_requests=3), run_id="r"
    )
    assert first.status == "failed" and first.budget_exhausted == "max_requests=3"
    asked = len(model.calls)

    with pytest.raises(UserError, match=r"stopped on its budget \(max_requests=3\)") as info:
        await maestro.resume("r", corpus=contracts)
    assert "maestro resume r --max-requests 6" in (info.value.hint or "")
    with pytest.raises(UserError, match="spent already"):
        await maestro.resume("r", corpus=contracts, budget=Budget(max_requests=3))
    assert len(model.calls) == asked  # refusals call nothing

    result = await maestro.resume("r", corpus=contracts, budget="medium")
    assert result.status == "passed" and result.budget_exhausted is None
    assert result.output_text == clean.output_text
    again = [step_of(c) for c in model.calls[asked:] if c.schema_title == "StepAnswer"]
    assert not any(i.startswith("Notice period in the") for i in again)  # s1, s2 kept
    assert store.get("r").status == "passed"
    resumed = [e for e in store.events("r") if isinstance(e, RunResumed)]
    assert resumed[-1].budget == Budget.preset("medium")  # kept for a later resume
