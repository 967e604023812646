"""The overhead benchmark compares like with like: its plain loop and its LangGraph graph run
exactly the step work that ``Maestro.run`` does, so the difference in time is orchestration."""

from __future__ import annotations

import json

import pytest

from evals.bench_orchestration import (
    _answer,
    dag,
    run_langgraph_same_work,
    run_maestro,
    run_plain_loop,
)
from maestro_lite.testing import FunctionModel


def _requests(model: FunctionModel) -> list[tuple[str, ...]]:
    """Every request's messages and output schema, in a stable order."""
    return sorted(
        (*(m.content for m in call.messages), json.dumps(call.json_schema, sort_keys=True))
        for call in model.calls
    )


async def _same_calls(runner: str) -> None:
    plan = dag(3, 3)
    ours, theirs = FunctionModel(_answer), FunctionModel(_answer)
    await run_maestro(plan, ours, concurrency=4)
    if runner == "plain":
        await run_plain_loop(plan, theirs)
    else:
        await run_langgraph_same_work(plan, theirs)
    assert len(ours.calls) == len(plan.steps)
    # The same prompts and schemas, so the same evidence and dependencies, step by step.
    assert _requests(theirs) == _requests(ours)


async def test_the_plain_loop_makes_the_calls_maestro_makes() -> None:
    await _same_calls("plain")


async def test_langgraph_with_maestro_steps_makes_the_calls_maestro_makes() -> None:
    pytest.importorskip("langgraph", reason="LangGraph comes with the bench extra")
    await _same_calls("langgraph")
