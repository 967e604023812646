"""``maestro runs list|show|export`` and ``maestro resume``: the runs in the run store."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from .._format import duration as _duration
from ..orchestrator import Maestro
from ..plan import Plan
from ..result import StepResult
from ..runs import RunRecord, budget_of, cancel_run, export_run, open_run_store
from ..runs.sql import SQLRunStore
from ..usage import Usage
from ._app import MaestroGroup, app
from ._checks import output_file
from ._common import console, durable, err_console, load_settings, open_model, traced
from .render import EventPrinter
from .run import (
    CONCURRENCY,
    MAX_COST,
    MAX_REQUESTS,
    MAX_ROUNDS,
    MAX_TOKENS,
    BudgetName,
    budget_from_options,
    finish,
    run_with_corpora,
)

runs_app = typer.Typer(
    help="List, inspect and export recorded runs.", no_args_is_help=True, cls=MaestroGroup
)
app.add_typer(runs_app, name="runs")

_STATUS_STYLE = {
    "passed": "green",
    "unmet": "yellow",
    "failed": "red",
    "interrupted": "magenta",
    "running": "cyan",
    "done": "green",
    "skipped": "yellow",
}


class Status(StrEnum):
    running = "running"
    interrupted = "interrupted"
    passed = "passed"
    unmet = "unmet"
    failed = "failed"


def open_store() -> SQLRunStore:
    """The run store the settings name (PostgreSQL at ``MAESTRO_DATABASE_URL``, else
    ``<home>/runs.sqlite3``)."""
    return open_run_store(load_settings())


def _status(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _when(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _usage(u: Usage) -> str:
    parts = [f"{u.requests} call(s)"]
    if u.failed_requests:
        parts.append(f"{u.failed_requests} failed")
    if u.unreached_requests:
        parts.append(f"{u.unreached_requests} unreached (not counted)")
    if u.cached_requests:
        parts.append(f"{u.cached_requests} cached")
    parts.append(f"{u.input_tokens}+{u.output_tokens} tokens")
    parts.append(f"${u.cost_usd:.4f}")
    return ", ".join(parts)


@runs_app.command("list")
def list_runs(
    limit: int = typer.Option(20, "--limit", "-n", help="How many runs, newest first.", min=1),
    status: Status | None = typer.Option(None, "--status", help="Only runs with this status."),
) -> None:
    """The recorded runs: status, task, start, duration, tokens and cost."""
    with open_store() as store:
        runs = store.list(limit=limit, status=status.value if status else None)
    if not runs:
        console.print("no runs recorded yet" + (f" with status {status}" if status else ""))
        return
    table = Table()
    for column in ("run", "status", "task", "started", "duration", "tokens", "cost"):
        table.add_column(column, overflow="fold", no_wrap=column != "task")
    for run in runs:
        table.add_row(
            run.run_id,
            _status(run.status),
            escape(_short(run.task, 60)),
            _when(run.started_at),
            _duration(run.active_seconds),
            str(run.usage.total_tokens),
            f"${run.usage.cost_usd:.4f}",
        )
    console.print(table)


def _step_line(step_id: str, plan: Plan, result: StepResult | None, running: bool) -> str:
    step = plan.step(step_id)
    head = f"[bold]{step.id}[/] {step.kind}: {escape(_short(step.instruction, 70))}"
    if result is None:
        return f"{head} — {_status('running') if running else '[dim]not run[/]'}"
    parts = [_status(result.status), f"round {result.round}"]
    if result.started_at and result.finished_at:
        parts.append(_duration((result.finished_at - result.started_at).total_seconds()))
    if result.attempts:
        failed = sum(a.outcome not in ("ok", "cached") for a in result.attempts)
        note = f", {failed} not ok" if failed else ""
        parts.append(f"{len(result.attempts)} attempt(s){note}")
    if result.model:
        parts.append(escape(result.model))
    line = f"{head} — {', '.join(parts)}"
    if result.error:
        line += f"\n[red]{escape(_short(result.error, 160))}[/]"
    for attempt in result.attempts:
        if attempt.error and attempt.outcome == "error":
            line += f"\n[dim]attempt: {escape(_short(attempt.error, 140))}[/]"
    return line


def _plan_tree(label: str, plan: Plan, results: dict[str, StepResult], running: set[str]) -> Tree:
    """The plan from its final step down to the steps it depends on."""
    tree = Tree(label)

    def add(node: Tree, step_id: str, path: frozenset[str]) -> None:
        child = node.add(_step_line(step_id, plan, results.get(step_id), step_id in running))
        for dep in plan.step(step_id).depends_on:
            if dep not in path:
                add(child, dep, path | {dep})

    add(tree, plan.final.id, frozenset({plan.final.id}))
    return tree


def _plans(record: RunRecord) -> list[Tree]:
    """One tree per plan, each step with the result it ended with under that plan."""
    trees = []
    last_round = max([s.round for s in record.steps] + [r.round for r in record.rounds] + [1])
    for index, plan_record in enumerate(record.plans):
        until = record.plans[index + 1].round - 1 if index + 1 < len(record.plans) else last_round
        ids = {s.id for s in plan_record.plan.steps}
        # The latest result of each step up to `until` (steps are ordered by round).
        results = {r.step_id: r for r in record.steps if r.round <= until and r.step_id in ids}
        running = {sid for r, sid in record.running if plan_record.round <= r <= until}
        label = (
            f"[bold]plan {plan_record.version}[/] ({plan_record.source}, from round "
            f"{plan_record.round})"
        )
        if plan_record.plan.rationale:
            label += f": {escape(_short(plan_record.plan.rationale, 100))}"
        trees.append(_plan_tree(label, plan_record.plan, results, running))
    return trees


@runs_app.command("show")
def show_run(
    run_id: str = typer.Argument(..., help="The run id (see `maestro runs list`)."),
) -> None:
    """One run: its plan as a tree, each step's status, timing, attempts and errors, the
    rounds and decisions, and the requirement report."""
    with open_store() as store:
        record = store.get(run_id)
    summary = record.summary
    console.print(f"[bold]run {summary.run_id}[/] {_status(summary.status)}")
    console.print(f"task     {escape(summary.task)}")
    if summary.corpus:
        console.print(f"corpus   {escape(summary.corpus)}")
    if record.spec.model:
        console.print(f"model    {escape(record.spec.model)}")
    console.print(
        f"started  {_when(summary.started_at)}   finished {_when(summary.finished_at)}   "
        f"active {_duration(summary.active_seconds)}"
    )
    console.print(f"usage    {_usage(summary.usage)}")
    if summary.error:
        console.print(f"[red]error    {escape(summary.error)}[/]")
    if summary.status in ("running", "interrupted"):
        console.print(f"[dim]resume it with `maestro resume {summary.run_id}`[/]")
    if not record.plans:
        console.print("[dim]no plan recorded[/]")
    for tree in _plans(record):
        console.print(tree)
    if record.rounds:
        table = Table(title="rounds")
        for column in ("round", "checks", "decision", "reason"):
            table.add_column(column, overflow="fold")
        for r in record.rounds:
            passed = sum(x.passed for x in r.report.results)
            table.add_row(
                str(r.round),
                f"{passed}/{len(r.report.results)}",
                r.decision.action,
                escape(_short(r.decision.reason, 140)),
            )
        console.print(table)
    if record.reports:
        last = max(record.reports)
        table = Table(title=f"requirements (round {last})")
        for column in ("id", "requirement", "score", "result", "reason"):
            table.add_column(column, overflow="fold")
        for req in record.reports[last]:
            mark = "[green]pass[/]" if req.passed else "[red]FAIL[/]"
            table.add_row(
                req.id,
                escape(req.description),
                f"{req.score:.2f}",
                mark,
                escape(_short(req.reason, 120)),
            )
        console.print(table)


@runs_app.command("export")
def export(
    run_id: str = typer.Argument(..., help="The run id."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Write to this file instead of standard output.",
        callback=output_file,
    ),
) -> None:
    """The run's full trace as JSON Lines: the run, then every event with step results."""
    with open_store() as store:
        lines = list(export_run(store, run_id))
    if output is None:
        for line in lines:
            typer.echo(line)
        return
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    console.print(f"wrote {len(lines)} line(s) to {output}")


