"""Rendering runs on the terminal: live events while a run works, then its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..events import (
    BudgetExhausted,
    Event,
    FixStarted,
    ModelAttempted,
    PlanCreated,
    PlanRejected,
    Replanned,
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
from ..result import RunResult
from ..runs import raise_budget_hint
from ..usage import Usage
from ._common import shown

__all__ = ["EventPrinter", "print_result"]


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class EventPrinter:
    """Prints one line per meaningful event (to stderr, so ``--json`` output stays clean).

    Args:
        console: Where to print.
        verbose: Also print every model attempt.
    """

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose

    def __call__(self, event: Event) -> None:
        line = self.line(event)
        if line:
            self.console.print(line, highlight=False, soft_wrap=True)

    def line(self, event: Event) -> str | None:
        """The line for ``event``, or ``None`` to stay quiet."""
        match event:
            case RunStarted():
                return f"[bold]run {event.run_id}[/] {_short(event.task)}"
            case RunResumed():
                kept = f", keeping {', '.join(event.reused)}" if event.reused else ""
                return f"[bold]run {event.run_id}[/] resumed in round {event.round}{kept}"
            case RunInterrupted():
                return f"[red]stopped[/] {_short(event.error)}"
            case PlanCreated():
                steps = ", ".join(f"{s.id}:{s.kind}" for s in event.plan.steps)
                return f"[cyan]plan[/] ({event.source}) {len(event.plan.steps)} step(s): {steps}"
            case PlanRejected():
                return f"[yellow]plan rejected[/] (attempt {event.attempt}): " + _short(
                    event.problems
                )
            case StepStarted():
                return f"  [dim]{event.step_id} started[/]"
            case StepFinished():
                return (
                    f"  [green]{event.step_id} done[/] ({event.citations} citation(s)) "
                    f"{_short(event.answer, 80)}"
                )
            case StepFailed():
                return f"  [red]{event.step_id} failed[/] {_short(event.error)}"
            case StepSkipped():
                return f"  [yellow]{event.step_id} skipped[/] {_short(event.reason)}"
            case ModelAttempted():
                if not self.verbose and event.outcome == "ok":
                    return None
                detail = f" {_short(event.error or '', 80)}" if event.error else ""
                return f"  [dim]{event.purpose} {event.outcome}{detail}[/]"
            case ValidationFinished():
                passed = sum(r.passed for r in event.results)
                colour = "green" if event.passed else "yellow"
                return (
                    f"[{colour}]round {event.round}: {passed}/{len(event.results)} checks passed[/]"
                )
            case FixStarted():
                return f"[magenta]fix[/] {', '.join(event.step_ids)}: {_short(event.reason)}"
            case Replanned():
                return f"[magenta]replan[/] keeping {event.kept}: {_short(event.reason)}"
            case BudgetExhausted():
                return f"[red]budget spent[/] ({event.limit})"
            case RunFinished():
                u = event.usage
                return (
                    f"[bold]{event.status}[/] in {event.wall_seconds:.1f}s, {u.requests} call(s), "
                    f"{u.input_tokens}+{u.output_tokens} tokens, ${u.cost_usd:.4f}" + _unreached(u)
                )
        return None


def print_result(result: RunResult, console: Console, *, show_passed: bool = True) -> None:
    """The answer, its citations, and the requirement report."""
    console.rule("answer")
    output: Any = result.output
    if hasattr(output, "model_dump_json"):
        console.print_json(output.model_dump_json())
    else:
        console.print(result.output_text or "[red](no output)[/]", highlight=False)
    if result.citations:
        table = Table(title="citations", show_lines=False)
        for col in ("#", "document", "page", "quote"):
            table.add_column(col, overflow="fold")
        for i, c in enumerate(result.citations, start=1):
            name = Path(c.path).name if c.path else c.document_id
            document = f"{c.title} ({name})" if c.title and c.title != name else name
            document = shown(document)
            table.add_row(str(i), document, str(c.page), _short(c.quote, 160))
        console.print(table)
    table = Table(title="requirements")
    for col in ("id", "requirement", "score", "result", "reason"):
        table.add_column(col, overflow="fold")
    for r in result.requirements:
        if r.passed and not show_passed and r.kind == "builtin" and not r.finding:
            continue
        mark = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        table.add_row(r.id, r.description, f"{r.score:.2f}", mark, _short(r.reason, 120))
    console.print(table)
    status_colour = {"passed": "green", "unmet": "yellow"}.get(result.status, "red")
    u = result.usage
    console.print(
        f"[{status_colour}]{result.status}[/] · {len(result.steps)} step(s) · "
        f"{len(result.rounds)} round(s) · {u.requests} model call(s){_unreached(u)} · "
        f"{u.input_tokens}+{u.output_tokens} tokens · ${u.cost_usd:.4f} · "
        f"{result.wall_seconds:.1f}s"
        + (f" · budget: {result.budget_exhausted}" if result.budget_exhausted else "")
        + (f" · error: {result.error}" if result.error else ""),
        highlight=False,
    )
    if result.budget_exhausted and result.status != "passed":
        console.print(
            f"[yellow]stopped on its budget ({result.budget_exhausted}).[/] "
            + escape(raise_budget_hint(result.run_id, result.budget_exhausted)),
            highlight=False,
        )


def _unreached(usage: Usage) -> str:
    """Attempts that never reached the provider: shown, though they cost nothing."""
    n = usage.unreached_requests
    return f" (+{n} unreached, not counted)" if n else ""
