"""Deep research: a complex, multi-part question over a corpus becomes a cited report.

How the plan is made (``plan_mode``):

* ``"decompose"`` (the default): the model splits the question into at most three
  sub-questions in one short structured call, and the plan around them is declared in
  Python: one ``answer`` step per sub-question, each seeing the answers before it (a later hop
  needs the entity an earlier one found), then a final step that retrieves again with the
  whole question and answers it from its own evidence and the sub-answers. Reading a question
  is the one thing only a model can do here; the rest (retrieval depth, dependencies, where
  the final evidence comes from) is fixed. Measured with the local 1.5B model, the full
  planner spent a minute and a half writing a verbose plan and restricted steps to the wrong
  documents; the sub-question call costs a few seconds of output.
* ``"planner"``: Maestro's planner writes the whole plan (kinds, queries, document filters);
  worth it with a stronger model.

A plan declared in Python can still be passed (``plan=``) when the shape is known.

Every claim of the answer carries citations (document, page, exact quote) that the framework
resolved from evidence ids and the validator checked against the stored text. The default
requirements ask for every claim cited and every part of the question addressed; the
validator's built-in checks add that figures and dates are in the cited text and that where
sources disagree the answer states each side with its source.

Example::

    maestro = Maestro(model_from_settings(Settings()))
    corpus = await Corpus.open("research")
    report = await Research(maestro).run("When will the Skylark S3 launch?", corpus=corpus)
    report.write("out/")            # out/research.md and out/research.json
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from maestro_lite import (
    Budget,
    BudgetPreset,
    Citation,
    Claim,
    EventHandler,
    Maestro,
    Message,
    Plan,
    Requirement,
    RequirementLike,
    Retriever,
    RunResult,
    Step,
    StepKind,
    Usage,
    UsageMeter,
    UserError,
)

from ._budget import Preflight, ask
from ._hops import find_bridge, hops_plan
from ._render import (
    CitationIndex,
    RunFacts,
    one_line,
    status_detail,
    unique_citations,
)
from .job_types import ResearchJob

__all__ = [
    "DocumentRef",
    "Finding",
    "Research",
    "ResearchReport",
    "default_requirements",
    "research_plan",
]


def default_requirements() -> list[Requirement]:
    """Every claim cited; every part of the question addressed.

    Contradictions between sources are not left to the judge (a 1.5B judge answered "there
    are no contradictions" next to two launch dates): the validator's built-in conflicts
    check finds them among the evidence and holds the answer to stating each side."""
    return [
        Requirement.cite_every_claim(),
        Requirement.judge("The answer addresses every part of the question.", id="complete"),
    ]


class DocumentRef(BaseModel):
    """A document a run read."""

    document_id: str
    title: str
    path: str


class Finding(BaseModel):
    """What one step of the plan found: a sub-question and its cited answer."""

    step_id: str
    kind: StepKind
    instruction: str
    status: Literal["done", "failed", "skipped"]
    answer: str = ""
    claims: list[Claim] = Field(default_factory=list)
    error: str | None = None


class ResearchReport(RunFacts):
    """A research run as a report: the cited answer, what each step found, and the checks."""

    question: str
    status: Literal["passed", "unmet", "failed"]
    """``passed``: every requirement met; ``unmet``: an answer, some requirements unmet."""
    answer: str
    """The final answer (JSON for a typed output)."""
    data: dict[str, Any] | None = None
    """The final output as data, when the pipeline had an ``output_type``."""
    claims: list[Claim] = Field(default_factory=list)
    """The answer's claims, each with its citations."""
    findings: list[Finding] = Field(default_factory=list)
    """Each step of the plan except the final one, in plan order."""
    consulted: list[DocumentRef] = Field(default_factory=list)
    """Every document retrieval brought to any step."""

    @property
    def citations(self) -> list[Citation]:
        """The answer's citations, each span once."""
        return unique_citations(self.claims)

    @classmethod
    def from_result(cls, question: str, result: RunResult) -> ResearchReport:
        """The report of a finished run."""
        plan = result.plan
        final_id = plan.final.id if plan else None
        findings: list[Finding] = []
        consulted: dict[str, DocumentRef] = {}
        model = None
        for step in plan.topological() if plan else []:
            step_result = result.steps.get(step.id)
            if step_result is None:
                continue
            model = model or step_result.model
            for hit in step_result.retrieved:
                chunk = hit.chunk
                consulted.setdefault(
                    chunk.document_id,
                    DocumentRef(
                        document_id=chunk.document_id, title=one_line(chunk.title), path=chunk.path
                    ),
                )
            if step.id == final_id:
                continue
            findings.append(
                Finding(
                    step_id=step.id,
                    kind=step.kind,
                    instruction=step.instruction,
                    status=step_result.status,
                    answer=step_result.answer,
                    claims=step_result.claims,
                    error=step_result.error,
                )
            )
        output = result.output
        data = output.model_dump(mode="json") if isinstance(output, BaseModel) else None
        return cls(
            question=question,
            status=result.status,
            answer=result.output_text,
            data=data,
            claims=result.claims,
            findings=findings,
            requirements=result.requirements,
            consulted=list(consulted.values()),
            run_id=result.run_id,
            model=model,
            usage=result.usage,
            wall_seconds=result.wall_seconds,
            budget_exhausted=result.budget_exhausted,
            error=result.error,
            plan=plan,
        )

    def to_markdown(self) -> str:
        """The report as Markdown: answer with numbered citations, findings, checks, sources."""
        index = CitationIndex()
        lines = [
            "# Research report",
            "",
            f"**Question:** {one_line(self.question)}",
            "",
            f"**Status:** {self.status} ({status_detail(self.requirements)})",
            "",
            "## Answer",
            "",
            self.answer.strip() or "_(no answer)_",
            "",
        ]
        if self.claims:
            lines += ["Claims and their sources:", "", *index.claim_lines(self.claims), ""]
        if self.error:
            lines += [f"> {one_line(self.error)}", ""]
        if self.findings:
            lines += ["## Findings", ""]
            for finding in self.findings:
                lines += [f"### {finding.step_id}: {one_line(finding.instruction)}", ""]
                if finding.status != "done":
                    lines += [f"_{finding.status}: {one_line(finding.error or '')}_", ""]
                    continue
                lines += [one_line(finding.answer), "", *index.claim_lines(finding.claims), ""]
        lines += self.closing(index)
        return "\n".join(lines)

    def write(self, directory: str | Path, *, stem: str = "research") -> tuple[Path, Path]:
        """Write ``<stem>.md`` and ``<stem>.json`` into ``directory`` (created if needed)."""
        return super().write(directory, stem=stem)


class _SubQuestions(BaseModel):
    sub_questions: list[str] = Field(
        description="1 to 3 simple questions, in the order they must be answered",
        min_length=1,
        max_length=3,
    )


_DECOMPOSE = (
    "Split the question into at most 3 simple sub-questions, in the order they must be "
    "answered; each must be answerable from one document. A later sub-question may refer to "
    "the answer of an earlier one. If the question is already simple, return it alone."
)


CITED_FACTS = (
    "A direct answer in one or two sentences; then one claim per fact the answer states (a "
    "date, name or figure), each citing the ids of the sentences that state exactly that fact. "
    "If the sources disagree, give each side with its source."
)
"""What each research step must produce. Without it the local 1.5B model copied evidence
sentences as its claims, citing sentences unrelated to its answer; with it, claims state the
answer's facts and cite the sentences that hold them."""


def research_plan(
    question: str,
    sub_questions: Sequence[str],
    *,
    k: int = 4,
    typed: bool = False,
    sub_question_use: Literal["steps", "queries"] = "steps",
) -> Plan:
    """The declared research plan: a chain of ``answer`` steps, one per sub-question, then a
    final step that retrieves with the whole question and answers it from everything. A
    question that does not split is one step, searched with both phrasings.

    Args:
        typed: The final step fills an output type (its fields carry their own evidence), so
            it is not asked for prose claims.
        sub_question_use: ``steps``: each sub-question is answered in its own step (the
            chain above); ``queries``: the sub-questions only widen retrieval, and one step,
            searched with the question and every sub-question, answers the question.
    """
    final_output = "" if typed else CITED_FACTS
    if len(sub_questions) <= 1 or sub_question_use == "queries":
        if sub_question_use == "queries":
            queries = list(dict.fromkeys([question, *sub_questions]))
            why = "Sub-questions widen retrieval; one cited answer from all the evidence."
        else:
            queries = list(dict.fromkeys([*sub_questions, question]))
            why = "A simple question: one retrieval, one cited answer."
        return Plan(
            steps=[
                Step(
                    id="answer",
                    kind="answer",
                    instruction=question,
                    queries=queries,
                    k=k,
                    expected_output=final_output,
                )
            ],
            rationale=why,
        )
    steps: list[Step] = []
    for n, sub in enumerate(sub_questions, start=1):
        steps.append(
            Step(
                id=f"q{n}",
                kind="answer",
                instruction=sub,
                queries=[sub],
                depends_on=[f"q{n - 1}"] if n > 1 else [],
                k=k,
                expected_output=CITED_FACTS,
            )
        )
    steps.append(
        Step(
            id="answer",
            kind="synthesize",
            instruction=f"Answer the question: {question}",
            queries=[question],
            depends_on=[s.id for s in steps],
            k=k,
            expected_output=final_output,
        )
    )
    return Plan(steps=steps, rationale="Sub-questions in order, then the whole question.")


SubQuestionUse = Literal["steps", "queries", "hops"]
"""How ``decompose`` mode uses the question's parts (see :class:`Research`)."""


class Research:
    """The deep-research pipeline.

    Args:
        maestro: The orchestrator (its model plans, answers and judges).
        requirements: What the report must meet; :func:`default_requirements` when ``None``.
        budget: The run's budget (``"low"``, ``"medium"``, ``"high"`` or a :class:`Budget`).
        output_type: A pydantic model for the final answer (each field cited), for callers
            that need data rather than prose.
        plan_mode: ``"decompose"``: the model lists sub-questions and the plan is declared
            around them; ``"planner"``: the planner writes the whole plan.
        k: Chunks retrieved per step in ``decompose`` mode.
        max_sub_questions: Most sub-questions in ``decompose`` mode; 1 answers the question
            in one step without asking the model to split it (the fastest cited answer).
        sub_question_use: In ``decompose`` mode, ``"steps"`` answers each sub-question in a
            step of its own before the whole question; ``"queries"`` only searches with them
            and answers the question once, from everything found: fewer calls, and no wrong
            intermediate answer for a small model to build on (see BENCHMARKS.md);
            ``"hops"`` splits nothing: each hop names the entity the question hinges on
            from what the last search found, the next search is made with that name
            (IRCoT-style), and one cited step answers from what the question and every
            entity retrieved (:mod:`pipelines._hops`).
        max_hops: Hop calls in ``"hops"`` mode (each one short call); hops stop early when
            the model names no new entity.
    """

    def __init__(
        self,
        maestro: Maestro,
        *,
        requirements: Sequence[RequirementLike] | None = None,
        budget: Budget | BudgetPreset = "medium",
        output_type: type[BaseModel] | None = None,
        plan_mode: Literal["decompose", "planner"] = "decompose",
        k: int = 4,
        max_sub_questions: int = 3,
        sub_question_use: SubQuestionUse = "steps",
        max_hops: int = 1,
    ) -> None:
        if not 1 <= max_sub_questions <= 3:
            raise ValueError("max_sub_questions must be 1, 2 or 3")
        if not 1 <= max_hops <= 3:
            raise ValueError("max_hops must be 1, 2 or 3")
        self.sub_question_use: SubQuestionUse = sub_question_use
        self.max_hops = max_hops
        self.maestro = maestro
        self.requirements = (
            list(requirements) if requirements is not None else default_requirements()
        )
        self.budget = budget
        self.output_type = output_type
        self.plan_mode = plan_mode
        self.k = k
        self.max_sub_questions = max_sub_questions

    @classmethod
    def from_job(cls, maestro: Maestro, job: ResearchJob) -> Research:
        """The pipeline a :class:`~pipelines.job_types.ResearchJob` describes (its requirements
        after the default ones, unless it turns those off): what ``maestro research`` runs in
        the foreground and what a worker runs for a scheduled one."""
        requirements: list[RequirementLike] = list(job.requirements)
        if job.default_requirements:
            requirements = [*default_requirements(), *requirements]
        return cls(
            maestro,
            requirements=requirements,
            budget=job.budget,
            plan_mode=job.plan_mode,
            max_sub_questions=job.max_sub_questions,
            sub_question_use=job.sub_question_use,
        )

    async def decompose(
        self, question: str, *, meter: UsageMeter | None = None
    ) -> tuple[list[str], Usage]:
        """The question's sub-questions (the question itself when it is simple).

        Args:
            meter: The usage and limits the call counts against (a meter with this
                pipeline's budget when ``None``); :meth:`run` passes the run's.

        Raises:
            BudgetExceeded: The call would break a limit of ``meter``; it was not made.
            StructuredOutputError: The model never gave a valid list.
        """
        split, usage = await ask(
            self.maestro,
            [Message.system(_DECOMPOSE), Message.user(f"Question: {question}")],
            _SubQuestions,
            max_tokens=160,
            meter=meter or UsageMeter(Budget.of(self.budget).limits),
        )
        subs = [q.strip() for q in split.sub_questions if q.strip()]
        return list(dict.fromkeys(subs))[: self.max_sub_questions] or [question], usage

    async def run(
        self,
        question: str,
        *,
        corpus: str | Retriever,
        plan: Plan | None = None,
        on_event: EventHandler | None = None,
    ) -> ResearchReport:
        """Research ``question`` over ``corpus`` and return the report.

        The split into sub-questions counts against the run's budget: it is made only when
        the budget leaves a call for the answer after it, and its usage is the run's. When
        the budget refuses it or the model gives no valid split, the question is answered in
        one step and the report's ``notes`` say why.

        Args:
            question: The question, possibly with several parts.
            corpus: A corpus name (resolved by the Maestro's store) or a retriever.
            plan: A plan declared in Python (no decomposition, no planner).
            on_event: Called with every event of the run (live progress).
        """
        preflight = Preflight(self.budget)
        entities: list[str] = []
        if plan is None and self.plan_mode == "decompose" and self.sub_question_use == "hops":
            entities = await self._hops(question, corpus, preflight)
            plan = hops_plan(question, entities, k=self.k, expected_output=self._final_output)
        elif plan is None and self.plan_mode == "decompose":
            subs = [question]
            if self.max_sub_questions > 1:
                split = await preflight.attempt(
                    "splitting the question",
                    lambda meter: self.decompose(question, meter=meter),
                    reserve=1,
                )
                subs = split[0] if split else subs
            plan = research_plan(
                question,
                subs,
                k=self.k,
                typed=self.output_type is not None,
                sub_question_use="queries" if self.sub_question_use == "queries" else "steps",
            )
        result = await self.maestro.run(
            question,
            corpus=corpus,
            requirements=self.requirements,
            budget=self.budget,
            output_type=self.output_type,
            plan=plan,
            on_event=on_event,
            usage=preflight.usage,
        )
        report = ResearchReport.from_result(question, result)
        hops = [
            Finding(
                step_id=f"hop{n}",
                kind="answer",
                instruction="The entity the question hinges on",
                status="done",
                answer=entity,
            )
            for n, entity in enumerate(entities, start=1)
        ]
        return report.model_copy(
            update={
                "findings": [*hops, *report.findings],
                "notes": preflight.notes,
                "budget_exhausted": report.budget_exhausted or preflight.exhausted,
            }
        )

    @property
    def _final_output(self) -> str:
        return "" if self.output_type is not None else CITED_FACTS

    async def _hops(
        self, question: str, corpus: str | Retriever, preflight: Preflight
    ) -> list[str]:
        """The entities the hops found, in order (see :mod:`pipelines._hops`); each hop is
        made only while the budget leaves a call for the answer after it."""
        if isinstance(corpus, str):
            if self.maestro.store is None:
                raise UserError(
                    f"corpus {corpus!r} was given by name but Maestro has no store",
                    hint="Pass store=Corpora(settings) to Maestro, or a retriever as corpus=.",
                )
            corpus = await self.maestro.store.corpus(corpus)
        retriever = corpus
        entities: list[str] = []
        for n in range(1, self.max_hops + 1):
            hop = await preflight.attempt(
                f"hop {n}",
                partial(
                    find_bridge, self.maestro, retriever, question, found=list(entities), k=self.k
                ),
                reserve=1,
            )
            if hop is None or not hop[0]:
                break
            entities.append(hop[0])
        return entities

    def run_sync(self, question: str, **kwargs: Any) -> ResearchReport:
        """:meth:`run` for code without an event loop."""
        return asyncio.run(self.run(question, **kwargs))
