"""generate(): validation, re-asks, retries, usage and budgets, driven by scripted models."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, Field

from maestro_lite import (
    BudgetExceeded,
    Message,
    ModelAPIError,
    ModelAuthError,
    ModelSettings,
    ModelTimeout,
    RetryPolicy,
    StructuredOutputError,
    UsageLimits,
    UsageMeter,
    generate,
)
from maestro_lite.models import CallGate, ModelCall, RawResponse, gated
from maestro_lite.models.calls import call_purpose, for_purpose
from maestro_lite.testing import FunctionModel, ScriptedModel

NO_WAIT = RetryPolicy(max_retries=3, initial_delay=0.0, jitter=0.0)


class Figure(BaseModel):
    label: str
    value: float = Field(ge=0)


class Report(BaseModel):
    title: str
    figures: list[Figure]


PROMPT = [Message.system("Extract."), Message.user("Revenue was 10.")]


async def test_text_output_and_usage_counted_locally() -> None:
    model = ScriptedModel(["hello there"])
    result = await generate(model, [Message.user("hi")])
    assert result.output == "hello there"
    assert result.usage.requests == 1
    assert result.usage.input_tokens > 0  # counted with tiktoken: the model reported none
    assert result.usage.output_tokens == 2
    model.assert_complete()


async def test_structured_output_is_validated_and_schema_is_sent() -> None:
    model = ScriptedModel([Report(title="Q3", figures=[Figure(label="revenue", value=10)])])
    result = await generate(model, PROMPT, output_type=Report)
    assert isinstance(result.output, Report)
    assert result.output.figures[0].value == 10
    call = model.calls[0]
    assert call.json_schema is not None and call.json_schema["title"] == "Report"
    # The schema also goes into the instructions, for backends that cannot enforce it.
    assert '"figures"' in call.system


async def test_invalid_output_is_reasked_with_the_errors() -> None:
    bad = {"title": "Q3", "figures": [{"label": "revenue", "value": -1}]}
    good = {"title": "Q3", "figures": [{"label": "revenue", "value": 1}]}
    model = ScriptedModel(["not json at all", bad, good])
    result = await generate(model, PROMPT, output_type=Report, max_reasks=2)
    assert result.output.figures[0].value == 1
    assert [a.outcome for a in result.attempts] == ["invalid", "invalid", "ok"]
    assert result.usage.requests == 3
    assert result.usage.reasks == 2
    # The re-ask carries the validation error back to the model.
    assert "figures.0.value" in model.calls[2].last_user
    assert (
        model.calls[2].messages[-2].content == '{"title": "Q3", "figures": [{"label": '
        '"revenue", "value": -1}]}'
    )


async def test_reasks_are_bounded() -> None:
    model = ScriptedModel(["{}", "{}"])
    with pytest.raises(StructuredOutputError) as info:
        await generate(model, PROMPT, output_type=Report, max_reasks=1)
    assert info.value.attempts == 2
    assert info.value.schema_name == "Report"
    assert "title" in info.value.errors
    model.assert_complete()


async def test_json_inside_a_code_fence_is_accepted() -> None:
    model = ScriptedModel(['Sure!\n```json\n{"title": "t", "figures": []}\n```'])
    result = await generate(model, PROMPT, output_type=Report)
    assert result.output.title == "t"


async def test_transient_errors_are_retried_and_counted() -> None:
    model = ScriptedModel(
        [
            ModelAPIError("busy", model="scripted", status_code=429, retry_after=0.0),
            ModelAPIError("boom", model="scripted", status_code=503),
            "fine",
        ]
    )
    meter = UsageMeter()
    result = await generate(model, PROMPT, retry=NO_WAIT, meter=meter)
    assert result.output == "fine"
    assert result.usage.requests == 3
    assert result.usage.failed_requests == 2
    assert meter.usage == result.usage


async def test_permanent_errors_fail_fast() -> None:
    model = ScriptedModel([ModelAuthError("bad key", model="scripted", status_code=401), "x"])
    with pytest.raises(ModelAuthError):
        await generate(model, PROMPT, retry=NO_WAIT)
    assert len(model.calls) == 1


async def test_retries_are_bounded() -> None:
    errors = [ModelAPIError("down", model="scripted", status_code=500) for _ in range(3)]
    model = ScriptedModel(errors)
    with pytest.raises(ModelAPIError):
        await generate(model, PROMPT, retry=RetryPolicy(max_retries=2, initial_delay=0))
    model.assert_complete()


def test_retry_delay_grows_and_honours_retry_after() -> None:
    policy = RetryPolicy(initial_delay=1.0, multiplier=2.0, max_delay=10.0, jitter=0.0)
    assert [policy.delay(n) for n in (1, 2, 3, 5)] == [1.0, 2.0, 4.0, 10.0]
    assert policy.delay(1, retry_after=7.0) == 7.0
    assert policy.delay(1, retry_after=99.0) == 99.0  # the server's wait, beyond max_delay
    assert policy.waits_for(300.0) and not policy.waits_for(301.0)  # max_retry_after
    jittered = RetryPolicy(initial_delay=1.0, jitter=0.5)
    assert all(0.5 <= jittered.delay(1) <= 1.5 for _ in range(50))


async def test_budget_is_checked_before_each_call_including_reasks() -> None:
    model = ScriptedModel(["{}", '{"title": "t", "figures": []}'])
    meter = UsageMeter(UsageLimits(max_requests=1))
    with pytest.raises(BudgetExceeded) as info:
        await generate(model, PROMPT, output_type=Report, meter=meter)
    assert info.value.limit == "max_requests=1"
    assert len(model.calls) == 1  # the re-ask was never sent
    assert meter.usage.requests == 1


async def test_token_budget_refuses_a_call_that_would_not_fit() -> None:
    model = ScriptedModel(["never"])
    meter = UsageMeter(UsageLimits(max_tokens=5))
    with pytest.raises(BudgetExceeded):
        await generate(model, [Message.user("a fairly long prompt " * 10)], meter=meter)
    assert model.calls == []


async def test_concurrent_calls_cannot_jointly_overshoot_the_request_limit() -> None:
    release = asyncio.Event()
    two_started = asyncio.Event()
    started = 0

    async def slow(call: ModelCall) -> str:
        nonlocal started
        started += 1
        if started == 2:
            two_started.set()
        await release.wait()
        return "ok"

    model = FunctionModel(slow)
    meter = UsageMeter(UsageLimits(max_requests=2))
    tasks = [asyncio.create_task(generate(model, PROMPT, meter=meter)) for _ in range(3)]
    await two_started.wait()
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, BudgetExceeded) for r in results) == 1
    assert len(model.calls) == 2
    assert meter.usage.requests == 2


async def test_timeout_becomes_model_timeout_and_is_retried() -> None:
    calls = 0

    async def sometimes_hangs(call: ModelCall) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()  # never answers
        return "late but fine"

    model = FunctionModel(sometimes_hangs)
    result = await generate(model, PROMPT, settings=ModelSettings(timeout=0.05), retry=NO_WAIT)
    assert result.output == "late but fine"
    assert result.attempts[0].outcome == "error"
    assert "did not answer within" in (result.attempts[0].error or "")
    assert result.usage.failed_requests == 1


async def test_timeout_error_type() -> None:
    async def hangs(call: ModelCall) -> str:
        await asyncio.Event().wait()
        return ""

    with pytest.raises(ModelTimeout):
        await generate(
            FunctionModel(hangs),
            PROMPT,
            settings=ModelSettings(timeout=0.01),
            retry=RetryPolicy(max_retries=0),
        )


async def test_on_attempt_sees_every_attempt() -> None:
    seen: list[str] = []
    model = ScriptedModel(
        [ModelAPIError("x", model="s", status_code=500), "{}", '{"title": "t", "figures": []}']
    )
    await generate(
        model,
        PROMPT,
        output_type=Report,
        retry=NO_WAIT,
        on_attempt=lambda a: seen.append(a.outcome),
    )
    assert seen == ["error", "invalid", "ok"]


def test_scripted_model_reports_unused_and_exhausted_replies() -> None:
    model = ScriptedModel(["a", "b"])
    asyncio.run(generate(model, PROMPT))
    with pytest.raises(AssertionError, match="1 scripted reply"):
        model.assert_complete()
    asyncio.run(generate(model, PROMPT))
    with pytest.raises(AssertionError, match="ran out of replies"):
        asyncio.run(generate(model, PROMPT))


async def test_a_reply_cut_off_at_the_length_limit_is_reasked_to_be_shorter() -> None:
    from maestro_lite.models import RawResponse

    cut = RawResponse(
        text='{"title": "Q3", "figures": [{"label": "rev', model="s", finish_reason="length"
    )
    model = ScriptedModel([cut, '{"title": "Q3", "figures": []}'])
    settings = ModelSettings(max_tokens=300)
    result = await generate(model, PROMPT, output_type=Report, settings=settings)
    assert result.output.title == "Q3"
    again = model.calls[1]
    assert "cut off because it was too long" in again.last_user
    # The re-ask has room for more, and does not show the model its cut-off text (a small
    # model writes it out again, word for word).
    assert again.settings.max_tokens == 600
    assert all(cut.text not in m.content for m in again.messages)


async def _race(limits: UsageLimits, *, calls: int, output_tokens: int) -> tuple[UsageMeter, int]:
    """``calls`` concurrent calls of a priced model that each answer with the most output
    they may give, once every admitted call is in flight; returns the meter and how many
    calls the budget refused."""
    release = asyncio.Event()

    async def slow(call: ModelCall) -> RawResponse:
        await release.wait()
        prompt = sum(len(m.content) for m in call.messages)  # what a provider reports
        return RawResponse(
            text="ok", model="gpt-4o-mini", input_tokens=prompt // 4, output_tokens=output_tokens
        )

    model = FunctionModel(slow, name="openai:gpt-4o-mini")
    meter = UsageMeter(limits)
    settings = ModelSettings(max_tokens=output_tokens)
    tasks = [
        asyncio.create_task(generate(model, PROMPT, settings=settings, meter=meter))
        for _ in range(calls)
    ]
    for _ in range(1000):  # until every call is in flight at the model or refused
        if len(model.calls) + sum(t.done() for t in tasks) == calls:
            break
        await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(model.calls) + len(refused) == calls
    return meter, len(refused)


async def test_concurrent_calls_cannot_jointly_overshoot_the_cost_limit() -> None:
    # Each call may cost ~$0.000605 (1000 output tokens at $0.60/M plus its prompt): two
    # fit in $0.0015, three do not, even though nothing has been spent when they start.
    meter, refused = await _race(UsageLimits(max_cost_usd=0.0015), calls=5, output_tokens=1000)
    assert refused == 3 and meter.usage.requests == 2
    assert 0.0012 < meter.usage.cost_usd <= 0.0015


async def test_concurrent_calls_cannot_jointly_overshoot_the_token_limit() -> None:
    # Each call reserves its prompt plus its 1000 output tokens: two fit in 2500.
    meter, refused = await _race(UsageLimits(max_tokens=2500), calls=5, output_tokens=1000)
    assert refused == 3 and meter.usage.requests == 2
    assert 2000 < meter.usage.total_tokens <= 2500


async def test_a_cost_limit_does_not_bind_a_model_without_a_price() -> None:
    model = ScriptedModel(["free", "still free"], name="local:qwen")
    meter = UsageMeter(UsageLimits(max_cost_usd=0.0))
    for _ in range(2):
        await generate(model, PROMPT, meter=meter)
    assert meter.usage.requests == 2 and meter.usage.cost_usd == 0.0


class HeldModel:
    """Answers each call once the test releases it, counting what it was asked."""

    name = "held"
    context_window = 4096

    def __init__(self) -> None:
        self.asked = 0
        self.asked_once = asyncio.Event()
        self.release = asyncio.Event()

    async def request(self, messages: object, **_: object) -> RawResponse:
        self.asked += 1
        self.asked_once.set()
        await self.release.wait()
        return RawResponse(text="done", model=self.name)


async def test_a_closed_gate_lets_calls_in_flight_finish_and_holds_new_ones_uncounted() -> None:
    model, gate, meter = HeldModel(), CallGate(), UsageMeter()
    with gated(gate):  # tasks created here inherit the gate
        first = asyncio.create_task(generate(model, [Message.user("a")], meter=meter))
        await model.asked_once.wait()
        gate.close()
        second = asyncio.create_task(generate(model, [Message.user("b")], meter=meter))
        for _ in range(20):  # let the second task run as far as it can
            await asyncio.sleep(0)
    assert model.asked == 1 and gate.in_flight == 1  # the second was never sent
    model.release.set()
    await gate.drained()
    assert (await first).text == "done"
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert model.asked == 1 and meter.usage.requests == 1  # held back: made and paid nowhere


async def test_a_call_s_purpose_reaches_the_model_and_nested_calls_keep_it() -> None:
    model = ScriptedModel(["a", "b", "c"])
    await generate(model, [Message.user("x")], purpose="step:s1")
    await generate(model, [Message.user("x")])  # outside any purpose
    with for_purpose("judge"):
        await generate(model, [Message.user("x")])  # keeps the one set around it
    assert [c.purpose for c in model.calls] == ["step:s1", None, "judge"]
    assert [c.step_id for c in model.calls] == ["s1", None, None]
    assert call_purpose() is None  # reset after each call
