"""Where a stopped run picks up: the stored state of its rounds, read back as data.

A run is a sequence of rounds; each executes the round's plan (keeping some results of the
round before), validates, and decides. :func:`resume_point` reads a :class:`RunRecord` and says
which rounds were completed (with the step results each one validated), which plan and round
come next, and which steps of that round had already finished. The orchestrator applies the
last decision exactly as its loop does, so nothing here knows how to plan or fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..budget import Budget
from ..events import BudgetExhausted, Event, RunResumed, RunStarted
from ..plan import Plan
from ..result import RoundRecord, StepResult
from ..usage import Usage
from .base import RunRecord

__all__ = [
    "CompletedRound",
    "ResumePoint",
    "budget_of",
    "exhausted_limit",
    "raise_budget_hint",
    "resume_point",
]

_OPTIONS = {
    "max_requests": "--max-requests",
    "max_tokens": "--max-tokens",
    "max_cost_usd": "--max-cost",
}
"""The ``maestro resume`` option that raises each usage limit."""


@dataclass(frozen=True)
class CompletedRound:
    """A round that was validated and decided, with the results it validated."""

    record: RoundRecord
    results: dict[str, StepResult]


@dataclass(frozen=True)
class ResumePoint:
    """The stored state of a run, ready for the orchestrator to continue from."""

    round: int
    """The round to run next (the one that was in progress, or the one after the last)."""
    plan: Plan | None
    """The plan of ``round``; with ``replan_pending``, the plan the planner must revise;
    ``None`` when no plan was recorded yet (planning starts over)."""
    completed: list[CompletedRound] = field(default_factory=list)
    finished_in_round: dict[str, StepResult] = field(default_factory=dict)
    """Steps of ``round`` that finished (status ``done``) before the run stopped."""
    replan_pending: bool = False
    """The last round decided to replan but its new plan was never recorded."""
    usage: Usage = field(default_factory=Usage)
    """Usage of every recorded attempt: the budget of the rest of the run counts it."""
    active_seconds: float = 0.0
    """Time the run spent running before it stopped, over its sessions."""
    exhausted: str | None = None
    """The budget limit that was hit, if one was."""

    @property
    def last(self) -> CompletedRound | None:
        return self.completed[-1] if self.completed else None


def _results_of(record: RunRecord, plan: Plan, round: int) -> dict[str, StepResult]:
    """The results round ``round`` validated: for each step of its plan, the latest
    checkpoint up to that round (a step kept from an earlier round was not run again)."""
    out: dict[str, StepResult] = {}
    for step in plan.steps:
        candidates = [s for s in record.steps if s.step_id == step.id and s.round <= round]
        if candidates:
            out[step.id] = max(candidates, key=lambda s: s.round)
    return out


def _active_seconds(events: Sequence[Event]) -> float:
    """Seconds from each start or resume to the last event before the next one, summed."""
    total, start, last = 0.0, None, None
    for event in events:
        if isinstance(event, RunStarted | RunResumed):
            if start is not None and last is not None:
                total += (last - start).total_seconds()
            start = event.at
        last = event.at
    if start is not None and last is not None:
        total += (last - start).total_seconds()
    return total


def exhausted_limit(events: Sequence[Event]) -> str | None:
    """The budget limit the run last hit (``"max_requests=12"``), if it hit one."""
    return next((e.limit for e in reversed(events) if isinstance(e, BudgetExhausted)), None)


def raise_budget_hint(run_id: str, limit: str) -> str:
    """How to go on with a run that stopped on ``limit`` (``"max_requests=12"``): the
    resume command with that limit doubled."""
    name, _, value = limit.partition("=")
    option = _OPTIONS.get(name)
    try:
        bigger = f"{float(value) * 2:g}" if name == "max_cost_usd" else str(int(value) * 2)
    except ValueError:
        option = None
    command = f"maestro resume {run_id} " + (f"{option} {bigger}" if option else "--budget high")
    return f"Raise it and go on: `{command}` (or Maestro.resume(run_id, budget=...))."


def budget_of(record: RunRecord, events: Sequence[Event]) -> Budget:
    """The budget a run goes on under: the last one a resume gave it, else its own."""
    given = (e.budget for e in reversed(events) if isinstance(e, RunResumed) and e.budget)
    return next(given, record.spec.budget)


def resume_point(
    record: RunRecord, events: Sequence[Event] = (), *, reopen: bool = False
) -> ResumePoint:
    """Read where ``record``'s run stopped (``events``: its recorded events, for time and
    budget state).

    ``reopen``: the run finished on its budget and goes on with a larger one, so its last
    round, closed for want of budget, is taken up again instead: its finished steps are
    kept, the rest run, and it is validated again (recorded judge answers are not paid
    twice)."""
    rounds = list(record.rounds)
    if reopen and rounds and rounds[-1].decision.action == "finish":
        rounds.pop()
    completed = [CompletedRound(r, _results_of(record, r.plan, r.round)) for r in rounds]
    latest = record.plans[-1] if record.plans else None
    plan = latest.plan if latest is not None else None
    if len(rounds) < len(record.rounds):
        plan = record.rounds[-1].plan  # the reopened round's
    round_no = 1
    replan_pending = False
    if completed:
        last = completed[-1].record
        round_no = last.round + 1
        if last.decision.action == "replan" and (latest is None or latest.round <= last.round):
            # The revised plan is recorded under the next round; without it, the orchestrator
            # revises `plan` (the last round's) again.
            replan_pending = True
            plan = last.plan
    finished: dict[str, StepResult] = {}
    if plan is not None and not replan_pending:
        ids = {s.id for s in plan.steps}
        finished = {
            s.step_id: s
            for s in record.steps
            if s.round == round_no and s.status == "done" and s.step_id in ids
        }
    return ResumePoint(
        round=round_no,
        plan=plan,
        completed=completed,
        finished_in_round=finished,
        replan_pending=replan_pending,
        usage=record.summary.usage,
        active_seconds=_active_seconds(events),
        exhausted=None if reopen else exhausted_limit(events),
    )
