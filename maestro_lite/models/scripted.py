"""Deterministic models for tests: your pipeline's tests as much as ours.

:class:`ScriptedModel` plays back a list of answers in order and records every call;
:class:`FunctionModel` computes each answer from the call. Both go through the same
:func:`~maestro_lite.models.generate` path as real models (validation, re-asks, retries,
usage), so a test exercises the real orchestration. Answers may be text, a dict or a pydantic
object (sent as JSON text), or an exception (raised as if the endpoint failed).

Example::

    model = ScriptedModel([Answer(text="42"), "not json", Answer(text="43")])
    ...
    model.assert_complete()   # fails if an answer was never asked for
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from pydantic import BaseModel

from .base import Message, ModelSettings, RawResponse
from .calls import call_purpose

__all__ = ["FunctionModel", "ModelCall", "ScriptedModel", "ScriptedReply"]


@dataclass(frozen=True)
class ModelCall:
    """One request a test model received."""

    messages: list[Message]
    json_schema: dict[str, Any] | None
    settings: ModelSettings
    purpose: str | None = None
    """What the call is for, as the run records it: ``plan``, ``step:<id>``, ``judge`` or
    ``judge:<id>`` (``None`` for a call made outside the planner, executor and validator).
    Key a fake on it rather than on the prompt's text."""

    @property
    def step_id(self) -> str | None:
        """The id of the step the call answers (``None`` unless ``purpose`` is a step's)."""
        if self.purpose is None or not self.purpose.startswith("step:"):
            return None
        return self.purpose.removeprefix("step:")

    @property
    def system(self) -> str:
        return "\n".join(m.content for m in self.messages if m.role == "system")

    @property
    def last_user(self) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def prompt(self) -> str:
        """All message texts joined, for matching in tests."""
        return "\n".join(m.content for m in self.messages)

    @property
    def schema_title(self) -> str | None:
        """The title of the requested output schema (the pydantic class name)."""
        return None if self.json_schema is None else self.json_schema.get("title")


ScriptedReply: TypeAlias = str | dict[str, Any] | BaseModel | RawResponse | BaseException
"""Text, a dict or pydantic object (sent as JSON text), a :class:`RawResponse` (to report
token usage as a provider would), or an exception to raise."""
FunctionReply: TypeAlias = ScriptedReply | Awaitable[ScriptedReply]


def _to_response(reply: ScriptedReply, model: str) -> RawResponse:
    if isinstance(reply, BaseException):
        raise reply
    if isinstance(reply, RawResponse):
        return reply
    if isinstance(reply, BaseModel):
        return RawResponse(text=reply.model_dump_json(), model=model)
    if isinstance(reply, dict):
        return RawResponse(text=json.dumps(reply), model=model)
    return RawResponse(text=reply, model=model)


class _TestModelBase:
    def __init__(self, name: str, context_window: int) -> None:
        self._name = name
        self._context_window = context_window
        self.calls: list[ModelCall] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_window(self) -> int:
        return self._context_window

    def _record(
        self,
        messages: Sequence[Message],
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> ModelCall:
        call = ModelCall(list(messages), json_schema, settings, call_purpose())
        self.calls.append(call)
        return call


class ScriptedModel(_TestModelBase):
    """Answers from a fixed script, in order.

    Args:
        replies: One entry per expected call.
        name: The model name reported in usage and results.
        context_window: What the model claims as its context window.
    """

    def __init__(
        self,
        replies: Sequence[ScriptedReply],
        *,
        name: str = "scripted",
        context_window: int = 32_768,
    ) -> None:
        super().__init__(name, context_window)
        self._replies = list(replies)
        self._next = 0

    @property
    def remaining(self) -> int:
        """Replies not yet asked for."""
        return len(self._replies) - self._next

    async def request(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> RawResponse:
        self._record(messages, json_schema, settings)
        if self._next >= len(self._replies):
            raise AssertionError(
                f"ScriptedModel {self.name!r} ran out of replies after {len(self._replies)} "
                f"call(s); last prompt ended with: {messages[-1].content[-300:]!r}"
            )
        reply = self._replies[self._next]
        self._next += 1
        return _to_response(reply, self.name)

    def assert_complete(self) -> None:
        """Fail if some scripted replies were never asked for."""
        if self.remaining:
            raise AssertionError(
                f"ScriptedModel {self.name!r}: {self.remaining} scripted reply(ies) unused "
                f"after {len(self.calls)} call(s)"
            )


class FunctionModel(_TestModelBase):
    """Answers computed by a function of the call (sync or async).

    The function receives a :class:`ModelCall` and returns text, a dict, a pydantic object,
    a :class:`RawResponse`, or raises. An async function can wait on events, which lets
    tests observe concurrency.
    """

    def __init__(
        self,
        function: Callable[[ModelCall], FunctionReply],
        *,
        name: str | None = None,
        context_window: int = 32_768,
    ) -> None:
        super().__init__(name or f"function:{getattr(function, '__name__', 'fn')}", context_window)
        self._function = function

    async def request(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> RawResponse:
        call = self._record(messages, json_schema, settings)
        reply = self._function(call)
        if inspect.isawaitable(reply):
            reply = await reply
        return _to_response(reply, self.name)
