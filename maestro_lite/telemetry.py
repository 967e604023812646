"""OpenTelemetry traces of runs, from the typed event stream (the ``otel`` extra).

:class:`RunTracer` is an event handler (``Maestro(on_event=RunTracer(tracer))``): it turns
each run's events into spans, so the core never imports OpenTelemetry. Spans follow the
GenAI semantic conventions where one applies:

- ``invoke_agent maestro-lite``: the run (one per session: a resume starts another);
- ``round N``: a round of plan, execute, validate, with its decision and why;
- ``step ID``: one step, with ``retrieval`` (its search) and ``chat MODEL`` (each call
  on the wire, retries, re-asks and fallbacks included: ``gen_ai.operation.name=chat``,
  ``gen_ai.request.model``, ``gen_ai.usage.input_tokens``/``output_tokens``,
  ``error.type`` when it failed) beneath it;
- ``validate`` with one ``check ID`` per requirement (score, passed, reason).

Model calls are timed by the events (each ends at its event, lasting its ``seconds``), so
spans carry real start and end times, also when they are made after the fact.

:meth:`RunTracer.from_env` exports over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (the exporter reads the standard variables:
headers, timeout, ...), and returns ``None`` otherwise: tracing is off unless asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import UserError
from .events import (
    Event,
    ModelAttempted,
    PlanCreated,
    RoundFinished,
    RunFinished,
    RunInterrupted,
    RunResumed,
    RunStarted,
    StepFailed,
    StepFinished,
    StepSkipped,
    StepStarted,
    ValidationFinished,
)

# Type-only: opentelemetry is an optional extra, imported when tracing starts.
if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ["ENDPOINT_VARIABLES", "RunTracer"]

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
AGENT = "maestro-lite"
_TEXT_LIMIT = 500
"""Longest text put in an attribute (a task, a reason): traces are not a document store."""


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)


def _text(value: str) -> str:
    return value if len(value) <= _TEXT_LIMIT else value[: _TEXT_LIMIT - 1] + "…"


def _provider(model: str) -> str | None:
    """``openai`` of ``openai:gpt-4o-mini``; ``None`` when the name has no provider."""
    head, sep, _ = model.partition(":")
    return head if sep else None


@dataclass
class _RunSpans:
    run: Span
    rounds: dict[int, Span] = field(default_factory=dict)
    steps: dict[str, Span] = field(default_factory=dict)
    """Open step spans, by step id (a step runs once at a time)."""
    step_start: dict[str, datetime] = field(default_factory=dict)
    first_call: dict[str, datetime] = field(default_factory=dict)
    """When each open step's first model call started (its retrieval ended)."""
    last_at: dict[int, datetime] = field(default_factory=dict)
    """The latest event of each round (a validation starts after it)."""


