"""``Maestro``: plan, execute, validate, and fix or replan within a budget.

Each round runs the plan, validates the results, and chooses one of a closed set of decisions
(:class:`~maestro_lite.result.Decision`): finish, fix (re-run the failing steps with the
failure reasons as feedback), or replan (ask the planner for a revised plan that keeps the
steps that passed). The choice and its reason are recorded in the result and the events.
When the budget ends first, the run returns its best result with the unmet requirements
marked, or raises :class:`~maestro_lite.errors.RequirementsNotMet` if asked to.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, assert_never, runtime_checkable

from pydantic import BaseModel, ValidationError

from .budget import Budget, BudgetPreset
from .errors import BudgetExceeded, PlanError, RequirementsNotMet, UserError
from .events import (
    BudgetExhausted,
    Event,
    FixStarted,
    ModelAttempted,
    PlanCreated,
    PlanRejected,
    Replanned,
    RunFinished,
    RunStarted,
    ValidationFinished,
)
from .executor import Executor
from .models.base import ChatModel
from .models.generate import Attempt, RetryPolicy, UsageMeter
from .plan import Plan
from .planner import Planner
from .requirements import Requirement, RequirementLike, normalize_requirements
from .result import Decision, RoundRecord, RunResult, RunStatus, StepResult, ValidationReport
from .retrieval import Retriever, SearchMode
from .validator import Validator

__all__ = ["CorpusStore", "EventHandler", "Maestro"]

EventHandler = Callable[[Event], Awaitable[None] | None]


@runtime_checkable
class CorpusStore(Protocol):
    """Opens a corpus by name (:class:`~maestro_lite.corpora.Corpora` implements it)."""

    async def corpus(self, name: str) -> Retriever: ...


@dataclass
class _Candidate:
    plan: Plan
    results: dict[str, StepResult]
    report: ValidationReport
    output: Any
    text: str

    def rank(self) -> tuple[bool, int, float]:
        passed = sum(r.passed for r in self.report.results)
        return (self.report.passed, passed, self.report.score)


class Maestro:
    """The orchestrator.

    Args:
        model: The model for steps (and, unless given separately, planning and judging).
        store: Resolves ``corpus="name"`` to a retriever.
        planner_model: A different model for planning (often a stronger one).
        judge_model: A different model for judging requirements.
        concurrency: Most steps in flight at once.
        search_mode: Retrieval mode for step queries.
        retry: Backoff for transient model errors.
        max_reasks: Re-asks per call when output does not match its schema.
        output_tokens: Tokens reserved for each step's answer.
        on_event: Called with every event of every run (sync or async).

    Example::

        maestro = Maestro(model=model, store=store)
        result = await maestro.run("How did the liability cap change?", corpus="contracts",
                                   requirements=["cite a source for every figure"])
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        store: CorpusStore | None = None,
        planner_model: ChatModel | None = None,
        judge_model: ChatModel | None = None,
        concurrency: int = 4,
        search_mode: SearchMode = "hybrid",
        retry: RetryPolicy | None = None,
        max_reasks: int = 2,
        output_tokens: int = 1024,
        on_event: EventHandler | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.planner_model = planner_model
        self.judge_model = judge_model
        self.concurrency = concurrency
        self.search_mode: SearchMode = search_mode
        self.retry = retry
        self.max_reasks = max_reasks
        self.output_tokens = output_tokens
        self.on_event = on_event

    @contextmanager
    def override(
        self, *, model: ChatModel | None = None, store: CorpusStore | None = None
    ) -> Iterator[Maestro]:
        """Swap the model or store for the duration of a ``with`` block (for tests)."""
        saved = (self.model, self.planner_model, self.judge_model, self.store)
        if model is not None:
            self.model, self.planner_model, self.judge_model = model, None, None
        if store is not None:
            self.store = store
        try:
            yield self
        finally:
            self.model, self.planner_model, self.judge_model, self.store = saved

    def run_sync(self, task: str, **kwargs: Any) -> RunResult:
        """:meth:`run` for code without an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run(task, **kwargs))
        raise UserError(
            "run_sync() cannot run inside a running event loop; use `await maestro.run(...)`",
            hint="In async code (Jupyter, FastAPI, asyncio.run), await run() instead.",
        )

    async def _retriever(self, corpus: str | Retriever | None) -> Retriever | None:
        if corpus is None or isinstance(corpus, Retriever):
            return corpus
        if self.store is None:
            raise UserError(
                f"corpus {corpus!r} was given by name but Maestro has no store",
                hint="Pass store=Corpora(settings) to Maestro, or a retriever as corpus=.",
            )
        return await self.store.corpus(corpus)

    async def run(
        self,
        task: str,
        *,
        corpus: str | Retriever | None = None,
        requirements: Sequence[RequirementLike] = (),
        budget: Budget | BudgetPreset | None = "medium",
        output_type: type[BaseModel] | None = None,
        plan: Plan | None = None,
        data_types: Mapping[str, type[BaseModel]] | None = None,
        run_id: str | None = None,
        on_event: EventHandler | None = None,
    ) -> RunResult:
        """Plan, execute and validate ``task``.

        Args:
            task: What to do, in natural language.
            corpus: The corpus to search: a name (resolved by ``store``) or a retriever.
            requirements: Natural-language strings, callables, or :class:`Requirement`.
            budget: ``"low"``, ``"medium"``, ``"high"`` or a :class:`Budget`.
            output_type: A pydantic model for the final output (each field cited).
            plan: A plan declared in Python; skips the planner.
            data_types: Output types of ``extract`` steps, by step id.
            run_id: An id for the run (generated when omitted).
            on_event: Called with this run's events, in addition to the instance's handler.

        Returns:
            The result: output, citations, requirement report, plan, step traces, usage,
            events. Its ``status`` says whether every requirement passed.

        Raises:
            RequirementsNotMet: Requirements are unmet at the end and
                ``budget.raise_on_unmet`` is set.
            PlanError: ``plan`` is invalid for this corpus.
            UserError: Misuse (unknown corpus, bad arguments).
        """
        return await _Run(
            self,
            task,
            corpus=await self._retriever(corpus),
            requirements=requirements,
            budget=Budget.of(budget),
            output_type=output_type,
            plan=plan,
            data_types=data_types or {},
            run_id=run_id or uuid.uuid4().hex[:12],
            handlers=[h for h in (self.on_event, on_event) if h],
            corpus_name=corpus if isinstance(corpus, str) else None,
        ).go()


class _Run:
    """The state of one run (one instance per call of :meth:`Maestro.run`)."""

    def __init__(
        self,
        maestro: Maestro,
        task: str,
        *,
        corpus: Retriever | None,
        requirements: Sequence[RequirementLike],
        budget: Budget,
        output_type: type[BaseModel] | None,
        plan: Plan | None,
        data_types: Mapping[str, type[BaseModel]],
        run_id: str,
        handlers: list[EventHandler],
        corpus_name: str | None,
    ) -> None:
        self.m = maestro
        self.task = task
        self.retriever = corpus
        self.corpus_name = corpus_name
        self.requirements: list[Requirement] = normalize_requirements(requirements)
        self.budget = budget
        self.output_type = output_type
        self.user_plan = plan
        self.data_types = dict(data_types)
        self.run_id = run_id
        self.handlers = handlers
        self.events: list[Event] = []
        self.pending: list[Awaitable[None]] = []
        self.meter = UsageMeter(budget.limits)
        self.started = time.perf_counter()
        self.planner = Planner(
            maestro.planner_model or maestro.model,
            retry=maestro.retry,
            max_reasks=maestro.max_reasks,
        )
        self.executor = Executor(
            maestro.model,
            corpus,
            concurrency=maestro.concurrency,
            mode=maestro.search_mode,
            output_tokens=maestro.output_tokens,
            retry=maestro.retry,
            max_reasks=maestro.max_reasks,
        )
        self.validator = Validator(
            maestro.judge_model or maestro.model,
            corpus,
            retry=maestro.retry,
            max_reasks=maestro.max_reasks,
        )

    def emit(self, event: Event) -> None:
        self.events.append(event)
        for handler in self.handlers:
            outcome = handler(event)
            if inspect.isawaitable(outcome):
                self.pending.append(outcome)

    async def _flush(self) -> None:
        while self.pending:
            await self.pending.pop(0)

    def _on_plan_attempt(self, attempt: Attempt) -> None:
        self.emit(
            ModelAttempted(
                run_id=self.run_id,
                purpose="plan",
                model=attempt.model,
                outcome=attempt.outcome,
                error=attempt.error,
                usage=attempt.usage,
                seconds=attempt.seconds,
            )
        )

    def _on_plan_rejected(self, problems: str, attempt: int) -> None:
        self.emit(PlanRejected(run_id=self.run_id, problems=problems, attempt=attempt))

    async def go(self) -> RunResult:
        self.emit(
            RunStarted(
                run_id=self.run_id,
                task=self.task,
                corpus=self.corpus_name,
                requirements=[r.description for r in self.requirements],
                budget=self.budget.model_dump(),
            )
        )
        documents = await self.retriever.documents() if self.retriever else []
        doc_ids = [d.id for d in documents]
        if self.user_plan is not None:
            problems = self.user_plan.problems(document_ids=doc_ids if self.retriever else None)
            if problems:
                raise PlanError(problems)
            plan = self.user_plan
            self.emit(PlanCreated(run_id=self.run_id, plan=plan, source="user"))
        else:
            try:
                plan = await self.planner.plan(
                    self.task,
                    documents=documents,
                    requirements=self.requirements,
                    budget=self.budget,
                    meter=self.meter,
                    on_attempt=self._on_plan_attempt,
                    on_rejected=self._on_plan_rejected,
                )
            except BudgetExceeded as exc:
                return await self._finish(
                    None, [], error=f"planning stopped: {exc}", exhausted=exc.limit
                )
            except PlanError as exc:
                return await self._finish(None, [], error=f"no valid plan: {exc}")
            self.emit(PlanCreated(run_id=self.run_id, plan=plan, source="planner"))
        await self._flush()

        rounds: list[RoundRecord] = []
        best: _Candidate | None = None
        reuse: dict[str, StepResult] = {}
        feedback: dict[str, str] = {}
        exhausted: str | None = None
        round_no = 1
        while True:
            execution = await self.executor.execute(
                plan,
                task=self.task,
                run_id=self.run_id,
                meter=self.meter,
                emit=self.emit,
                round=round_no,
                reuse=reuse,
                feedback=feedback,
                final_type=self.output_type,
                data_types=self.data_types,
            )
            results = execution.results
            output, text = self._final_output(plan, results)
            report, judge_error = await self.validator.validate(
                task=self.task,
                plan=plan,
                results=results,
                requirements=self.requirements,
                output=output,
                output_type=self.output_type,
                round=round_no,
                run_id=self.run_id,
                meter=self.meter,
                emit=self.emit,
            )
            self.emit(
                ValidationFinished(
                    run_id=self.run_id, round=round_no, passed=report.passed, results=report.results
                )
            )
            candidate = _Candidate(plan, results, report, output, text)
            if best is None or candidate.rank() > best.rank():
                best = candidate
            budget_error = execution.budget_error or judge_error
            if budget_error is not None:
                exhausted = budget_error.limit
                self.emit(
                    BudgetExhausted(
                        run_id=self.run_id, limit=budget_error.limit, usage=self.meter.usage
                    )
                )
            decision = self._decide(plan, results, report, rounds, round_no, budget_error)
            rounds.append(RoundRecord(round=round_no, plan=plan, report=report, decision=decision))
            await self._flush()
            match decision.action:
                case "finish":
                    break
                case "fix":
                    rerun = set(decision.step_ids) | plan.dependants(decision.step_ids)
                    feedback = _feedback(report, decision.step_ids, plan.final.id)
                    reuse = {k: v for k, v in results.items() if k not in rerun}
                    self.emit(
                        FixStarted(
                            run_id=self.run_id,
                            round=round_no + 1,
                            step_ids=sorted(rerun),
                            reason=decision.reason,
                        )
                    )
                case "replan":
                    self.emit(
                        Replanned(
                            run_id=self.run_id,
                            round=round_no + 1,
                            kept=decision.step_ids,
                            reason=decision.reason,
                        )
                    )
                    try:
                        plan = await self.planner.plan(
                            self.task,
                            documents=documents,
                            requirements=self.requirements,
                            budget=self.budget,
                            meter=self.meter,
                            on_attempt=self._on_plan_attempt,
                            on_rejected=self._on_plan_rejected,
                            replan=(plan, results, _failure_text(report.failed), decision.step_ids),
                        )
                    except BudgetExceeded as exc:
                        exhausted = exc.limit
                        self.emit(
                            BudgetExhausted(
                                run_id=self.run_id, limit=exc.limit, usage=self.meter.usage
                            )
                        )
                        break
                    except PlanError:
                        break  # keep the best result so far; the events say why
                    self.emit(
                        PlanCreated(
                            run_id=self.run_id, plan=plan, round=round_no + 1, source="replan"
                        )
                    )
                    reuse = {k: results[k] for k in decision.step_ids if k in results}
                    feedback = {}
                case _ as unreachable:
                    assert_never(unreachable)
            round_no += 1
        assert best is not None
        return await self._finish(best, rounds, exhausted=exhausted)

    def _final_output(self, plan: Plan, results: Mapping[str, StepResult]) -> tuple[Any, str]:
        final = results.get(plan.final.id)
        if final is None or final.status != "done":
            return None, ""
        if self.output_type is None:
            return final.answer, final.answer
        try:
            output = self.output_type.model_validate(final.data or {})
        except ValidationError:
            return final.data, str(final.data)  # the validator reports the schema failure
        return output, output.model_dump_json()

    def _remaining_requests(self) -> int | None:
        limit = self.budget.max_requests
        return None if limit is None else limit - self.meter.usage.requests

    def _decide(
        self,
        plan: Plan,
        results: Mapping[str, StepResult],
        report: ValidationReport,
        rounds: Sequence[RoundRecord],
        round_no: int,
        budget_error: BudgetExceeded | None,
    ) -> Decision:
        """Finish, fix or replan, and why."""
        if report.passed:
            return Decision(action="finish", reason="every requirement and check passed")
        if budget_error is not None:
            return Decision(action="finish", reason=f"the budget is spent ({budget_error.limit})")
        if round_no >= self.budget.max_rounds:
            return Decision(
                action="finish",
                reason=f"max_rounds={self.budget.max_rounds} reached with "
                f"{len(report.failed)} check(s) failing",
            )
        failing_steps = sorted({r.step_id for r in report.failed if r.step_id})
        previous = rounds[-1].decision if rounds else None
        judged = any(r.kind == "judge" for r in self.requirements)
        if failing_steps:
            repeated = (
                previous is not None
                and previous.action == "fix"
                and set(failing_steps) <= set(previous.step_ids)
            )
            if not repeated:
                decision = Decision(
                    action="fix",
                    step_ids=failing_steps,
                    reason=f"step(s) {', '.join(failing_steps)} failed checks: "
                    + _failure_text([r for r in report.failed if r.step_id], limit=3),
                )
                return self._affordable(decision, plan, judged)
            keep = _passed_steps(plan, results, failing_steps)
            return self._affordable(
                Decision(
                    action="replan",
                    step_ids=keep,
                    reason=f"re-running {', '.join(failing_steps)} did not fix them; revising the "
                    "plan around the steps that passed",
                ),
                plan,
                judged,
            )
        final = plan.final.id
        if previous is None or previous.action != "fix" or final not in previous.step_ids:
            return self._affordable(
                Decision(
                    action="fix",
                    step_ids=[final],
                    reason="the output fails "
                    + _failure_text(report.failed, limit=3)
                    + "; revising the final step with this feedback",
                ),
                plan,
                judged,
            )
        keep = _passed_steps(plan, results, [final])
        return self._affordable(
            Decision(
                action="replan",
                step_ids=keep,
                reason="revising the final step did not meet "
                + ", ".join(r.id for r in report.failed)
                + "; the plan likely lacks evidence, so the planner revises it",
            ),
            plan,
            judged,
        )

    def _affordable(self, decision: Decision, plan: Plan, judged: bool) -> Decision:
        """Finish now rather than start a round the request budget cannot complete."""
        remaining = self._remaining_requests()
        if remaining is None:
            return decision
        if decision.action == "fix":
            needed = len(set(decision.step_ids) | plan.dependants(decision.step_ids))
        else:
            needed = 2  # a plan and at least one step
        needed += 1 if judged else 0
        if remaining < needed:
            return Decision(
                action="finish",
                reason=f"{decision.action} needs ~{needed} model call(s) but only "
                f"{remaining} remain in the budget",
            )
        return decision

    async def _finish(
        self,
        best: _Candidate | None,
        rounds: list[RoundRecord],
        *,
        error: str | None = None,
        exhausted: str | None = None,
    ) -> RunResult:
        wall = time.perf_counter() - self.started
        status: RunStatus
        if best is None:
            status = "failed"
        elif best.report.passed:
            status = "passed"
        elif best.text.strip():
            status = "unmet"
        else:
            status = "failed"
            error = error or "no step produced a usable output"
        final = best.results.get(best.plan.final.id) if best else None
        self.emit(
            RunFinished(
                run_id=self.run_id,
                status=status,
                usage=self.meter.usage,
                wall_seconds=wall,
                error=error,
            )
        )
        await self._flush()
        result = RunResult(
            run_id=self.run_id,
            task=self.task,
            status=status,
            output=best.output if best else None,
            output_text=best.text if best else "",
            claims=final.claims if final else [],
            citations=final.citations if final else [],
            requirements=best.report.results if best else [],
            plan=best.plan if best else None,
            steps=best.results if best else {},
            rounds=rounds,
            usage=self.meter.usage,
            wall_seconds=wall,
            budget_exhausted=exhausted,
            error=error,
            events=list(self.events),
        )
        if status != "passed" and self.budget.raise_on_unmet:
            raise RequirementsNotMet(result)
        return result


def _passed_steps(
    plan: Plan, results: Mapping[str, StepResult], failing: Sequence[str]
) -> list[str]:
    tainted = set(failing) | plan.dependants(failing) | {plan.final.id}
    return [
        s.id
        for s in plan.steps
        if s.id not in tainted and results.get(s.id) is not None and results[s.id].status == "done"
    ]


def _failure_text(failed: Sequence[Any], limit: int = 10) -> str:
    return "; ".join(f"{r.id} ({r.description}): {r.reason}" for r in failed[:limit])


def _feedback(report: ValidationReport, step_ids: Sequence[str], final_id: str) -> dict[str, str]:
    """Failure reasons for each step to be re-run; run-level failures go to the final step."""
    out: dict[str, str] = {}
    for sid in step_ids:
        mine = [r for r in report.failed if r.step_id == sid]
        if sid == final_id:
            mine += [r for r in report.failed if r.step_id is None]
        if mine:
            out[sid] = "\n".join(f"- {r.description}: {r.reason}" for r in mine)
    return out
