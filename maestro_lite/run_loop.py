"""The round loop of one run: plan, execute, validate, decide; record; finish.

:class:`_Run` holds the state of one call of :meth:`Maestro.run` or :meth:`Maestro.resume`;
users never see it. Each round ends in one recorded :class:`~maestro_lite.result.Decision`
from a closed set (finish, fix, replan).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from pydantic import BaseModel, ValidationError

from .budget import Budget
from .documents.model import DocumentInfo
from .errors import (
    BudgetExceeded,
    EmptyCorpus,
    PlanError,
    RequirementsNotMet,
    StructuredOutputError,
)
from .events import (
    BudgetExhausted,
    Event,
    EventHandler,
    FixStarted,
    ModelAttempted,
    PlanCreated,
    PlanRejected,
    Replanned,
    RoundFinished,
    RunFinished,
    RunInterrupted,
    RunResumed,
    RunStarted,
    ValidationFinished,
)
from .executor import Executor
from .models.calls import Attempt
from .plan import Plan
from .planner import Planner
from .requirements import Requirement
from .result import Decision, RoundRecord, RunResult, RunStatus, StepResult, ValidationReport
from .retrieval import Retriever
from .runs import ResumePoint
from .usage import Usage, UsageMeter
from .validator import Validator
from .version_plan import version_plan


@dataclass(frozen=True)
class RunParts:
    """What a run works with, built by :class:`~maestro_lite.Maestro` for each run: the
    planner, executor and validator, each on its model in the run's model stack."""

    planner: Planner
    executor: Executor
    validator: Validator
    plan_versions: bool = True
    """A task that names document versions by year gets its per-version plan without a
    planner call (:mod:`.version_plan`)."""


_LoopState = tuple[
    Plan, list[RoundRecord], "_Candidate | None", dict[str, StepResult], dict[str, str]
]
"""Plan, rounds so far, best candidate, results to reuse, feedback: where the loop starts."""


@dataclass
class _Candidate:
    plan: Plan
    results: dict[str, StepResult]
    report: ValidationReport
    output: Any
    text: str

    def rank(self) -> tuple[bool, bool, float, float]:
        """Higher is better: every check passed, then a usable output, then the share of
        checks passed, then the run-level score. A share, not a count: a replanned round
        with more steps has more checks to pass, and more passed checks of an empty output
        must not beat a real answer."""
        results = self.report.results
        share = sum(r.passed for r in results) / len(results) if results else 1.0
        return (self.report.passed, bool(self.text.strip()), share, self.report.score)