class RunTracer:
    """An event handler that records runs as OpenTelemetry spans.

    Args:
        tracer: Where spans go (``provider.get_tracer("maestro_lite")``).
        provider: The SDK provider to flush and shut down with :meth:`shutdown` (set by
            :meth:`from_env`; ``None`` when the caller owns the provider).
    """

    def __init__(self, tracer: Tracer, *, provider: TracerProvider | None = None) -> None:
        self.tracer = tracer
        self.provider = provider
        self._runs: dict[str, _RunSpans] = {}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RunTracer | None:
        """A tracer exporting over OTLP/HTTP, when an OTLP endpoint variable is set.

        Raises:
            UserError: An endpoint is set but the ``otel`` extra is not installed.
        """
        env = os.environ if environ is None else environ
        if not any(env.get(name) for name in ENDPOINT_VARIABLES):
            return None
        if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return None
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise UserError(
                f"OTLP tracing is configured ({', '.join(ENDPOINT_VARIABLES)}) but "
                f"{exc.name} is not installed",
                hint="pip install 'maestro-lite[otel]', or unset the variable.",
            ) from None
        service = env.get("OTEL_SERVICE_NAME") or AGENT
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider.get_tracer("maestro_lite"), provider=provider)

    def shutdown(self) -> None:
        """Send what is buffered and stop (only for a provider made by :meth:`from_env`)."""
        if self.provider is not None:
            self.provider.shutdown()

    # -- the handler ----------------------------------------------------------------------

    def __call__(self, event: Event | Any) -> None:
        run = self._runs.get(getattr(event, "run_id", ""))
        match event:
            case RunStarted() | RunResumed():
                self._start_run(event)
            case _ if run is None:
                return  # not a run event, or a run that began before this tracer
            case PlanCreated():
                span = self._round(run, event.round, event.at)
                span.add_event(
                    "plan",
                    {
                        "maestro.plan.source": event.source,
                        "maestro.plan.steps": len(event.plan.steps),
                    },
                    timestamp=_ns(event.at),
                )
            case StepStarted():
                self._start_step(run, event)
            case ModelAttempted():
                self._call(run, event)
            case StepFinished() | StepFailed() | StepSkipped():
                self._end_step(run, event)
            case ValidationFinished():
                self._validation(run, event)
            case RoundFinished():
                if event.round in run.rounds:
                    span = run.rounds.pop(event.round)
                    span.set_attribute("maestro.decision", event.decision.action)
                    span.set_attribute("maestro.decision.reason", _text(event.decision.reason))
                    span.end(end_time=_ns(event.at))
            case RunFinished() | RunInterrupted():
                self._end_run(event)

    def _start_run(self, event: RunStarted | RunResumed) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": AGENT,
            "gen_ai.conversation.id": event.run_id,
            "maestro.run.id": event.run_id,
        }
        if isinstance(event, RunStarted):
            attributes["maestro.task"] = _text(event.task)
            if event.corpus:
                attributes["maestro.corpus"] = event.corpus
        else:
            attributes["maestro.resumed_at_round"] = event.round
        span = self.tracer.start_span(
            f"invoke_agent {AGENT}", start_time=_ns(event.at), attributes=attributes
        )
        self._runs[event.run_id] = _RunSpans(span)

    def _context(self, span: Span) -> Any:
        from opentelemetry import trace

        return trace.set_span_in_context(span)

    def _round(self, run: _RunSpans, number: int, at: datetime) -> Span:
        span = run.rounds.get(number)
        if span is None:
            span = self.tracer.start_span(
                f"round {number}",
                context=self._context(run.run),
                start_time=_ns(at),
                attributes={"maestro.round": number},
            )
            run.rounds[number] = span
        run.last_at[number] = at
        return span

    def _start_step(self, run: _RunSpans, event: StepStarted) -> None:
        parent = self._round(run, event.round, event.at)
        run.steps[event.step_id] = self.tracer.start_span(
            f"step {event.step_id}",
            context=self._context(parent),
            start_time=_ns(event.at),
            attributes={"maestro.step.id": event.step_id, "maestro.round": event.round},
        )
        run.step_start[event.step_id] = event.at

    def _call(self, run: _RunSpans, event: ModelAttempted) -> None:
        from opentelemetry.trace import Status, StatusCode

        start = event.at - timedelta(seconds=event.seconds)
        step_id = event.purpose.removeprefix("step:") if event.purpose.startswith("step:") else ""
        parent = run.steps.get(step_id)
        if parent is not None:
            run.first_call.setdefault(step_id, start)
        elif run.rounds:
            parent = run.rounds[max(run.rounds)]
        else:
            parent = run.run
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": event.model,
            "gen_ai.response.model": event.model,
            "gen_ai.usage.input_tokens": event.usage.input_tokens,
            "gen_ai.usage.output_tokens": event.usage.output_tokens,
            "maestro.purpose": event.purpose,
            "maestro.outcome": event.outcome,
            "maestro.limiter.wait_seconds": event.waited,
        }
        provider = _provider(event.model)
        if provider:
            attributes["gen_ai.provider.name"] = provider
        span = self.tracer.start_span(
            f"chat {event.model}",
            context=self._context(parent),
            start_time=_ns(start),
            attributes=attributes,
        )
        if event.outcome == "error":
            span.set_attribute("error.type", (event.error or "error").split(":", 1)[0])
            span.set_status(Status(StatusCode.ERROR, _text(event.error or "")))
        span.end(end_time=_ns(event.at))

    def _end_step(self, run: _RunSpans, event: StepFinished | StepFailed | StepSkipped) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = run.steps.pop(event.step_id, None)
        begun = run.step_start.pop(event.step_id, None)
        first_call = run.first_call.pop(event.step_id, None)
        run.last_at[event.round] = event.at
        if span is None or begun is None:
            return
        result = event.result
        if result is not None and result.retrieved:
            retrieval = self.tracer.start_span(
                "retrieval",
                context=self._context(span),
                start_time=_ns(begun),
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "retrieval",
                    "maestro.retrieval.hits": len(result.retrieved),
                    "maestro.retrieval.documents": sorted(
                        {h.chunk.document_id for h in result.retrieved}
                    ),
                },
            )
            retrieval.end(end_time=_ns(min(first_call or event.at, event.at)))
        if result is not None:
            span.set_attribute("maestro.step.kind", result.kind)
            span.set_attribute("maestro.step.status", result.status)
            span.set_attribute("maestro.step.citations", len(result.citations))
            span.set_attribute("gen_ai.usage.input_tokens", result.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", result.usage.output_tokens)
        if isinstance(event, StepFailed):
            span.set_status(Status(StatusCode.ERROR, _text(event.error)))
        span.end(end_time=_ns(event.at))

    def _validation(self, run: _RunSpans, event: ValidationFinished) -> None:
        from opentelemetry.trace import Status, StatusCode

        parent = self._round(run, event.round, event.at)
        begun = run.last_at.get(event.round, event.at)
        validate = self.tracer.start_span(
            "validate",
            context=self._context(parent),
            start_time=_ns(begun),
            attributes={"maestro.round": event.round, "maestro.passed": event.passed},
        )
        for result in event.results:
            attributes: dict[str, Any] = {
                "maestro.check.id": result.id,
                "maestro.check.kind": result.kind,
                "maestro.check.score": result.score,
                "maestro.check.passed": result.passed,
                "maestro.check.reason": _text(result.reason),
            }
            if result.step_id:
                attributes["maestro.step.id"] = result.step_id
            check = self.tracer.start_span(
                f"check {result.id}",
                context=self._context(validate),
                start_time=_ns(begun),
                attributes=attributes,
            )
            if not result.passed:
                check.set_status(Status(StatusCode.ERROR, _text(result.reason)))
            check.end(end_time=_ns(event.at))
        validate.end(end_time=_ns(event.at))

    def _end_run(self, event: RunFinished | RunInterrupted) -> None:
        from opentelemetry.trace import Status, StatusCode

        run = self._runs.pop(event.run_id)
        end = _ns(event.at)
        for span in [*run.steps.values(), *run.rounds.values()]:
            span.end(end_time=end)
        status = event.status if isinstance(event, RunFinished) else "interrupted"
        run.run.set_attribute("maestro.status", status)
        run.run.set_attribute("gen_ai.usage.input_tokens", event.usage.input_tokens)
        run.run.set_attribute("gen_ai.usage.output_tokens", event.usage.output_tokens)
        run.run.set_attribute("maestro.requests", event.usage.requests)
        if status in ("failed", "interrupted"):
            run.run.set_status(Status(StatusCode.ERROR, _text(event.error or status)))
        run.run.end(end_time=end)
