"""A whole model call: its attempts, its result, and the protocol of the wrappers that act
on whole calls rather than on single requests.

A request (:meth:`~maestro_lite.models.ChatModel.request`) is one message exchange; a
*call* is what :func:`~maestro_lite.models.generate` makes of it: attempts, retries,
re-asks, until an answer validates. Most wrappers act on requests (a rate limiter, the
replay of a run's recorded answers). A few act on whole calls: the response cache answers a
call it has seen before any attempt, and a fallback chain gives each model the whole call
before the next. Those implement :class:`CallWrapper`, and ``generate`` hands them the call
(:class:`Call`) instead of making attempts itself; :mod:`maestro_lite.model_stack` decides
the order of all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeGuard, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ..usage import Usage
from .base import ChatModel, Message, ModelSettings
from .output import json_schema_for, parse_output

__all__ = [
    "Attempt",
    "Call",
    "CallWrapper",
    "Completion",
    "acts_on_calls",
    "call_purpose",
    "for_purpose",
]

_PURPOSE: ContextVar[str | None] = ContextVar("maestro_call_purpose", default=None)


def call_purpose() -> str | None:
    """What the model call in progress is for, as its attempts are recorded: ``plan``,
    ``step:<id>``, ``judge`` or ``judge:<id>`` (``None`` outside a run's calls). The
    test models (:mod:`maestro_lite.testing`) hand it to their functions as
    ``ModelCall.purpose``, so a fake can answer by purpose rather than by prompt text."""
    return _PURPOSE.get()


@contextmanager
def for_purpose(purpose: str | None) -> Iterator[None]:
    """Mark the model calls made in the block (and the tasks it creates) as ``purpose``;
    ``None`` keeps the purpose already set."""
    if purpose is None:
        yield
        return
    token = _PURPOSE.set(purpose)
    try:
        yield
    finally:
        _PURPOSE.reset(token)


OutputT = TypeVar("OutputT")


class Attempt(BaseModel):
    """One call on the wire made by :func:`~maestro_lite.models.generate`."""

    model_config = ConfigDict(frozen=True)

    model: str
    outcome: Literal["ok", "invalid", "error", "cached"]
    """``ok``: usable answer; ``invalid``: answer failed validation (re-asked);
    ``error``: the call itself failed; ``cached``: answered without a call, by the response
    cache or, on resume, from the run's own record of the identical call."""
    error: str | None = None
    output: str | None = None
    """The raw text of an ``invalid`` answer (truncated), kept for audit and debugging."""
    usage: Usage
    seconds: float
    waited: float = 0.0
    """Of ``seconds``, the time the call waited for its provider's limits (see
    :class:`~maestro_lite.limits.Limiter`) before it was sent."""
    key: str | None = Field(default=None, exclude=True)
    """The call's response-cache key (model, messages, schema, settings), for an answer
    the model gave (``ok`` or ``invalid``)."""
    response: str | None = Field(default=None, exclude=True, repr=False)
    """That answer's full raw text. With ``key``, what a run records so that a resumed run
    answers the identical call again without paying for it (not kept in step results,
    which hold the parsed answer)."""


@dataclass
class Completion(Generic[OutputT]):
    """The result of a whole call (:func:`~maestro_lite.models.generate`)."""

    output: OutputT
    """The validated ``output_type`` instance, or the text when no type was asked for."""
    text: str
    """The raw text of the answer that was accepted."""
    model: str
    """Which model answered."""
    usage: Usage
    """Everything this call consumed, failed attempts and re-asks included."""
    attempts: list[Attempt] = field(default_factory=list)


AttemptHandler = Callable[[Attempt], None]


@dataclass(frozen=True)
class Call:
    """One whole call, as a :class:`CallWrapper` gets it.

    Attributes:
        messages: The conversation, before any schema instructions.
        output_type: The type the answer must validate as; ``None`` for text.
        settings: Sampling and timeout of each attempt.
        send: Makes the whole call with another model (attempts, retries, re-asks, usage
            counted), reporting each attempt to the handler given (``None``: the caller's).
        record: Counts an attempt made without a request (a cached answer) in the call's
            usage and reports it.
        report: The caller's attempt handler, if any.
    """

    messages: Sequence[Message]
    output_type: type[BaseModel] | None
    settings: ModelSettings
    send: Callable[[ChatModel, AttemptHandler | None], Awaitable[Completion[Any]]]
    record: AttemptHandler
    report: AttemptHandler | None = None

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The schema sent with the call, if it asks for a type."""
        return json_schema_for(self.output_type) if self.output_type is not None else None

    def parse(self, text: str) -> Any:
        """``text`` as the call's output.

        Raises:
            pydantic.ValidationError: It does not validate as ``output_type``.
        """
        return parse_output(text, self.output_type) if self.output_type is not None else text


@runtime_checkable
class CallWrapper(Protocol):
    """A model that acts on whole calls (the response cache, a fallback chain).

    :func:`~maestro_lite.models.generate` hands such a model the whole :class:`Call`
    instead of sending it requests; it answers by itself or through ``call.send(inner)``.
    """

    async def complete(self, call: Call) -> Completion[Any]:
        """Answer ``call``."""
        ...

    def map(self, wrap: Callable[[ChatModel], ChatModel]) -> ChatModel:
        """The same wrapper around ``wrap`` applied to each model it wraps."""
        ...


_WHOLE_CALL: dict[type, bool] = {}


def acts_on_calls(model: ChatModel) -> TypeGuard[CallWrapper]:
    """Whether ``model`` is a :class:`CallWrapper`, decided once per class: a runtime
    protocol check costs microseconds, and ``generate`` asks on every call."""
    kind = type(model)
    known = _WHOLE_CALL.get(kind)
    if known is None:
        known = _WHOLE_CALL[kind] = isinstance(model, CallWrapper)
    return known
