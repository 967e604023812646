"""``maestro run``: plan, execute and validate a task over a corpus."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Any

import typer

from ..budget import Budget
from ..corpora import Corpora
from ..orchestrator import Maestro
from ..result import RunResult
from ..settings import Settings
from ._app import app
from ._common import (
    NO_CACHE,
    console,
    durable,
    err_console,
    load_settings,
    open_model,
    traced,
)
from .render import EventPrinter, print_result

EXIT_UNMET = 3


MAX_TOKENS = typer.Option(None, "--max-tokens", min=1, help="Token limit.")
MAX_COST = typer.Option(None, "--max-cost", min=0.0, help="Cost limit in USD.")
MAX_ROUNDS = typer.Option(None, "--max-rounds", min=1, help="Fix/replan rounds.")
MAX_REQUESTS = typer.Option(
    None, "--max-requests", min=1, help="Model call limit (unreached attempts do not count)."
)
CONCURRENCY = typer.Option(4, "--concurrency", min=1, help="Steps in flight at once.")
"""The budget options, the same on `run`, `resume` and the pipeline commands."""


def budget_from_options(
    preset: str | Budget,
    *,
    max_tokens: int | None = None,
    max_cost: float | None = None,
    max_rounds: int | None = None,
    max_requests: int | None = None,
) -> Budget:
    """A preset (or a budget) with the explicit limits given on the command line on top."""
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "max_tokens": max_tokens,
            "max_cost_usd": max_cost,
            "max_rounds": max_rounds,
            "max_requests": max_requests,
        }.items()
        if value is not None
    }
    if isinstance(preset, Budget):
        return Budget.model_validate(preset.model_dump() | overrides)
    return Budget.preset(preset, **overrides)  # type: ignore[arg-type]


def run_with_corpora(settings: Settings, maestro_factory: Any, coro_factory: Any) -> Any:
    """Run ``coro_factory(maestro)`` with a Maestro over the settings' corpora, closing them."""

    async def go() -> Any:
        corpora = Corpora(settings)
        try:
            return await coro_factory(maestro_factory(corpora))
        finally:
            await corpora.aclose()

    return asyncio.run(go())


def finish(result: RunResult, *, as_json: bool) -> None:
    """Print the result and exit 0 (passed), 3 (requirements unmet) or 1 (failed)."""
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        print_result(result, console)
    if result.status == "unmet":
        raise typer.Exit(EXIT_UNMET)
    if result.status == "failed":
        raise typer.Exit(1)


class BudgetName(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


@app.command("run")
def run_command(
    task: str = typer.Argument(..., help="What to do, in natural language."),
    corpus: str = typer.Option("default", "--corpus", "-c", help="The corpus to search."),
    require: list[str] = typer.Option(
        [], "--require", "-r", help="A requirement the result must meet (repeatable)."
    ),
    budget: BudgetName = typer.Option(BudgetName.medium, "--budget", "-b", help="Preset."),
    max_tokens: int | None = MAX_TOKENS,
    max_cost: float | None = MAX_COST,
    max_rounds: int | None = MAX_ROUNDS,
    max_requests: int | None = MAX_REQUESTS,
    model: str | None = typer.Option(None, "--model", "-m", help="provider:model to use."),
    concurrency: int = CONCURRENCY,
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every model call."),
    no_cache: bool = NO_CACHE,
) -> None:
    """Plan, execute and validate TASK over a corpus; print the cited answer and the
    requirement report. Exit code: 0 passed, 3 requirements unmet, 1 failed. The run is
    recorded (`maestro runs show RUN_ID`); if it stops, `maestro resume RUN_ID` goes on."""
    settings = load_settings(model)
    limits = budget_from_options(
        budget.value,
        max_tokens=max_tokens,
        max_cost=max_cost,
        max_rounds=max_rounds,
        max_requests=max_requests,
    )
    chat = open_model(settings)
    printer = EventPrinter(err_console, verbose=verbose)
    with durable(settings) as kept:
        result: RunResult = run_with_corpora(
            settings,
            lambda corpora: Maestro(
                chat, corpora=corpora, concurrency=concurrency, on_event=traced(printer), **kept
            ),
            lambda maestro: maestro.run(
                task, corpus=corpus, requirements=require, budget=limits, cache=not no_cache
            ),
        )
    finish(result, as_json=as_json)
