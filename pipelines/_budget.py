"""Budgets for plans declared in Python, whose size the pipeline knows before it runs."""

from __future__ import annotations

from maestro_lite import Budget, BudgetPreset, Plan

__all__ = ["fit_budget"]

_TOKENS_PER_CALL = 8_000
"""A generous ceiling per call (prompt and answer) for the token limit."""


def fit_budget(budget: Budget | BudgetPreset | None, plan: Plan, *, judged: bool = False) -> Budget:
    """A budget that can run ``plan`` at least once, on the limits of ``budget``.

    A preset is sized for planner-written plans (``low`` allows 12 calls); a comparison of
    four documents on three aspects has 16 steps, so the preset's request and token limits
    are raised to what its rounds need: every step once per round, plus a judge call per
    round when a requirement is judged. An explicit :class:`Budget` is used as given.
    """
    if isinstance(budget, Budget):
        return budget
    base = Budget.of(budget)
    steps = len(plan.steps)
    per_round = steps + (1 if judged else 0)
    # Later rounds re-run only failing steps; allow each about half the plan.
    needed = per_round + (base.max_rounds - 1) * max(2, per_round // 2)
    requests = max(base.max_requests or 0, needed)
    tokens = max(base.max_tokens or 0, requests * _TOKENS_PER_CALL)
    return base.model_copy(
        update={
            "max_requests": requests,
            "max_tokens": tokens,
            "max_steps": max(steps, base.max_steps),
        }
    )
