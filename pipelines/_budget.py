"""Budgets for the pipelines: plans declared in Python, whose size the pipeline knows before
it runs, and the model calls a pipeline makes before its run starts.

A pipeline asks the model a few things before :meth:`Maestro.run` (the sub-questions of a
question, the aspects of a comparison, which pages of a long document to read). Those calls
belong to the run: :class:`Preflight` checks the run's limits before each of them, and what
they consumed is charged to the run (``await maestro.run(..., usage=usage)``),
so the run's usage, its budget and its report count them like any other call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pydantic import BaseModel

from maestro_lite import (
    Budget,
    BudgetExceeded,
    BudgetPreset,
    Maestro,
    Message,
    ModelSettings,
    Plan,
    Requirement,
    RequirementLike,
    StructuredOutputError,
    Usage,
    UsageMeter,
    generate,
)

__all__ = ["Preflight", "ask", "fit_budget", "judged"]

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

_TOKENS_PER_CALL = 8_000
"""A generous ceiling per call (prompt and answer) for the token limit."""


def judged(requirements: Sequence[RequirementLike]) -> bool:
    """Whether a model judges one of ``requirements`` (a call per round for the budget)."""
    return any(
        isinstance(r, str) or (isinstance(r, Requirement) and r.kind == "judge")
        for r in requirements
    )


def fit_budget(
    budget: Budget | BudgetPreset | None,
    plan: Plan,
    *,
    judged: bool = False,
    before: int = 0,
) -> Budget:
    """A budget that can run ``plan`` at least once, on the limits of ``budget``.

    A preset is sized for planner-written plans (``low`` allows 12 calls); a comparison of
    four documents on three aspects has 16 steps, so the preset's request and token limits
    are raised to what its rounds need: every step once per round, plus a judge call per
    round when a requirement is judged, plus ``before`` calls the pipeline makes before the
    run. An explicit :class:`Budget` is used as given.
    """
    if isinstance(budget, Budget):
        return budget
    base = Budget.of(budget)
    steps = len(plan.steps)
    per_round = steps + (1 if judged else 0)
    # Later rounds re-run only failing steps; allow each about half the plan.
    needed = before + per_round + (base.max_rounds - 1) * max(2, per_round // 2)
    requests = max(base.max_requests or 0, needed)
    tokens = max(base.max_tokens or 0, requests * _TOKENS_PER_CALL)
    return base.model_copy(
        update={
            "max_requests": requests,
            "max_tokens": tokens,
            "max_steps": max(steps, base.max_steps),
        }
    )


async def ask(
    maestro: Maestro,
    messages: Sequence[Message],
    output_type: type[T],
    *,
    max_tokens: int,
    meter: UsageMeter | None = None,
) -> tuple[T, Usage]:
    """One structured call of ``maestro``'s model with its retry and re-ask settings, through
    its limiter and response cache; the limits of ``meter`` are checked before every attempt
    and every attempt is added to it.

    Raises:
        BudgetExceeded: The call (or a re-ask) would break a limit of ``meter``.
        StructuredOutputError: The answer never validated.
    """
    completion = await generate(
        maestro.outside_model(),
        messages,
        output_type=output_type,
        settings=ModelSettings(max_tokens=max_tokens),
        retry=maestro.retry,
        max_reasks=maestro.max_reasks,
        meter=meter,
    )
    return completion.output, completion.usage


class Preflight:
    """The calls a pipeline makes before its run, held to the run's budget.

    Args:
        budget: The run's budget; a preset's own limits apply until :meth:`limit_to` gives
            the budget the run will have.
    """

    def __init__(self, budget: Budget | BudgetPreset | None) -> None:
        self.meter = UsageMeter(Budget.of(budget).limits)
        self.notes: list[str] = []
        """Calls given up, and why (shown in the report)."""
        self.exhausted: str | None = None
        """The limit that refused a call, if one did."""

    @property
    def usage(self) -> Usage:
        """What the calls consumed, failed attempts and re-asks included."""
        return self.meter.usage

    def limit_to(self, budget: Budget) -> None:
        """Check later calls against ``budget`` (the one the run gets), usage kept."""
        usage = self.meter.usage
        self.meter = UsageMeter(budget.limits)
        self.meter.add(usage)

    def affords(self, calls: int, *, reserve: int = 0) -> bool:
        """Whether ``calls`` more calls fit the request limit with ``reserve`` calls left
        for the run (tokens and cost are checked before each call)."""
        limit = self.meter.limits.max_requests
        return limit is None or self.usage.requests + calls + reserve <= limit

    async def attempt(
        self,
        purpose: str,
        call: Callable[..., Awaitable[R]],
        *,
        reserve: int = 0,
    ) -> R | None:
        """``call(meter=meter)``'s result, or ``None`` when the budget cannot pay for one more call
        with ``reserve`` calls left for the run, refuses it on the way, or the model gave no
        valid answer (then :attr:`notes` says why and the pipeline goes on without it).

        Raises:
            ModelAPIError: The endpoint failed for good (the run could not go on either).
        """
        if not self.affords(1, reserve=reserve):
            self.exhausted = f"max_requests={self.meter.limits.max_requests}"
            self.notes.append(f"{purpose}: skipped, the budget leaves no room for it")
            return None
        try:
            return await call(meter=self.meter)
        except BudgetExceeded as exc:
            self.exhausted = exc.limit
            self.notes.append(f"{purpose}: skipped, {exc}")
        except StructuredOutputError as exc:
            self.notes.append(f"{purpose}: no valid answer ({exc})")
        return None
