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
it is. A small planner asked for the same thing writes fewer, vaguer steps (FACTS.md: the
0.5B model wrote one step for a three-part task) and costs a call.

The model decides two things before the run, each in one short structured call counted
against the run's budget (limits checked before the call, usage in the run's):

* the aspects, when the user names none: from the task and the passages of each document
  that best match it;
* for a document longer than ``long_document_pages``, which pages to read first per aspect:
  it sees the document's outline (each page's first heading or line) and chooses a page
  range per aspect; that document's steps retrieve within the range (falling back to the
  whole document when the range yields nothing). The ranges are recorded per position.

A call the budget cannot pay for (leaving the plan's steps their calls) is not made: the
comparison goes on without it, and its ``notes`` say so.

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
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from maestro_lite import (
    UNTRUSTED_RULE,
    Budget,
    BudgetPreset,
    Claim,
    DocumentInfo,
    EventHandler,
    Maestro,
    Message,
    Plan,
    Requirement,
    RequirementLike,
    Retriever,
    RunResult,
    SearchFilter,
    Step,
    Usage,
    UsageMeter,
    UserError,
    mark_untrusted,
)

from ._budget import Preflight, ask, fit_budget, judged
from ._docs import display_name, match_documents
from ._reading import PageRange, ReadingPlan, outline, ranges_from, reading_messages
from ._render import CitationIndex, RunFacts, one_line, status_detail
from .research import DocumentRef

__all__ = [
    "AspectComparison",
    "Compare",
    "Comparison",
    "DocumentPosition",
    "PageRange",
    "comparison_plan",
]

Reading = Literal["document", "pages", "fallback"]
PagePlan = Mapping[tuple[str, str], PageRange]
"""(document id, aspect) -> the pages to read first."""

StepStatus = Literal["done", "failed", "skipped", "missing"]


class DocumentPosition(BaseModel):
    """What one document says on one aspect."""

    document_id: str
    title: str
    status: StepStatus
    says: str = ""
    claims: list[Claim] = Field(default_factory=list)
    error: str | None = None
    pages: PageRange | None = None
    """The pages the reading plan of a long document chose for this aspect."""
    reading: Reading = "document"
    """``pages``: retrieval within ``pages``; ``fallback``: those pages yielded nothing, so
    the whole document was searched; ``document``: the whole document was searched (a short
    document, or no reading plan was made)."""


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
            + "; ".join(
                f"{one_line(d.title)} (`{one_line(Path(d.path).name)}`)" for d in self.documents
            ),
            "",
            f"**Status:** {self.status} ({status_detail(self.requirements)})",
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
                where = f" ({p.pages.label})" if p.pages and p.reading == "pages" else ""
                lines.append(f"| {one_line(p.title)}{where} | {text.replace('|', '/')} |")
            lines.append("")
            if aspect.changes or aspect.claims:
                lines += [f"**What changed:** {one_line(aspect.changes)}", ""]
                lines += [*index.claim_lines(aspect.claims), ""]
        lines += self.closing(index)
        return "\n".join(lines)

    def write(self, directory: str | Path, *, stem: str = "comparison") -> tuple[Path, Path]:
        """Write ``<stem>.md`` and ``<stem>.json`` into ``directory`` (created if needed)."""
        return super().write(directory, stem=stem)


def _position_id(doc: int, aspect: int) -> str:
    return f"d{doc}.a{aspect}"


def comparison_plan(
    task: str,
    documents: Sequence[DocumentInfo],
    aspects: Sequence[str],
    *,
    k: int = 3,
    pages: PagePlan | None = None,
) -> Plan:
    """The comparison plan: per (document, aspect) answers, per-aspect comparisons, summary.

    Args:
        task: The overall task (shown to every step).
        documents: The documents, in the order to present them (oldest first reads best).
        aspects: What to compare them on.
        k: Chunks retrieved per (document, aspect) step.
        pages: Pages to retrieve from per (document id, aspect); the whole document for
            pairs not in it.

    Raises:
        UserError: Fewer than two documents, or no aspect.
    """
    _check_documents(documents)
    if not aspects:
        raise UserError(
            "a comparison needs at least one aspect",
            hint="Name aspects, or let the model propose them (aspects=None).",
        )
    chosen = pages or {}
    titles = "; ".join(display_name(d) for d in documents)
    steps: list[Step] = []
    compares: list[str] = []
    for j, aspect in enumerate(aspects, start=1):
        positions = []
        for i, doc in enumerate(documents, start=1):
            step_id = _position_id(i, j)
            positions.append(step_id)
            where = chosen.get((doc.id, aspect))
            steps.append(
                Step(
                    id=step_id,
                    kind="answer",
                    instruction=f"What does {display_name(doc)} say about {aspect}? "
                    "Give its exact figures, dates and terms.",
                    queries=[aspect],
                    filters=SearchFilter(
                        document_ids=[doc.id],
                        page_from=where.page_from if where else None,
                        page_to=where.page_to if where else None,
                    ),
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


def _check_documents(documents: Sequence[DocumentInfo]) -> None:
    if len(documents) < 2:
        raise UserError(
            f"a comparison needs at least two documents, got {len(documents)}",
            hint="Name two or more documents, or a folder holding them.",
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
            :class:`Budget` is used as given. Calls made before the run (proposing aspects,
            reading plans) count against it.
        k: Chunks read per (document, aspect) step.
        max_aspects: Most aspects the model may propose.
        long_document_pages: Documents with more pages get a reading plan (``None``: never).
        max_range_pages: Longest page range a reading plan may choose per aspect.
    """

    def __init__(
        self,
        maestro: Maestro,
        *,
        requirements: Sequence[RequirementLike] = (),
        budget: Budget | BudgetPreset = "low",
        k: int = 3,
        max_aspects: int = 4,
        long_document_pages: int | None = 30,
        max_range_pages: int = 8,
    ) -> None:
        if max_range_pages < 1:
            raise ValueError("max_range_pages must be at least 1")
        self.maestro = maestro
        self.requirements: list[RequirementLike] = [
            Requirement.cite_every_claim(),
            *requirements,
        ]
        self.budget = budget
        self.k = k
        self.max_aspects = max_aspects
        self.long_document_pages = long_document_pages
        self.max_range_pages = max_range_pages

    def _meter(self, meter: UsageMeter | None) -> UsageMeter:
        return meter or UsageMeter(Budget.of(self.budget).limits)

    async def propose_aspects(
        self,
        task: str,
        documents: Sequence[DocumentInfo],
        corpus: Retriever,
        *,
        meter: UsageMeter | None = None,
    ) -> tuple[list[str], Usage]:
        """Aspects for ``task``, chosen by the model from the two passages of each document
        that best match the task (hybrid search filtered to the document).

        Args:
            meter: The usage and limits the call counts against (a meter with this
                pipeline's budget when ``None``); :meth:`run` passes the run's.

        Raises:
            BudgetExceeded: The call would break a limit of ``meter``; it was not made.
            StructuredOutputError: The model never gave a valid list.
        """
        excerpts: list[str] = []
        for doc in documents:
            hits = await corpus.search(
                task, k=2, filters=SearchFilter(document_ids=[doc.id]), mode="hybrid"
            )
            text = " ".join(one_line(h.chunk.text, 400) for h in hits)
            excerpts.append(f"- {display_name(doc)}: {text}")
        prompt = (
            f"Task: {task}\n\nDocuments and excerpts:\n"
            + mark_untrusted("\n".join(excerpts), source="excerpts")
            + "\n\n"
            f"List up to {self.max_aspects} aspects to compare these documents on for the "
            "task: short noun phrases a search engine can find in each document."
        )
        proposed, usage = await ask(
            self.maestro,
            [
                Message.system("You plan document comparisons. Answer in JSON. " + UNTRUSTED_RULE),
                Message.user(prompt),
            ],
            _Aspects,
            max_tokens=200,
            meter=self._meter(meter),
        )
        aspects = list(dict.fromkeys(a.strip() for a in proposed.aspects if a.strip()))
        return aspects[: self.max_aspects] or [task], usage

    async def plan_reading(
        self,
        task: str,
        document: DocumentInfo,
        aspects: Sequence[str],
        corpus: Retriever,
        *,
        meter: UsageMeter | None = None,
    ) -> tuple[dict[str, PageRange], Usage]:
        """Which pages of ``document`` to read first for each aspect, chosen by the model
        from the document's outline (each page's first heading or line). Aspects the model
        gives no valid range are left out (their steps search the whole document).
        ``meter`` and the errors raised are as for :meth:`propose_aspects`.
        """
        entries = await outline(corpus, document)
        if not entries:
            return {}, Usage()
        messages = reading_messages(
            task,
            display_name(document),
            document,
            entries,
            aspects,
            max_pages=self.max_range_pages,
        )
        plan, usage = await ask(
            self.maestro,
            messages,
            ReadingPlan,
            max_tokens=40 + 30 * len(aspects),
            meter=self._meter(meter),
        )
        ranges = ranges_from(plan, aspects, pages=document.pages, max_pages=self.max_range_pages)
        return dict(ranges), usage

    async def _read_first(
        self,
        task: str,
        documents: Sequence[DocumentInfo],
        aspects: Sequence[str],
        corpus: Retriever,
        preflight: Preflight,
        *,
        reserve: int,
    ) -> dict[tuple[str, str], tuple[PageRange, Reading]]:
        """Reading plans of the long documents, each range checked to yield a chunk."""
        out: dict[tuple[str, str], tuple[PageRange, Reading]] = {}
        for doc in documents:
            ranges = await preflight.attempt(
                f"reading plan for {display_name(doc)}",
                partial(self.plan_reading, task, doc, aspects, corpus),
                reserve=reserve,
            )
            for aspect, pages in (ranges[0] if ranges else {}).items():
                within = SearchFilter(
                    document_ids=[doc.id], page_from=pages.page_from, page_to=pages.page_to
                )
                hits = await corpus.search(aspect, k=1, filters=within)
                out[(doc.id, aspect)] = (pages, "pages" if hits else "fallback")
        return out

    def _long(self, documents: Sequence[DocumentInfo]) -> list[DocumentInfo]:
        limit = self.long_document_pages
        return [] if limit is None else [d for d in documents if d.pages > limit]

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

        Raises:
            UserError: Fewer than two documents, or a name that matches no document.
        """
        infos = [d for d in documents if isinstance(d, DocumentInfo)]
        named = [d for d in documents if not isinstance(d, DocumentInfo)]
        if named:
            infos += match_documents(await corpus.documents(), named)
        _check_documents(infos)
        preflight = Preflight(self.budget)
        source: Literal["user", "model"] = "user"
        chosen = [a.strip() for a in aspects or () if a.strip()]
        if not chosen:
            proposed = await preflight.attempt(
                "proposing aspects",
                lambda meter: self.propose_aspects(task, infos, corpus, meter=meter),
            )
            chosen, source = (proposed[0] if proposed else [task]), "model"
        long = self._long(infos)
        whole = comparison_plan(task, infos, chosen, k=self.k)
        judge = judged(self.requirements)
        budget = fit_budget(
            self.budget, whole, judged=judge, before=preflight.usage.requests + len(long)
        )
        preflight.limit_to(budget)
        # A reading plan is made only when the run's steps (and its judge) keep their calls.
        reading = await self._read_first(
            task, long, chosen, corpus, preflight, reserve=len(whole.steps) + int(judge)
        )
        plan = comparison_plan(
            task,
            infos,
            chosen,
            k=self.k,
            pages={key: pages for key, (pages, how) in reading.items() if how == "pages"},
        )
        result = await self.maestro.run(
            task,
            corpus=corpus,
            requirements=self.requirements,
            budget=budget,
            plan=plan,
            on_event=on_event,
            usage=preflight.usage,
        )
        comparison = _comparison(task, infos, chosen, source, result, reading)
        return comparison.model_copy(
            update={
                "notes": preflight.notes,
                "budget_exhausted": comparison.budget_exhausted or preflight.exhausted,
            }
        )

    def run_sync(self, task: str, **kwargs: Any) -> Comparison:
        """:meth:`run` for code without an event loop."""
        return asyncio.run(self.run(task, **kwargs))


def _comparison(
    task: str,
    documents: Sequence[DocumentInfo],
    aspects: Sequence[str],
    source: Literal["user", "model"],
    result: RunResult,
    reading: Mapping[tuple[str, str], tuple[PageRange, Reading]],
) -> Comparison:
    steps = result.steps
    model = next((s.model for s in steps.values() if s.model), None)
    compared: list[AspectComparison] = []
    for j, aspect in enumerate(aspects, start=1):
        positions = []
        for i, doc in enumerate(documents, start=1):
            step = steps.get(_position_id(i, j))
            pages, how = reading.get((doc.id, aspect), (None, "document"))
            positions.append(
                DocumentPosition(
                    document_id=doc.id,
                    title=display_name(doc),
                    status=step.status if step else "missing",
                    says=step.answer if step else "",
                    claims=step.claims if step else [],
                    error=step.error if step else None,
                    pages=pages,
                    reading=how,
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
        usage=result.usage,
        wall_seconds=result.wall_seconds,
        budget_exhausted=result.budget_exhausted,
        error=result.error,
        plan=result.plan,
    )
