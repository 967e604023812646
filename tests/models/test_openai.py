"""OpenAIModel against a real HTTP server on 127.0.0.1 speaking the chat-completions format."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from pydantic import BaseModel

from maestro_lite import (
    ConfigError,
    Message,
    ModelAPIError,
    ModelAuthError,
    ModelConnectionError,
    ModelTimeout,
    RetryPolicy,
    generate,
)
from maestro_lite.models import ModelSettings, OpenAIModel
from maestro_lite.testing import OpenAICompatibleServer

NO_WAIT = RetryPolicy(max_retries=5, initial_delay=0.0, jitter=0.0)


class Address(BaseModel):
    city: str
    country: str


class Company(BaseModel):
    name: str
    employees: int
    offices: list[Address]


COMPANY = {"name": "Acme", "employees": 120, "offices": [{"city": "Oslo", "country": "NO"}]}


def _company(body: dict[str, Any]) -> dict[str, Any]:
    return COMPANY


async def test_structured_output_parsed_validated_and_usage_from_server() -> None:
    with OpenAICompatibleServer(_company) as server:
        async with OpenAIModel("test-model", base_url=server.base_url) as model:
            result = await generate(
                model, [Message.user("Tell me about Acme")], output_type=Company
            )
    assert result.output == Company.model_validate(COMPANY)
    body = server.requests[0]
    assert body["model"] == "test-model"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["title"] == "Company"
    # Usage comes from the server's report, not a local estimate.
    prompt = "".join(m["content"] for m in body["messages"])
    assert result.usage.input_tokens == max(1, len(prompt) // 4)
    assert result.usage.output_tokens == max(1, len(result.text) // 4)
    assert result.model == "openai:test-model"


async def test_invalid_answer_is_reasked_over_http() -> None:
    answers = iter(['{"name": "Acme"}', COMPANY])

    with OpenAICompatibleServer(lambda body: next(answers)) as server:
        async with OpenAIModel("test-model", base_url=server.base_url) as model:
            result = await generate(model, [Message.user("q")], output_type=Company)
    assert result.output.employees == 120
    assert len(server.requests) == 2
    assert "employees" in server.requests[1]["messages"][-1]["content"]
    assert result.usage.reasks == 1


async def test_settings_are_sent() -> None:
    with OpenAICompatibleServer(lambda body: "ok") as server:
        async with OpenAIModel("m", base_url=server.base_url) as model:
            await generate(
                model,
                [Message.user("q")],
                settings=ModelSettings(temperature=0.3, max_tokens=50, seed=7),
            )
    body = server.requests[0]
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.3, 50, 7)
    assert "response_format" not in body


async def test_json_object_mode_sends_the_schema_for_llama_cpp_servers() -> None:
    with OpenAICompatibleServer(_company) as server:
        async with OpenAIModel(
            "m", base_url=server.base_url, structured_mode="json_object"
        ) as model:
            await generate(model, [Message.user("q")], output_type=Company)
    fmt = server.requests[0]["response_format"]
    assert fmt["type"] == "json_object"
    assert fmt["schema"]["title"] == "Company"


async def test_strict_mode_closes_every_object() -> None:
    with OpenAICompatibleServer(_company) as server:
        async with OpenAIModel("m", base_url=server.base_url, strict=True) as model:
            await generate(model, [Message.user("q")], output_type=Company)
    schema = server.requests[0]["response_format"]["json_schema"]
    assert schema["strict"] is True
    address = schema["schema"]["$defs"]["Address"]
    assert address["additionalProperties"] is False
    assert address["required"] == ["city", "country"]


@pytest.mark.parametrize(
    ("fault", "error_type", "status"),
    [
        ("401", ModelAuthError, 401),
        ("400", ModelAPIError, 400),
        ("404", ModelAPIError, 404),
    ],
)
async def test_permanent_http_errors_map_to_typed_errors_without_retry(
    fault: str, error_type: type[ModelAPIError], status: int
) -> None:
    with OpenAICompatibleServer(_company, faults=[fault]) as server:  # type: ignore[list-item]
        async with OpenAIModel("test-model", base_url=server.base_url) as model:
            with pytest.raises(error_type) as info:
                await generate(model, [Message.user("q")], retry=NO_WAIT)
    assert info.value.status_code == status
    assert not info.value.is_retryable
    assert len(server.requests) == 1
    assert f"HTTP {status}" in str(info.value)
    assert "injected" in str(info.value)  # the server's own message is kept


async def test_transient_faults_are_retried_until_an_answer() -> None:
    faults = ["429", "500", "malformed", "drop", "timeout"]
    with OpenAICompatibleServer(
        _company,
        faults=faults,
        hang_seconds=30.0,  # the client gives up first, however loaded the machine
        retry_after=0.01,
    ) as server:
        async with OpenAIModel("test-model", base_url=server.base_url, timeout=0.3) as model:
            result = await generate(model, [Message.user("q")], output_type=Company, retry=NO_WAIT)
    assert result.output.name == "Acme"
    errors = [a.error or "" for a in result.attempts if a.outcome == "error"]
    assert len(errors) == 5
    assert "HTTP 429" in errors[0]
    assert "HTTP 500" in errors[1]
    assert "malformed response" in errors[2]
    assert "cannot reach" in errors[3]
    assert "timed out" in errors[4]
    assert result.usage.failed_requests == 5
    assert result.usage.requests == 6


async def test_retry_after_is_parsed() -> None:
    with OpenAICompatibleServer(_company, faults=["429"], retry_after=2.5) as server:
        async with OpenAIModel("test-model", base_url=server.base_url) as model:
            with pytest.raises(ModelAPIError) as info:
                await generate(model, [Message.user("q")], retry=RetryPolicy(max_retries=0))
    assert info.value.status_code == 429
    assert info.value.retry_after == 2.5
    assert info.value.is_retryable


async def test_retry_after_as_an_http_date_and_one_too_long_to_wait_for() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    with OpenAICompatibleServer(_company, faults=["429"], retry_after=soon) as server:
        async with OpenAIModel("test-model", base_url=server.base_url) as model:
            with pytest.raises(ModelAPIError) as info:
                await generate(model, [Message.user("q")], retry=RetryPolicy(max_retries=0))
    assert info.value.retry_after is not None and 3.0 <= info.value.retry_after <= 5.0

    # A quota spent for the hour: failing at once beats retrying early or sleeping an hour.
    with OpenAICompatibleServer(_company, faults=["429"], retry_after=3600) as server:
        async with OpenAIModel("test-model", base_url=server.base_url) as model:
            with pytest.raises(ModelAPIError) as info:
                await generate(model, [Message.user("q")], retry=RetryPolicy(max_retries=3))
        assert len(server.requests) == 1
    assert "asks to retry after 3600s, more than the 300s the retry policy waits" in str(info.value)
    assert info.value.status_code == 429 and info.value.hint is not None


async def test_timeout_maps_to_model_timeout() -> None:
    with OpenAICompatibleServer(_company, faults=["timeout"], hang_seconds=30.0) as server:
        async with OpenAIModel("test-model", base_url=server.base_url, timeout=0.2) as model:
            with pytest.raises(ModelTimeout):
                await generate(model, [Message.user("q")], retry=RetryPolicy(max_retries=0))


async def test_a_timeout_stays_a_timeout_when_the_process_has_many_files_open() -> None:
    # select() refuses descriptors above 1023; a long test session hands those out.
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with OpenAICompatibleServer(_company, faults=["timeout"], hang_seconds=30.0) as server:
            async with OpenAIModel("test-model", base_url=server.base_url, timeout=0.3) as model:
                with pytest.raises(ModelTimeout):
                    await generate(model, [Message.user("q")], retry=RetryPolicy(max_retries=0))
    finally:
        for fd in held:
            os.close(fd)


async def test_unreachable_endpoint_is_a_connection_error_with_a_hint() -> None:
    server = OpenAICompatibleServer(_company)
    url = server.base_url
    server.stop()  # the port is now closed
    async with OpenAIModel("test-model", base_url=url) as model:
        with pytest.raises(ModelConnectionError) as info:
            await generate(
                model, [Message.user("q")], retry=RetryPolicy(max_retries=1, initial_delay=0)
            )
        assert url in str(info.value)
        assert info.value.hint and "OPENAI_BASE_URL" in info.value.hint


async def test_ping_lists_models() -> None:
    with OpenAICompatibleServer(_company, model_ids=["a", "b"]) as server:
        async with OpenAIModel("a", base_url=server.base_url) as model:
            assert await model.ping() == ["a", "b"]


def test_openai_without_a_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIModel("gpt-4o-mini")


async def test_cost_is_estimated_for_known_models() -> None:
    from maestro_lite.usage import estimate_cost

    async with OpenAIModel("gpt-4o-mini", api_key="sk-test") as model:
        assert model.name == "openai:gpt-4o-mini"
    assert estimate_cost(model.name, 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert estimate_cost("openai:gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)
    assert estimate_cost("local:qwen2.5-coder-1.5b", 1_000_000, 1_000_000) == 0.0
