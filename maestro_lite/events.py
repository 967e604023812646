"""The typed event stream of a run.

Events are frozen pydantic models with a ``kind`` discriminator, in one :data:`Event` union
serialised by one :data:`EVENT_ADAPTER`. Subscribe with ``Maestro(..., on_event=callback)`` or
iterate ``Maestro.stream(...)``; the run store records them; the CLI renders them live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .budget import Budget
from .models.calls import Attempt
from .plan import Plan
from .requirements import RequirementResult
from .result import Decision, StepResult
from .usage import Usage

__all__ = [
    "EVENT_ADAPTER",
    "BudgetExhausted",
    "Event",
    "FixStarted",
    "ModelAttempted",
    "PlanCreated",
    "PlanRejected",
    "Replanned",
    "RoundFinished",
    "RunFinished",
    "RunInterrupted",
    "RunResumed",
    "RunStarted",
    "StepFailed",
    "StepFinished",
    "StepSkipped",
    "StepStarted",
    "ValidationFinished",
]


def _now() -> datetime:
    return datetime.now(UTC)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    at: datetime = Field(default_factory=_now)


class RunStarted(_Event):
    kind: Literal["run_started"] = "run_started"
    task: str
    corpus: str | None = None
    requirements: list[str] = Field(default_factory=list)
    budget: dict[str, Any] = Field(default_factory=dict)


class RunResumed(_Event):
    """A stopped run continues from its checkpoints (see ``Maestro.resume``)."""

    kind: Literal["run_resumed"] = "run_resumed"
    round: int
    """The round the run continues in."""
    reused: list[str] = Field(default_factory=list)
    """Steps of that round that had finished: they are kept, not run again (as are the
    results earlier rounds carried into it)."""
    usage: Usage = Field(default_factory=Usage)
    """Usage so far, carried over into this session's budget."""
    budget: Budget | None = None
    """The budget the run goes on under, when the resume gave a new one (it holds for
    later resumes too); ``None`` keeps the one it had."""


class PlanCreated(_Event):
    kind: Literal["plan_created"] = "plan_created"
    plan: Plan
    round: int = 1
    source: Literal["planner", "user", "replan", "versions"] = "planner"


class PlanRejected(_Event):
    """The planner's draft was invalid and went back with these problems."""

    kind: Literal["plan_rejected"] = "plan_rejected"
    problems: str
    attempt: int


class StepStarted(_Event):
    kind: Literal["step_started"] = "step_started"
    step_id: str
    round: int = 1


class StepFinished(_Event):
    kind: Literal["step_finished"] = "step_finished"
    step_id: str
    round: int = 1
    answer: str = ""
    citations: int = 0
    usage: Usage = Field(default_factory=Usage)
    result: StepResult | None = None
    """The full result: the checkpoint a run resumes from."""


class StepFailed(_Event):
    kind: Literal["step_failed"] = "step_failed"
    step_id: str
    round: int = 1
    error: str
    result: StepResult | None = None


class StepSkipped(_Event):
    """A step did not run because a step it depends on failed."""

    kind: Literal["step_skipped"] = "step_skipped"
    step_id: str
    round: int = 1
    reason: str
    result: StepResult | None = None


class ModelAttempted(_Event):
    """One call on the wire (failed ones and re-asks included)."""

    kind: Literal["model_attempted"] = "model_attempted"
    purpose: str
    """``plan``, ``step:<id>``, ``judge`` or ``judge:<step id>``."""
    model: str
    outcome: Literal["ok", "invalid", "error", "cached"]
    """``cached``: answered without a call (the response cache, or on resume the run's own
    record of the identical call)."""
    error: str | None = None
    usage: Usage
    seconds: float
    waited: float = 0.0
    """Of ``seconds``, the time the call waited for its provider's limits before it was sent."""
    key: str | None = None
    """The call's response-cache key (model, messages, schema, settings), when the model
    answered it."""
    response: str | None = None
    """The answer's raw text: recorded with the event so that a resumed run answers the
    identical call from it rather than paying for it twice."""

    @classmethod
    def of(cls, run_id: str, purpose: str, attempt: Attempt) -> ModelAttempted:
        """The event of one attempt made by :func:`~maestro_lite.models.generate`."""
        return cls(
            run_id=run_id,
            purpose=purpose,
            model=attempt.model,
            outcome=attempt.outcome,
            error=attempt.error,
            usage=attempt.usage,
            seconds=attempt.seconds,
            waited=attempt.waited,
            key=attempt.key,
            response=attempt.response,
        )


class ValidationFinished(_Event):
    kind: Literal["validation_finished"] = "validation_finished"
    round: int
    passed: bool
    results: list[RequirementResult]


class RoundFinished(_Event):
    """A round was validated and the orchestrator chose what to do next."""

    kind: Literal["round_finished"] = "round_finished"
    round: int
    decision: Decision


class FixStarted(_Event):
    """Failing steps are re-run with the failure reasons as feedback."""

    kind: Literal["fix_started"] = "fix_started"
    round: int
    step_ids: list[str]
    reason: str


class Replanned(_Event):
    """The planner was asked for a revised plan that keeps the steps that passed."""

    kind: Literal["replanned"] = "replanned"
    round: int
    kept: list[str]
    reason: str


class BudgetExhausted(_Event):
    kind: Literal["budget_exhausted"] = "budget_exhausted"
    limit: str
    usage: Usage


class RunInterrupted(_Event):
    """The run stopped before finishing (an endpoint down, a cancel); it can be resumed."""

    kind: Literal["run_interrupted"] = "run_interrupted"
    error: str
    usage: Usage


class RunFinished(_Event):
    kind: Literal["run_finished"] = "run_finished"
    status: Literal["passed", "unmet", "failed"]
    usage: Usage
    wall_seconds: float
    error: str | None = None


Event: TypeAlias = Annotated[
    RunStarted
    | RunResumed
    | PlanCreated
    | PlanRejected
    | StepStarted
    | StepFinished
    | StepFailed
    | StepSkipped
    | ModelAttempted
    | ValidationFinished
    | RoundFinished
    | FixStarted
    | Replanned
    | BudgetExhausted
    | RunInterrupted
    | RunFinished,
    Field(discriminator="kind"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
"""Serialises and parses any event: ``EVENT_ADAPTER.dump_json(e)``,
``EVENT_ADAPTER.validate_json(raw)``."""


EventHandler = Callable[[Event], Awaitable[None] | None]
"""Receives a run's events (sync or async)."""