@runs_app.command("cancel")
def cancel(run_id: str = typer.Argument(..., help="The running run to stop.")) -> None:
    """Stop a running run: the process running it stops that run alone within a second
    and records it interrupted, with its checkpoints; `maestro resume RUN_ID` continues it.
    In a worker, the run's job fails with the reason and the other jobs go on."""
    with open_store() as store:
        console.print(escape(cancel_run(store, run_id)))


@app.command("resume")
def resume_command(
    run_id: str = typer.Argument(..., help="The run to continue (`maestro runs list`)."),
    model: str | None = typer.Option(None, "--model", "-m", help="provider:model to use."),
    concurrency: int = CONCURRENCY,
    force: bool = typer.Option(
        False, "--force", help="Take over a run whose recorded process still seems alive."
    ),
    budget: BudgetName | None = typer.Option(
        None, "--budget", "-b", help="A new budget preset (default: the run's own budget)."
    ),
    max_tokens: int | None = MAX_TOKENS,
    max_cost: float | None = MAX_COST,
    max_rounds: int | None = MAX_ROUNDS,
    max_requests: int | None = MAX_REQUESTS,
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every model call."),
) -> None:
    """Continue a stopped or crashed run from its checkpoints: the recorded plan and the
    finished steps are kept, so no model call is paid twice. Exit codes as `maestro run`.

    Budget options give the run a new budget (usage so far counts against it); a run that
    finished because its budget was spent goes on with a larger one."""
    settings = load_settings(model)
    with durable(settings) as kept:
        record = kept["run_store"].get(run_id)
        spec = record.spec
        limits = (max_tokens, max_cost, max_rounds, max_requests)
        new_budget = None
        if budget is not None or any(v is not None for v in limits):
            base = budget.value if budget else budget_of(record, kept["run_store"].events(run_id))
            new_budget = budget_from_options(
                base,
                max_tokens=max_tokens,
                max_cost=max_cost,
                max_rounds=max_rounds,
                max_requests=max_requests,
            )
        chat = open_model(settings)
        if spec.model and spec.model != chat.name:
            err_console.print(
                f"[yellow]note:[/] run {run_id} started with {escape(spec.model)}; "
                f"continuing with {escape(chat.name)}"
            )
        printer = EventPrinter(err_console, verbose=verbose)
        result = run_with_corpora(
            settings,
            lambda corpora: Maestro(
                chat, corpora=corpora, concurrency=concurrency, on_event=traced(printer), **kept
            ),
            lambda maestro: maestro.resume(run_id, force=force, budget=new_budget),
        )
    finish(result, as_json=as_json)
