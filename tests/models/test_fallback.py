"""Fallback chains: each model gets its retries, then the next one answers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from maestro_lite import (
    BudgetExceeded,
    FallbackModel,
    Message,
    ModelAPIError,
    ModelAuthError,
    ModelConnectionError,
    RetryPolicy,
    UsageLimits,
    UsageMeter,
    UserError,
    generate,
)
from maestro_lite.models import FunctionModel, ModelCall, ModelSettings, ScriptedModel

RETRY = RetryPolicy(max_retries=2, initial_delay=0.0, jitter=0.0)


class City(BaseModel):
    name: str


def down(name: str) -> FunctionModel:
    def refuse(call: ModelCall) -> Any:
        raise ModelConnectionError("connection refused", model=name)

    return FunctionModel(refuse, name=name)


async def test_the_next_model_answers_once_the_first_has_spent_its_retries() -> None:
    remote = down("openai:gpt-4o-mini")
    local = FunctionModel(lambda call: {"name": "Oslo"}, name="local:qwen")
    chain = FallbackModel(remote, local)
    assert chain.name == "fallback:openai:gpt-4o-mini,local:qwen"
    meter = UsageMeter()
    done = await generate(chain, [Message.user("q")], output_type=City, retry=RETRY, meter=meter)
    assert done.output.name == "Oslo"
    assert done.model == "local:qwen"  # which model answered is recorded
    assert len(remote.calls) == 3 and len(local.calls) == 1  # first try + 2 retries, then 1
    assert [(a.model, a.outcome) for a in done.attempts] == [
        ("openai:gpt-4o-mini", "error"),
        ("openai:gpt-4o-mini", "error"),
        ("openai:gpt-4o-mini", "error"),
        ("local:qwen", "ok"),
    ]
    assert done.usage.requests == 4 and done.usage.failed_requests == 3
    assert meter.usage == done.usage


async def test_a_rejected_request_falls_back_at_once_and_invalid_output_after_its_reasks() -> None:
    def reject(call: ModelCall) -> Any:
        raise ModelAuthError("bad key", model="remote", status_code=401)

    rejecting = FunctionModel(reject, name="remote")
    babbling = ScriptedModel(["nope", "still nope"], name="small")
    good = ScriptedModel([{"name": "Oslo"}], name="big")
    chain = FallbackModel(rejecting, babbling, good)
    done = await generate(chain, [Message.user("q")], output_type=City, retry=RETRY, max_reasks=1)
    assert done.model == "big"
    assert len(rejecting.calls) == 1  # a 401 is not retried
    assert [a.outcome for a in done.attempts] == ["error", "invalid", "invalid", "ok"]
    assert done.usage.reasks == 1


async def test_what_does_not_fall_back() -> None:
    last = ScriptedModel([{"name": "Oslo"}])
    chain = FallbackModel(down("a"), last)
    with pytest.raises(BudgetExceeded):  # a spent budget stops the chain, never skips ahead
        await generate(chain, [Message.user("q")], meter=UsageMeter(UsageLimits(max_requests=2)))
    assert last.calls == []

    only_bad_requests = FallbackModel(
        down("a"),
        last,
        fallback_on=lambda exc: isinstance(exc, ModelAPIError) and exc.status_code == 400,
    )
    with pytest.raises(ModelConnectionError):
        await generate(only_bad_requests, [Message.user("q")], retry=RETRY)

    with pytest.raises(ModelConnectionError, match="refused"):  # all failed: the last error
        await generate(FallbackModel(down("a"), down("b")), [Message.user("q")], retry=RETRY)
    with pytest.raises(UserError, match="at least two"):
        FallbackModel(last)


async def test_a_direct_request_tries_each_model_once() -> None:
    chain = FallbackModel(down("a"), FunctionModel(lambda call: "hi", name="b"))
    assert chain.context_window == 32_768
    raw = await chain.request([Message.user("q")], json_schema=None, settings=ModelSettings())
    assert (raw.text, raw.model) == ("hi", "b")
