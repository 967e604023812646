"""One model call as users think of it: validated output, retries, re-asks, accounting.

:func:`generate` is the only place that loops over attempts. For each attempt it checks the
usage limits first, then calls :meth:`ChatModel.request`, then records usage (failed attempts
and re-asks included). Transient errors are retried with exponential backoff and jitter,
honouring ``Retry-After``; output that does not validate against ``output_type`` is sent back
to the model with the validation errors (instructor-style re-ask), a bounded number of times.

We do not delegate this loop to ``instructor``: its retries happen inside one library call,
so a budget could not be checked before each re-ask, and llama.cpp enforces a schema only for
the ``json_object`` + ``schema`` form of ``response_format`` (see ``local.py``), which its
JSON-schema mode does not send.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..cache import CachedAnswer
from ..errors import (
    BudgetExceeded,
    ModelAPIError,
    ModelTimeout,
    ModelUnreachable,
    StructuredOutputError,
)
from ..tokens import count_tokens
from ..usage import Usage, UsageLimits, estimate_cost, has_price
from .base import ChatModel, Message, ModelSettings, RawResponse
from .cached import CachedModel
from .fallback import FallbackModel
from .gate import current_gate

__all__ = [
    "Attempt",
    "Completion",
    "RetryPolicy",
    "UsageMeter",
    "generate",
    "json_schema_for",
    "schema_tokens",
]

T = TypeVar("T", bound=BaseModel)
OutputT = TypeVar("OutputT")


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter for transient errors (429, 5xx, timeouts, drops)."""

    model_config = ConfigDict(frozen=True)

    max_retries: int = Field(default=3, ge=0)
    """Retries after the first attempt; 0 disables retrying."""
    initial_delay: float = Field(default=0.5, ge=0)
    multiplier: float = Field(default=2.0, ge=1)
    max_delay: float = Field(default=30.0, ge=0)
    jitter: float = Field(default=0.25, ge=0, le=1)
    """Fraction of the delay added or removed at random, so clients do not retry in step."""
    max_retry_after: float = Field(default=300.0, ge=0)
    """The longest ``Retry-After`` waited for in full. A server asking for longer (a quota
    spent for the day) is not retried: the call fails at once with the wait in the error,
    rather than hammering the server early or sleeping for hours."""

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based): the backoff, or the
        server's ``Retry-After`` when that is longer (up to ``max_retry_after``)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (retry_number - 1))
        base *= 1 + random.uniform(-self.jitter, self.jitter)
        if retry_after is not None:
            # The server knows best when it will have capacity again.
            base = max(base, min(retry_after, self.max_retry_after))
        return max(0.0, base)

    def waits_for(self, retry_after: float | None) -> bool:
        """Whether a server's ``Retry-After`` is short enough to wait for."""
        return retry_after is None or retry_after <= self.max_retry_after


class UsageMeter:
    """Shared, mutable usage of a run, with the limits enforced before each call.

    Several concurrent calls may share one meter: a call reserves its request, its estimated
    input tokens plus the most output it may generate, and their cost at the model's price
    before it starts, so parallel calls cannot jointly overshoot a limit.
    """

    def __init__(self, limits: UsageLimits | None = None) -> None:
        self.limits = limits or UsageLimits()
        self.usage = Usage()
        self._reserved_requests = 0
        self._reserved_tokens = 0
        self._reserved_cost = 0.0

    def reserve(self, input_tokens: int, *, output_tokens: int = 0, cost_usd: float = 0.0) -> None:
        """Check the limits for one more call and hold its share until :meth:`release`.

        Raises:
            BudgetExceeded: The call could break a limit, counting what calls in flight hold.
        """
        pending = self.usage
        if self._reserved_requests:
            pending = pending + Usage(
                requests=self._reserved_requests,
                input_tokens=self._reserved_tokens,
                cost_usd=self._reserved_cost,
            )
        self.limits.check_before_request(
            pending,
            next_input_tokens=input_tokens,
            next_output_tokens=output_tokens,
            next_cost_usd=cost_usd,
        )
        self._reserved_requests += 1
        self._reserved_tokens += input_tokens + output_tokens
        self._reserved_cost += cost_usd

    def release(self, input_tokens: int, *, output_tokens: int = 0, cost_usd: float = 0.0) -> None:
        """Give back what :meth:`reserve` held (the call's real usage goes to :meth:`add`)."""
        self._reserved_requests -= 1
        self._reserved_tokens -= input_tokens + output_tokens
        self._reserved_cost = 0.0 if not self._reserved_requests else self._reserved_cost - cost_usd

    def add(self, usage: Usage) -> None:
        self.usage = self.usage + usage


