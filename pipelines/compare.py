"""Document comparison: two or more documents become an aligned, cited comparison.

The plan is declared in Python, not asked of the planner: its shape follows from the inputs.
For documents D1..Dn and aspects A1..Am it is

* one ``answer`` step per (document, aspect), retrieval filtered to that document and
  limited to ``k`` chunks: what Di says on Aj, with citations;
* one ``compare`` step per aspect, over the n answers: what changed or differs;
* one final ``synthesize`` step over the aspect comparisons: the summary (with a single
  aspect, its comparison is the final step).

Per-document steps with a document filter and a few chunks each are what keep a 100-page
filing within budget: no step ever reads more than ``k`` chunks of one document, however long
it is, and retrieval picks which parts to read for each aspect. A small planner asked for the
same thing writes fewer, vaguer steps (FACTS.md: the 0.5B model wrote one step for a
three-part task) and costs a call. When the user names no aspects, the model proposes them
from the task and the opening of each document, in one short structured call.

Example::

    comparison = await Compare(maestro).run(
        "How did the supply agreement change?", corpus=corpus,
        documents=["supply_agreement_2023.pdf", "supply_agreement_2025.pdf"],
        aspects=["termination", "liability cap", "governing law"],
    )
    comparison.write("out/")        # out/comparison.md and out/comparison.json
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from maestro_lite import (
    Budget,
    BudgetPreset,
    Claim,
    DocumentInfo,
    EventHandler,
    Maestro,
    Message,
    ModelSettings,
    Plan,
    Requirement,
    RequirementLike,
    Retriever,
    RunResult,
    SearchFilter,
    Step,
    Usage,
    generate,
)

from ._budget import fit_budget
from ._docs import display_name, match_documents
from ._render import CitationIndex, RunFacts, one_line, requirements_table
from .research import DocumentRef

__all__ = [
    "AspectComparison",
    "Compare",
    "Comparison",
    "DocumentPosition",
    "comparison_plan",
]

StepStatus = Literal["done", "failed", "skipped", "missing"]


class DocumentPosition(BaseModel):
    """What one document says on one aspect."""

    document_id: str
    title: str
    status: StepStatus
    says: str = ""
    claims: list[Claim] = Field(default_factory=list)
    error: str | None = None


class AspectComparison(BaseModel):
    """One aspect across the documents: each one's position and what changed."""

    aspect: str
    positions: list[DocumentPosition]
    status: StepStatus
    changes: str = ""
    """What differs between the documents on this aspect, or what stayed the same."""
    claims: list[Claim] = Field(default_factory=list)
    error: str | None = None


class Comparison(RunFacts):
    """An aligned comparison of documents."""

    task: str
    status: Literal["passed", "unmet", "failed"]
    documents: list[DocumentRef]
    aspects: list[AspectComparison]
    aspects_source: Literal["user", "model"]
    """Whether the user named the aspects or the model proposed them."""
    summary: str = ""
    summary_claims: list[Claim] = Field(default_factory=list)

    def to_markdown(self) -> str:
        """The comparison as Markdown: summary, a table per aspect, sources."""
        index = CitationIndex()
        lines = [
            "# Comparison",
            "",
            f"**Task:** {one_line(self.task)}",
            "",
            "**Documents:** "
            + "; ".join(f"{d.title} (`{Path(d.path).name}`)" for d in self.documents),
            "",
            f"**Status:** {self.status}",
            "",
            "## Summary",
            "",
            one_line(self.summary) or "_(no summary)_",
            "",
        ]
        if self.summary_claims:
            lines += [*index.claim_lines(self.summary_claims), ""]
        if self.error:
            lines += [f"> {one_line(self.error)}", ""]
        for aspect in self.aspects:
            lines += [f"## {aspect.aspect}", "", "| document | what it says |", "|---|---|"]
            for p in aspect.positions:
                cited = " ".join(
                    f"{one_line(c.text)} {index.refs(c.citations)}".strip() for c in p.claims
                )
                text = cited or one_line(p.says) or f"_{p.status}: {one_line(p.error or '')}_"
                lines.append(f"| {p.title} | {text.replace('|', '/')} |")
            lines.append("")
            if aspect.changes or aspect.claims:
                lines += [f"**What changed:** {one_line(aspect.changes)}", ""]
                lines += [*index.claim_lines(aspect.claims), ""]
        table = requirements_table(self.requirements)
        if table:
            lines += ["## Requirements", "", *table, ""]
        if index.citations:
            lines += ["## Sources", "", *index.sources(), ""]
        lines += self.footer()
        return "\n".join(lines)

    def write(self, directory: str | Path, *, stem: str = "comparison") -> tuple[Path, Path]:
        """Write ``<stem>.md`` and ``<stem>.json`` into ``directory`` (created if needed)."""
        return super().write(directory, stem=stem)


