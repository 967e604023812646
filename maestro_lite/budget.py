"""Budgets: how much a run may spend, as presets or explicit limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .usage import UsageLimits

__all__ = ["Budget", "BudgetPreset"]

BudgetPreset = Literal["low", "medium", "high"]


class Budget(BaseModel):
    """Limits of one run. Every limit is checked before the call or round it would break.

    ``Budget.preset("medium")`` gives sensible limits; any field can be overridden:
    ``Budget.preset("low", max_cost_usd=0.05)``.
    """

    model_config = ConfigDict(frozen=True)

    max_rounds: int = Field(default=3, ge=1)
    """Execute-validate rounds: 1 means no fix or replan."""
    max_requests: int | None = Field(default=40, ge=1)
    """Model calls of every kind (planning, steps, judging, retries, re-asks)."""
    max_tokens: int | None = Field(default=200_000, ge=1)
    """Input plus output tokens over the run. Each call reserves its prompt plus the most
    output it may generate before it starts."""
    max_cost_usd: float | None = Field(default=None, ge=0)
    """Estimated cost over the run, at the models' published prices; each call reserves its
    most cost before it starts. Models without a known price (local ones) cost nothing."""
    max_steps: int = Field(default=8, ge=1)
    """Largest plan: the planner may not write more steps, and a plan declared with
    ``run(plan=...)`` that has more is refused before the run starts."""
    max_plan_attempts: int = Field(default=3, ge=1)
    """How often an invalid plan goes back to the planner before the run fails."""
    raise_on_unmet: bool = False
    """Raise :class:`~maestro_lite.errors.RequirementsNotMet` instead of returning the best
    result when the budget ends with requirements unmet."""

    @classmethod
    def preset(cls, name: BudgetPreset, **overrides: object) -> Budget:
        """The ``low`` / ``medium`` / ``high`` presets, with optional overrides."""
        base = _PRESETS[name].model_dump()
        base.update(overrides)
        return cls.model_validate(base)

    @classmethod
    def of(cls, value: Budget | BudgetPreset | None) -> Budget:
        """Normalise a budget argument (``None`` means ``medium``)."""
        if value is None:
            return cls.preset("medium")
        if isinstance(value, Budget):
            return value
        return cls.preset(value)

    @property
    def limits(self) -> UsageLimits:
        return UsageLimits(
            max_requests=self.max_requests,
            max_tokens=self.max_tokens,
            max_cost_usd=self.max_cost_usd,
        )


_PRESETS: dict[BudgetPreset, Budget] = {
    "low": Budget(max_rounds=1, max_requests=12, max_tokens=60_000, max_steps=4),
    "medium": Budget(max_rounds=3, max_requests=40, max_tokens=200_000, max_steps=8),
    "high": Budget(max_rounds=5, max_requests=150, max_tokens=800_000, max_steps=16),
}
