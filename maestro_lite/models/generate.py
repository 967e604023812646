"""One model call as users think of it: validated output, retries, re-asks, accounting.

This module is the loop; the retry policy is in :mod:`~maestro_lite.models.retry`, output
parsing and the re-ask messages in :mod:`~maestro_lite.models.output`, the call's result
types and the protocol of whole-call wrappers in :mod:`~maestro_lite.models.calls`, the
usage meter in :mod:`maestro_lite.usage` (all still importable from here).

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
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel, ValidationError

from ..errors import (
    ModelAPIError,
    ModelTimeout,
    ModelUnreachable,
    StructuredOutputError,
)
from ..tokens import count_tokens
from ..usage import Usage, UsageMeter, estimate_cost, has_price
from .base import ChatModel, Message, ModelSettings, RawResponse
from .calls import Attempt, AttemptHandler, Call, Completion, acts_on_calls, for_purpose
from .gate import current_gate
from .output import (
    json_schema_for,
    parse_output,
    reask_cut_off,
    reask_invalid,
    schema_tokens,
    short_errors,
    with_schema,
)
from .retry import DEFAULT_RETRY, RetryPolicy

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
    purpose: str | None = None,
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
    purpose: str | None = None,
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
    purpose: str | None = None,
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
        purpose: What the call is for (``plan``, ``step:<id>``, ``judge``...), readable
            by the models it reaches as :func:`~maestro_lite.models.calls.call_purpose`.

    A model that acts on whole calls (:class:`~maestro_lite.models.calls.CallWrapper`) is
    handed the call: a :class:`~maestro_lite.models.CachedModel` answers a call it has seen
    from its cache before any attempt; a :class:`~maestro_lite.models.FallbackModel` gives
    each of its models all of the above and hands the call to the next one only when a model
    has failed for good.

    Raises:
        BudgetExceeded: The next attempt would break a limit of ``meter``.
        StructuredOutputError: The output never validated within ``max_reasks``.
        ModelAPIError: A permanent error, or a transient one that outlasted its retries.
    """
    with for_purpose(purpose):
        return await _generate(
            model, messages, output_type, settings, max_reasks, retry, meter, on_attempt
        )


async def _generate(
    model: ChatModel,
    messages: Sequence[Message],
    output_type: type[T] | None,
    settings: ModelSettings | None,
    max_reasks: int,
    retry: RetryPolicy | None,
    meter: UsageMeter | None,
    on_attempt: Callable[[Attempt], None] | None,
) -> Completion[T] | Completion[str]:
    settings = settings or ModelSettings()
    retry = retry or DEFAULT_RETRY
    meter = meter or UsageMeter()
    if acts_on_calls(model):
        return await model.complete(
            _call(messages, output_type, settings, max_reasks, retry, meter, on_attempt)
        )
    schema = json_schema_for(output_type) if output_type is not None else None
    convo = with_schema(messages, output_type) if output_type is not None else list(messages)

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
            parsed = parse_output(raw.text, output_type)
        except ValidationError as exc:
            errors = short_errors(exc)
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
                # Cut off: the re-ask has room for more output than the cut answer had.
                settings = _more_room(model, settings, _estimate(convo))
                convo = reask_cut_off(convo)
                continue
            convo = reask_invalid(convo, raw.text, errors)
            continue
        record(Attempt(model=raw.model, outcome=ok, usage=usage, seconds=elapsed, **answer))
        return Completion(
            output=parsed, text=raw.text, model=raw.model, usage=total, attempts=attempts
        )


def _call(
    messages: Sequence[Message],
    output_type: type[BaseModel] | None,
    settings: ModelSettings,
    max_reasks: int,
    retry: RetryPolicy,
    meter: UsageMeter,
    on_attempt: AttemptHandler | None,
) -> Call:
    """The whole call handed to a :class:`CallWrapper`: what it sends to an inner model goes
    through :func:`generate` again, with the same re-asks, retries and meter."""

    def send(inner: ChatModel, report: AttemptHandler | None) -> Awaitable[Completion[Any]]:
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

    def record(attempt: Attempt) -> None:
        meter.add(attempt.usage)
        if on_attempt is not None:
            on_attempt(attempt)

    return Call(messages, output_type, settings, send=send, record=record, report=on_attempt)