def _position_id(doc: int, aspect: int) -> str:
    return f"d{doc}.a{aspect}"


def comparison_plan(
    task: str, documents: Sequence[DocumentInfo], aspects: Sequence[str], *, k: int = 3
) -> Plan:
    """The comparison plan: per (document, aspect) answers, per-aspect comparisons, summary.

    Args:
        task: The overall task (shown to every step).
        documents: The documents, in the order to present them (oldest first reads best).
        aspects: What to compare them on.
        k: Chunks retrieved per (document, aspect) step.
    """
    if len(documents) < 1 or not aspects:
        raise ValueError("a comparison needs at least one document and one aspect")
    titles = "; ".join(display_name(d) for d in documents)
    steps: list[Step] = []
    compares: list[str] = []
    for j, aspect in enumerate(aspects, start=1):
        positions = []
        for i, doc in enumerate(documents, start=1):
            step_id = _position_id(i, j)
            positions.append(step_id)
            steps.append(
                Step(
                    id=step_id,
                    kind="answer",
                    instruction=f"What does {display_name(doc)} say about {aspect}? "
                    "Give its exact figures, dates and terms.",
                    queries=[aspect],
                    filters=SearchFilter(document_ids=[doc.id]),
                    k=k,
                )
            )
        compare_id = f"a{j}"
        compares.append(compare_id)
        steps.append(
            Step(
                id=compare_id,
                kind="compare",
                instruction=f"Compare what the documents say about {aspect} ({titles}): give "
                "each document's position, then what changed or differs between them.",
                depends_on=positions,
            )
        )
    if len(aspects) > 1:
        steps.append(
            Step(
                id="summary",
                kind="synthesize",
                instruction="Summarize the most important differences between the documents "
                f"across {', '.join(aspects)}.",
                depends_on=compares,
            )
        )
    return Plan(
        steps=steps,
        rationale="Read each document on each aspect separately (document filter, few chunks), "
        "compare per aspect, then summarize.",
    )


class _Aspects(BaseModel):
    aspects: list[str] = Field(
        description="2 to 5 short aspects to compare the documents on, such as "
        "'termination' or 'revenue guidance'",
        min_length=1,
        max_length=5,
    )