class _Run:
    """The state of one run (one instance per call of :meth:`Maestro.run`)."""

    def __init__(
        self,
        parts: RunParts,
        task: str,
        *,
        corpus: Retriever | None,
        requirements: list[Requirement],
        budget: Budget,
        budget_changed: bool = False,
        output_type: type[BaseModel] | None,
        plan: Plan | None,
        data_types: Mapping[str, type[BaseModel]],
        run_id: str,
        handlers: list[EventHandler],
        corpus_name: str | None,
        usage: Usage | None = None,
        resume: ResumePoint | None = None,
        history: Sequence[Event] = (),
    ) -> None:
        self.task = task
        self.retriever = corpus
        self.corpus_name = corpus_name
        self.requirements = requirements
        self.budget = budget
        self.budget_changed = budget_changed
        self.output_type = output_type
        self.user_plan = plan
        self.data_types = dict(data_types)
        self.run_id = run_id
        self.handlers = handlers
        self.resume = resume
        self.events: list[Event] = list(history)
        self.pending: list[Awaitable[None]] = []
        self.meter = UsageMeter(budget.limits)
        if usage is not None:  # spent for the run before it started (a pipeline's preflight)
            self.meter.add(usage)
        self.started = time.perf_counter()
        self.finished = False
        self.exhausted: str | None = None
        self.documents: list[DocumentInfo] | None = None
        if resume is not None:  # the budget covers the whole run, earlier sessions included
            self.meter.add(resume.usage)
            self.started -= resume.active_seconds
            self.exhausted = resume.exhausted
        self.planner = parts.planner
        self.executor = parts.executor
        self.validator = parts.validator
        self.plan_versions = parts.plan_versions

    def emit(self, event: Event) -> None:
        self.events.append(event)
        for handler in self.handlers:
            outcome = handler(event)
            if inspect.isawaitable(outcome):
                self.pending.append(outcome)

    async def _flush(self) -> None:
        while self.pending:
            await self.pending.pop(0)

    def interrupted(self, error: BaseException) -> None:
        """Record that the run stopped before finishing (a no-op once it finished)."""
        if self.finished:
            return
        self.finished = True
        cause = str(error) or type(error).__name__
        self.emit(RunInterrupted(run_id=self.run_id, error=cause, usage=self.meter.usage))

    def _on_plan_attempt(self, attempt: Attempt) -> None:
        self.emit(ModelAttempted.of(self.run_id, "plan", attempt))

    def _on_plan_rejected(self, problems: str, attempt: int) -> None:
        self.emit(PlanRejected(run_id=self.run_id, problems=problems, attempt=attempt))

    async def prepare(self) -> list[DocumentInfo]:
        """The corpus's documents, once; and a declared plan checked against them and the
        budget. :meth:`Maestro.run` calls this before it records the run, so a plan that
        can never run is refused rather than stored as a resumable run.

        Raises:
            PlanError: The declared plan is invalid; the error lists every problem.
            EmptyCorpus: The run would search a corpus without documents.
        """
        if self.documents is None:
            self.documents = await self.retriever.documents() if self.retriever else []
        if self.retriever is not None and not self.documents and self._searches():
            raise EmptyCorpus(str(getattr(self.retriever, "name", "")) or "the corpus")
        needs_check = self.resume is None or self.resume.plan is None
        if self.user_plan is not None and needs_check:
            problems = self.user_plan.problems(
                documents=self.documents if self.retriever else None,
                max_steps=self.budget.max_steps,
            )
            if problems:
                raise PlanError(
                    problems,
                    hint="Fix the plan's steps (Plan.problems(documents=...) lists them), "
                    "or raise Budget(max_steps=...) for a larger plan.",
                )
        return self.documents

    def _version_plan(self, documents: Sequence[DocumentInfo]) -> Plan | None:
        if not self.plan_versions or self.retriever is None:
            return None
        return version_plan(self.task, documents, max_steps=self.budget.max_steps)

    def _searches(self) -> bool:
        """Whether the run retrieves: a planned run does; a declared plan, if a step has
        queries."""
        plan = self.user_plan
        return plan is None or any(step.queries for step in plan.steps)

    async def go(self) -> RunResult:
        resume = self.resume
        if resume is None:
            self.emit(
                RunStarted(
                    run_id=self.run_id,
                    task=self.task,
                    corpus=self.corpus_name,
                    requirements=[r.description for r in self.requirements],
                    budget=self.budget.model_dump(),
                )
            )
        else:
            self.emit(
                RunResumed(
                    run_id=self.run_id,
                    round=resume.round,
                    reused=sorted(resume.finished_in_round),
                    usage=self.meter.usage,
                    budget=self.budget if self.budget_changed else None,
                )
            )
        documents = await self.prepare()
        if resume is not None and resume.plan is not None:
            plan = resume.plan  # recorded: never planned (or paid for) twice
        elif self.user_plan is not None:
            plan = self.user_plan
            self.emit(PlanCreated(run_id=self.run_id, plan=plan, source="user"))
        elif (versions := self._version_plan(documents)) is not None:
            plan = versions  # the task names versions by year: no planner call needed
            self.emit(PlanCreated(run_id=self.run_id, plan=plan, source="versions"))
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
        round_no = 1
        if resume is not None:
            restored = await self._restore(resume, plan, documents)
            if isinstance(restored, RunResult):
                return restored
            plan, rounds, best, reuse, feedback = restored
            round_no = resume.round
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
                self.exhausted = budget_error.limit
                self.emit(
                    BudgetExhausted(
                        run_id=self.run_id, limit=budget_error.limit, usage=self.meter.usage
                    )
                )
            decision = self._decide(plan, results, report, rounds, round_no, budget_error)
            rounds.append(RoundRecord(round=round_no, plan=plan, report=report, decision=decision))
            self.emit(RoundFinished(run_id=self.run_id, round=round_no, decision=decision))
            await self._flush()
            match decision.action:
                case "finish":
                    break
                case "fix":
                    rerun = set(decision.step_ids) | plan.dependants(decision.step_ids)
                    reuse, feedback = _carry(decision, plan, results, report)
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
                    revised = await self._replan(
                        plan, results, report, decision, documents, round_no + 1
                    )
                    if revised is None:
                        break  # keep the best result so far; the events say why
                    plan = revised
                    reuse, feedback = _carry(decision, plan, results, report)
                case _ as unreachable:
                    assert_never(unreachable)
            round_no += 1
        assert best is not None
        return await self._finish(best, rounds, exhausted=self.exhausted)

    async def _replan(
        self,
        plan: Plan,
        results: dict[str, StepResult],
        report: ValidationReport,
        decision: Decision,
        documents: Sequence[DocumentInfo],
        round_no: int,
    ) -> Plan | None:
        """The planner's revision of ``plan`` for round ``round_no``; ``None`` when the
        budget or the planner gave out."""
        try:
            revised = await self.planner.plan(
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
            self.exhausted = exc.limit
            self.emit(BudgetExhausted(run_id=self.run_id, limit=exc.limit, usage=self.meter.usage))
            return None
        except PlanError:
            return None
        except StructuredOutputError as exc:
            # The model never wrote a valid plan: the run keeps its best result, and says why.
            self._on_plan_rejected(f"no valid revised plan: {exc}", 0)
            return None
        self.emit(PlanCreated(run_id=self.run_id, plan=revised, round=round_no, source="replan"))
        return revised

    async def _restore(
        self, resume: ResumePoint, plan: Plan, documents: Sequence[DocumentInfo]
    ) -> RunResult | _LoopState:
        """The loop's state where a resumed run left off: the rounds already decided (and
        the best result among them), then the last decision applied as the loop would."""
        rounds = [c.record for c in resume.completed]
        best: _Candidate | None = None
        for done in resume.completed:
            output, text = self._final_output(done.record.plan, done.results)
            candidate = _Candidate(done.record.plan, done.results, done.record.report, output, text)
            if best is None or candidate.rank() > best.rank():
                best = candidate
        reuse: dict[str, StepResult] = {}
        feedback: dict[str, str] = {}
        if resume.last is not None:
            last, results = resume.last.record, resume.last.results
            if last.decision.action == "finish":
                assert best is not None
                return await self._finish(best, rounds, exhausted=self.exhausted)
            if resume.replan_pending:
                revised = await self._replan(
                    last.plan, results, last.report, last.decision, documents, resume.round
                )
                if revised is None:
                    assert best is not None
                    return await self._finish(best, rounds, exhausted=self.exhausted)
                plan = revised
            reuse, feedback = _carry(last.decision, last.plan, results, last.report)
        reuse.update(resume.finished_in_round)
        return plan, rounds, best, reuse, feedback

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
        self.finished = True
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


def _carry(
    decision: Decision, plan: Plan, results: dict[str, StepResult], report: ValidationReport
) -> tuple[dict[str, StepResult], dict[str, str]]:
    """What the next round keeps from this one, and the feedback for the steps it re-runs:
    a fix keeps everything but the failing steps and their dependants; a replan keeps the
    steps it names."""
    if decision.action == "replan":
        return {k: results[k] for k in decision.step_ids if k in results}, {}
    rerun = set(decision.step_ids) | plan.dependants(decision.step_ids)
    reuse = {k: v for k, v in results.items() if k not in rerun}
    return reuse, _feedback(report, decision.step_ids, plan.final.id, results)


def _feedback(
    report: ValidationReport,
    step_ids: Sequence[str],
    final_id: str,
    results: Mapping[str, StepResult],
) -> dict[str, str]:
    """For each step to be re-run: its previous answer and why it failed (run-level failures
    go to the final step). Quoting the answer lets the model see what to change."""
    out: dict[str, str] = {}
    for sid in step_ids:
        mine = [r for r in report.failed if r.step_id == sid]
        if sid == final_id:
            mine += [r for r in report.failed if r.step_id is None]
        if mine:
            previous = results[sid].answer if sid in results else ""
            lines = [f'Your previous answer was: "{previous}"'] if previous else []
            lines += [f"- {r.description}: {r.reason}" for r in mine]
            out[sid] = "\n".join(lines)
    return out