class Attempt(BaseModel):
    """One call on the wire made by :func:`generate`."""

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
    """The result of :func:`generate`."""

    output: OutputT
    """The validated ``output_type`` instance, or the text when no type was asked for."""
    text: str
    """The raw text of the answer that was accepted."""
    model: str
    """Which model answered."""
    usage: Usage
    """Everything this call consumed, failed attempts and re-asks included."""
    attempts: list[Attempt] = field(default_factory=list)


@lru_cache(maxsize=1024)
def json_schema_for(output_type: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema sent to the model for ``output_type`` (computed once per type; treat
    the returned dict as read-only)."""
    return output_type.model_json_schema()


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _candidates(text: str) -> list[str]:
    """Texts that may hold the JSON object: as is, inside a code fence, or between braces."""
    out = [text.strip()]
    fence = _FENCE.search(text)
    if fence:
        out.append(fence.group(1).strip())
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        out.append(text[start : end + 1])
    return out


def _parse(text: str, output_type: type[T]) -> T:
    try:
        return output_type.model_validate_json(text)
    except ValidationError as exc:
        first_error = exc
    # Lenient fallbacks for backends that cannot enforce a schema: fences, prose around JSON.
    for candidate in _candidates(text)[1:]:
        try:
            return output_type.model_validate_json(candidate)
        except ValidationError:
            pass
    raise first_error


@lru_cache(maxsize=1024)
def _schema_instruction(output_type: type[BaseModel]) -> str:
    return (
        "Reply with one JSON object and nothing else. It must conform to this JSON schema "
        "(field descriptions say what to put in each field):\n"
        + json.dumps(json_schema_for(output_type), separators=(",", ":"))
    )


@lru_cache(maxsize=1024)
def schema_tokens(output_type: type[BaseModel]) -> int:
    """Prompt tokens the schema instructions of ``output_type`` add to a call (they go into
    the system message): what a prompt must leave room for besides its own text."""
    return count_tokens(_schema_instruction(output_type)) + 2  # the "\n\n" joining them


@lru_cache(maxsize=1024)
def _system_with_schema(system: str | None, output_type: type[BaseModel]) -> Message:
    # Steps share a few system prompts and schemas: the joined message is built once.
    instruction = _schema_instruction(output_type)
    return Message.system(instruction if system is None else system + "\n\n" + instruction)


def _with_schema(messages: Sequence[Message], output_type: type[BaseModel]) -> list[Message]:
    out = list(messages)
    if out and out[0].role == "system":
        out[0] = _system_with_schema(out[0].content, output_type)
    else:
        out.insert(0, _system_with_schema(None, output_type))
    return out


_DEFAULT_RETRY = RetryPolicy()
"""Shared (it is frozen): built once, not per call."""

OUTPUT_RESERVE = 1024
"""Output tokens a call that sets no ``max_tokens`` (planning, judging) reserves against the
budget: about the longest structured answer those calls give. Its real count replaces the
reservation once it has answered."""


def _most_output(model: ChatModel, settings: ModelSettings, input_tokens: int) -> int:
    """The most output tokens a call may generate, for its reservation."""
    room = max(0, model.context_window - input_tokens)
    return min(settings.max_tokens, room) if settings.max_tokens else min(OUTPUT_RESERVE, room)


def _more_room(model: ChatModel, settings: ModelSettings, prompt_tokens: int) -> ModelSettings:
    """``settings`` with twice the output tokens, as far as the model's window allows: for
    the re-ask of an answer cut off at ``max_tokens``."""
    if not settings.max_tokens:
        return settings
    room = model.context_window - prompt_tokens - 64  # the re-ask's own note
    wider = min(2 * settings.max_tokens, room)
    return (
        settings.model_copy(update={"max_tokens": wider})
        if wider > settings.max_tokens
        else settings
    )


def _estimate(messages: Sequence[Message]) -> int:
    """Input tokens of ``messages`` counted with tiktoken (4 per message for the framing)."""
    return sum(count_tokens(m.content) + 4 for m in messages)


def _usage_of(
    model: ChatModel,
    messages: Sequence[Message],
    raw: RawResponse,
    estimate: int | None,
    *,
    seconds: float,
    reask: bool,
) -> Usage:
    input_tokens = raw.input_tokens
    if input_tokens is None:
        input_tokens = estimate if estimate is not None else _estimate(messages)
    output_tokens = raw.output_tokens
    if output_tokens is None:
        output_tokens = count_tokens(raw.text)
    return Usage(
        requests=1,
        reasks=1 if reask else 0,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=estimate_cost(model.name, input_tokens, output_tokens),
        model_seconds=seconds,
    )


def _failed(
    model: ChatModel,
    messages: Sequence[Message],
    estimate: int | None,
    started: float,
    error: str,
    processed: bool,
    reask: bool,
    *,
    sent: bool = True,
) -> Attempt:
    """The record of an attempt that got no answer. ``processed``: the model had the prompt
    (timed out or cut off), so its estimated input tokens count; an HTTP error did not.
    ``sent=False``: the request never reached the provider (refused, no such host), so it
    is counted as unreached, not as a request: an outage does not spend the budget."""
    elapsed = time.perf_counter() - started
    input_tokens = 0
    if processed:
        input_tokens = estimate if estimate is not None else _estimate(messages)
    if not sent:
        usage = Usage(unreached_requests=1, model_seconds=elapsed)
        return Attempt(model=model.name, outcome="error", error=error, usage=usage, seconds=elapsed)
    usage = Usage(
        requests=1,
        failed_requests=1,
        reasks=1 if reask else 0,
        input_tokens=input_tokens,
        cost_usd=estimate_cost(model.name, input_tokens, 0),
        model_seconds=elapsed,
    )
    return Attempt(model=model.name, outcome="error", error=error, usage=usage, seconds=elapsed)


def _short(error: ValidationError, limit: int = 1500) -> str:
    lines = []
    for err in error.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"- {loc}: {err['msg']}")
    text = "\n".join(lines)
    return text if len(text) <= limit else text[:limit] + "\n- ..."


@overload
async def generate(
    model: ChatModel,
    messages: Sequence[Message],
    *,
    output_type: type[T],
    settings: ModelSettings | None = None,
    max_reasks: int = 2,
    retry: RetryPolicy | None = None,
    meter: UsageMeter | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> Completion[T]: ...


@overload
async def generate(
    model: ChatModel,
    messages: Sequence[Message],
    *,
    output_type: None = None,
    settings: ModelSettings | None = None,
    max_reasks: int = 2,
    retry: RetryPolicy | None = None,
    meter: UsageMeter | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> Completion[str]: ...


async def generate(
    model: ChatModel,
    messages: Sequence[Message],
    *,
    output_type: type[T] | None = None,
    settings: ModelSettings | None = None,
    max_reasks: int = 2,
    retry: RetryPolicy | None = None,
    meter: UsageMeter | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> Completion[T] | Completion[str]:
    """Call ``model`` and return its answer, validated against ``output_type`` if given.

    Args:
        model: The backend to call.
        messages: The conversation so far.
        output_type: A pydantic model the answer must validate against; ``None`` for text.
        settings: Sampling and timeout for each attempt.
        max_reasks: How many times invalid output is sent back with its validation errors.
        retry: Backoff for transient errors; ``RetryPolicy()`` by default.
        meter: Shared usage and limits. Limits are checked before every attempt, and every
            attempt's usage is added, whether it succeeds or not; an attempt that never
            reached the provider (:class:`~maestro_lite.errors.ModelUnreachable`) is added as
            ``unreached_requests`` and spends no request budget.
        on_attempt: Called after every attempt (for logs and run records).

    A :class:`~maestro_lite.models.CachedModel` answers a call it has seen from its cache
    before any attempt; a :class:`~maestro_lite.models.FallbackModel` gives each of its
    models all of the above and hands the call to the next one only when a model has failed
    for good.

    Raises:
        BudgetExceeded: The next attempt would break a limit of ``meter``.
        StructuredOutputError: The output never validated within ``max_reasks``.
        ModelAPIError: A permanent error, or a transient one that outlasted its retries.
    """
    settings = settings or ModelSettings()
    retry = retry or _DEFAULT_RETRY
    meter = meter or UsageMeter()
    if isinstance(model, CachedModel | FallbackModel):
        return await _wrapped(
            model,
            messages,
            output_type=output_type,
            settings=settings,
            max_reasks=max_reasks,
            retry=retry,
            meter=meter,
            on_attempt=on_attempt,
        )
    schema = json_schema_for(output_type) if output_type is not None else None
    convo = _with_schema(messages, output_type) if output_type is not None else list(messages)

    total = Usage()
    attempts: list[Attempt] = []
    reasks = 0
    retries = 0

    def record(attempt: Attempt) -> None:
        nonlocal total
        total = total + attempt.usage if attempts else attempt.usage
        meter.add(attempt.usage)
        attempts.append(attempt)
        if on_attempt is not None:
            on_attempt(attempt)

    # Tokenising a prompt costs tens of microseconds: only do it before the call when a token
    # or cost limit needs the estimate; providers usually report the real count afterwards.
    limits = meter.limits
    priced = limits.max_cost_usd is not None and has_price(model.name)
    needs_estimate = limits.max_tokens is not None or priced
    gate = current_gate()
    while True:
        if gate is not None:  # a graceful stop holds a new attempt back, before it counts
            await gate.admit()
        estimate = _estimate(convo) if needs_estimate else None
        reserved = estimate or 0
        # The most this call may add: its prompt, and the most output it may generate.
        most_out = _most_output(model, settings, reserved) if needs_estimate else 0
        cost = estimate_cost(model.name, reserved, most_out) if priced else 0.0
        meter.reserve(reserved, output_tokens=most_out, cost_usd=cost)
        started = time.perf_counter()
        try:
            try:
                with gate.call() if gate is not None else nullcontext():
                    if settings.timeout is not None:
                        async with asyncio.timeout(settings.timeout):
                            raw = await model.request(convo, json_schema=schema, settings=settings)
                    else:
                        raw = await model.request(convo, json_schema=schema, settings=settings)
            except TimeoutError:
                raise ModelTimeout(
                    f"{model.name} did not answer within {settings.timeout}s",
                    model=model.name,
                    hint="Raise the timeout or use a faster model.",
                ) from None
        except ModelAPIError as exc:
            # A timed-out request reached the model, which read the prompt: count it.
            processed = isinstance(exc, ModelTimeout)
            sent = not isinstance(exc, ModelUnreachable)
            record(
                _failed(model, convo, estimate, started, str(exc), processed, reasks > 0, sent=sent)
            )
            if not exc.is_retryable or retries >= retry.max_retries:
                raise
            if not retry.waits_for(exc.retry_after):
                raise ModelAPIError(
                    f"{exc} (the server asks to retry after {exc.retry_after:.0f}s, more than "
                    f"the {retry.max_retry_after:.0f}s the retry policy waits)",
                    model=exc.model,
                    status_code=exc.status_code,
                    retry_after=exc.retry_after,
                    hint="Wait and resume the run, raise RetryPolicy.max_retry_after, or "
                    "configure a fallback model.",
                ) from exc
            retries += 1
            await asyncio.sleep(retry.delay(retries, exc.retry_after))
            continue
        except BaseException as exc:
            # Cut off while the model worked on it (a step timeout, a run being stopped), or
            # a backend that broke: the call was made, so it counts in usage, budget and trace.
            cut = isinstance(exc, asyncio.CancelledError)
            error = "cancelled before the model answered" if cut else f"{type(exc).__name__}: {exc}"
            record(_failed(model, convo, estimate, started, error, True, reasks > 0))
            raise
        finally:
            meter.release(reserved, output_tokens=most_out, cost_usd=cost)

        elapsed = time.perf_counter() - started
        # Every attempt after the first invalid answer counts as a re-ask.
        usage = _usage_of(model, convo, raw, estimate, seconds=elapsed, reask=reasks > 0)
        ok: Literal["ok", "cached"] = "ok"
        answer: dict[str, Any] = {"waited": raw.waited}
        if raw.cached:  # a cache (or a run's record) below us answered: no call was made
            usage, ok = Usage(cached_requests=1, model_seconds=elapsed), "cached"
        elif raw.key is not None:  # a run records its answers (see runs.ReplayModel)
            answer |= {"key": raw.key, "response": raw.text}
        if output_type is None:
            record(Attempt(model=raw.model, outcome=ok, usage=usage, seconds=elapsed, **answer))
            return Completion(
                output=raw.text, text=raw.text, model=raw.model, usage=total, attempts=attempts
            )
        try:
            parsed = _parse(raw.text, output_type)
        except ValidationError as exc:
            errors = _short(exc)
            record(
                Attempt(
                    model=raw.model,
                    outcome="invalid",
                    error=errors,
                    output=raw.text[:2000],
                    usage=usage,
                    seconds=elapsed,
                    **answer,
                )
            )
            if reasks >= max_reasks:
                raise StructuredOutputError(
                    f"{model.name} gave no valid {output_type.__name__} after "
                    f"{reasks + 1} answer(s): {errors.splitlines()[0] if errors else ''}",
                    model=model.name,
                    schema_name=output_type.__name__,
                    attempts=reasks + 1,
                    last_output=raw.text[:2000],
                    errors=errors,
                    hint="Use a stronger model, simplify the output type, or raise max_reasks.",
                ) from None
            reasks += 1
            if raw.finish_reason == "length":
                # Cut off mid-JSON: the errors are about truncation, not content. Shown its
                # own cut-off text, a small model writes it again word for word (seen with the
                # local 1.5B model: three identical replies). So the re-ask leaves that text
                # out, asks for brevity, and has room for more output than the cut one had.
                settings = _more_room(model, settings, _estimate(convo))
                convo = [
                    *convo,
                    Message.user(
                        "Your previous reply was cut off because it was too long. Reply with "
                        "a much shorter JSON object: brief strings, fewer items."
                    ),
                ]
                continue
            correction = (
                "That reply does not match the required JSON schema:\n"
                f"{errors}\nReply again with only the corrected JSON object."
            )
            convo = [*convo, Message.assistant(raw.text), Message.user(correction)]
            continue
        record(Attempt(model=raw.model, outcome=ok, usage=usage, seconds=elapsed, **answer))
        return Completion(
            output=parsed, text=raw.text, model=raw.model, usage=total, attempts=attempts
        )


async def _wrapped(
    model: CachedModel | FallbackModel,
    messages: Sequence[Message],
    *,
    output_type: type[T] | None,
    settings: ModelSettings,
    max_reasks: int,
    retry: RetryPolicy,
    meter: UsageMeter,
    on_attempt: Callable[[Attempt], None] | None,
) -> Completion[Any]:
    """:func:`generate` through the wrappers that act on whole calls rather than requests."""

    def call(inner: ChatModel, report: Callable[[Attempt], None] | None) -> Any:
        return generate(
            inner,
            messages,
            output_type=output_type,
            settings=settings,
            max_reasks=max_reasks,
            retry=retry,
            meter=meter,
            on_attempt=report,
        )

    if isinstance(model, CachedModel):
        schema = json_schema_for(output_type) if output_type is not None else None
        key = model.key(messages, schema, settings)
        hit = model.cache.get(key) if key is not None else None
        if hit is not None:
            try:
                output: Any = _parse(hit.text, output_type) if output_type else hit.text
            except ValidationError:
                pass  # written for another version of the type: ask the model again
            else:
                attempt = Attempt(
                    model=hit.model, outcome="cached", usage=Usage(cached_requests=1), seconds=0
                )
                meter.add(attempt.usage)
                if on_attempt is not None:
                    on_attempt(attempt)
                return Completion(output, hit.text, hit.model, attempt.usage, [attempt])
        completion: Completion[Any] = await call(model.inner, on_attempt)
        if key is not None:
            model.cache.put(key, CachedAnswer(completion.text, completion.model))
        return completion

    # A fallback chain: each model gets its own retries and re-asks; all attempts count.
    attempts: list[Attempt] = []

    def collect(attempt: Attempt) -> None:
        attempts.append(attempt)
        if on_attempt is not None:
            on_attempt(attempt)

    last = len(model.models) - 1
    for index, inner in enumerate(model.models):
        try:
            completion = await call(inner, collect)
        except BudgetExceeded:
            raise
        except Exception as exc:
            if index == last or not model.should_fall_back(exc):
                raise
            continue
        completion.attempts = attempts
        completion.usage = sum((a.usage for a in attempts), Usage())
        return completion
    raise AssertionError("unreachable: the last model returns or raises")