class Compare:
    """The document-comparison pipeline.

    Args:
        maestro: The orchestrator.
        requirements: Extra requirements (every claim cited is always checked).
        budget: A preset is raised to what the plan needs (see ``fit_budget``); a
            :class:`Budget` is used as given.
        k: Chunks read per (document, aspect) step.
        max_aspects: Most aspects the model may propose.
    """

    def __init__(
        self,
        maestro: Maestro,
        *,
        requirements: Sequence[RequirementLike] = (),
        budget: Budget | BudgetPreset = "low",
        k: int = 3,
        max_aspects: int = 4,
    ) -> None:
        self.maestro = maestro
        self.requirements: list[RequirementLike] = [
            Requirement.cite_every_claim(),
            *requirements,
        ]
        self.budget = budget
        self.k = k
        self.max_aspects = max_aspects

    async def propose_aspects(
        self, task: str, documents: Sequence[DocumentInfo], corpus: Retriever
    ) -> tuple[list[str], Usage]:
        """Aspects for ``task`` chosen by the model from the openings of the documents."""
        excerpts: list[str] = []
        for doc in documents:
            hits = await corpus.search(
                task, k=2, filters=SearchFilter(document_ids=[doc.id]), mode="hybrid"
            )
            text = " ".join(one_line(h.chunk.text, 400) for h in hits)
            excerpts.append(f"- {display_name(doc)}: {text}")
        prompt = (
            f"Task: {task}\n\nDocuments and excerpts:\n" + "\n".join(excerpts) + "\n\n"
            f"List up to {self.max_aspects} aspects to compare these documents on for the "
            "task: short noun phrases a search engine can find in each document."
        )
        completion = await generate(
            self.maestro.model,
            [
                Message.system("You plan document comparisons. Answer in JSON."),
                Message.user(prompt),
            ],
            output_type=_Aspects,
            settings=ModelSettings(max_tokens=200),
        )
        aspects = list(dict.fromkeys(a.strip() for a in completion.output.aspects if a.strip()))
        return aspects[: self.max_aspects] or [task], completion.usage

    async def run(
        self,
        task: str,
        *,
        corpus: Retriever,
        documents: Sequence[str | DocumentInfo],
        aspects: Sequence[str] | None = None,
        on_event: EventHandler | None = None,
    ) -> Comparison:
        """Compare ``documents`` for ``task``.

        Args:
            task: What the comparison is for ("How did the agreement change?").
            corpus: The corpus holding the documents.
            documents: Document infos, or ids, paths or file names of documents in ``corpus``.
            aspects: What to compare; proposed by the model from ``task`` when ``None``.
            on_event: Called with every event of the run (live progress).
        """
        infos = [d for d in documents if isinstance(d, DocumentInfo)]
        named = [d for d in documents if not isinstance(d, DocumentInfo)]
        if named:
            infos += match_documents(await corpus.documents(), named)
        extra = Usage()
        source: Literal["user", "model"] = "user"
        if aspects:
            chosen = [a.strip() for a in aspects if a.strip()]
        else:
            chosen, extra = await self.propose_aspects(task, infos, corpus)
            source = "model"
        plan = comparison_plan(task, infos, chosen, k=self.k)
        judged = any(
            isinstance(r, str) or (isinstance(r, Requirement) and r.kind == "judge")
            for r in self.requirements
        )
        result = await self.maestro.run(
            task,
            corpus=corpus,
            requirements=self.requirements,
            budget=fit_budget(self.budget, plan, judged=judged),
            plan=plan,
            on_event=on_event,
        )
        return _comparison(task, infos, chosen, source, result, extra)

    def run_sync(self, task: str, **kwargs: Any) -> Comparison:
        """:meth:`run` for code without an event loop."""
        return asyncio.run(self.run(task, **kwargs))


def _comparison(
    task: str,
    documents: Sequence[DocumentInfo],
    aspects: Sequence[str],
    source: Literal["user", "model"],
    result: RunResult,
    extra: Usage,
) -> Comparison:
    steps = result.steps
    model = next((s.model for s in steps.values() if s.model), None)
    compared: list[AspectComparison] = []
    for j, aspect in enumerate(aspects, start=1):
        positions = []
        for i, doc in enumerate(documents, start=1):
            step = steps.get(_position_id(i, j))
            positions.append(
                DocumentPosition(
                    document_id=doc.id,
                    title=display_name(doc),
                    status=step.status if step else "missing",
                    says=step.answer if step else "",
                    claims=step.claims if step else [],
                    error=step.error if step else None,
                )
            )
        compare = steps.get(f"a{j}")
        compared.append(
            AspectComparison(
                aspect=aspect,
                positions=positions,
                status=compare.status if compare else "missing",
                changes=compare.answer if compare else "",
                claims=compare.claims if compare else [],
                error=compare.error if compare else None,
            )
        )
    return Comparison(
        task=task,
        status=result.status,
        documents=[
            DocumentRef(document_id=d.id, title=display_name(d), path=d.path) for d in documents
        ],
        aspects=compared,
        aspects_source=source,
        summary=result.output_text,
        summary_claims=result.claims,
        requirements=result.requirements,
        run_id=result.run_id,
        model=model,
        usage=result.usage + extra,
        wall_seconds=result.wall_seconds,
        budget_exhausted=result.budget_exhausted,
        error=result.error,
        plan=result.plan,
    )
