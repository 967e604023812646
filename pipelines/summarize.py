"""Earnings-call summaries: one transcript becomes a cited bullet summary, by section.

The plan is declared in Python, one ``answer`` step per section (results against guidance,
revenue and margins, segments, outlook, risks, notable Q&A), then one short ``summarize``
step, the key takeaways, over the sections' results:

* each section step retrieves with its own queries (``"guidance outlook next quarter"``,
  ``"risk headwind"``...) within the call's document only (a document filter) and reads
  ``k`` chunks per query: a small model sees a few hundred tokens of the call per step,
  never the whole transcript;
* the sections depend on nothing, so they run in parallel where the model allows it; the
  takeaways step retrieves nothing, it reads the sections' answers and cites the sentences
  they cited (a plan has one final step; this one costs a call with a short prompt);
* every bullet is a claim whose evidence ids the framework resolved to exact quotes, and
  the validator's built-in figures check runs on every step: a figure a bullet states that
  its cited sentences do not contain fails ``<section>.figures``. The report also marks it
  on the bullet itself (:attr:`Bullet.ungrounded`), so a reader sees which figure to doubt.

Example::

    maestro = Maestro(model_from_settings(Settings()))
    docs = await ingest_documents(["TranscriptFY24Q4.txt"])
    summary = await Summarize(maestro).run(corpus=docs.corpus, document=docs.documents[0])
    summary.write("out/")           # out/summary.md and out/summary.json
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from maestro_lite import (
    Budget,
    BudgetPreset,
    Citation,
    Claim,
    DocumentInfo,
    EventHandler,
    Maestro,
    Plan,
    Requirement,
    RequirementLike,
    Retriever,
    RunResult,
    SearchFilter,
    Step,
    StepResult,
    ungrounded_figures,
)

from ._budget import fit_budget, judged
from ._docs import display_name, match_documents
from ._render import CitationIndex, RunFacts, one_line, status_detail
from .job_types import SummarizeJob
from .research import DocumentRef

__all__ = [
    "DEFAULT_SECTIONS",
    "Bullet",
    "Section",
    "SectionSummary",
    "Summarize",
    "SummaryReport",
    "overall_status",
    "summary_plan",
    "write_summaries",
]

TAKEAWAYS = "takeaways"
"""The id of the final step."""

SectionStatus = Literal["done", "failed", "skipped", "missing"]


class Section(BaseModel):
    """One section of the summary: what its step asks and how it searches the call."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]{1,30}$")
    """The step id (``revenue``)."""
    title: str
    """The heading in the report (``Revenue and margins``)."""
    question: str
    """What the step answers from the call."""
    queries: list[str] = Field(min_length=1)
    """Retrieval queries, each searched within the call's document."""


DEFAULT_SECTIONS: tuple[Section, ...] = (
    Section(
        id="guidance",
        title="Results against guidance",
        question="How did the quarter's results compare with the guidance or expectations "
        "given before?",
        queries=["ahead of expectations", "guidance for the full year"],
    ),
    Section(
        id="revenue",
        title="Revenue and margins",
        question="What were revenue and its growth, and the gross and operating margins?",
        queries=["this quarter revenue was billion up", "gross margin operating margin"],
    ),
    Section(
        id="segments",
        title="Segments",
        question="How did each business segment do (its revenue and growth)?",
        queries=["segment revenue increased", "business revenue grew driven by"],
    ),
    Section(
        id="outlook",
        title="Outlook",
        question="What outlook or guidance did management give for the next quarter or year?",
        queries=["we expect revenue growth next quarter", "guidance outlook next quarter"],
    ),
    Section(
        id="risks",
        title="Risks",
        question="Which risks, headwinds or uncertainties did management mention?",
        queries=["headwind impact", "lower than expected constraints"],
    ),
    Section(
        id="qa",
        title="Notable Q&A",
        question="What did analysts ask in the question-and-answer session, and what did "
        "management answer?",
        queries=["analyst question", "thank you for taking my question"],
    ),
)
"""The sections of an earnings-call summary, in report order. The queries were chosen by
looking at what hybrid search returns for them on a real call (MSFT FY24 Q4): "revenue
growth" alone finds next quarter's outlook, "risk" the safe-harbour boilerplate."""

SECTION_OUTPUT = (
    "One sentence; then up to 4 claims, one fact each, with its figures exactly as the cited "
    "sentence writes them, each citing the ids of the sentences that state it. If the "
    "evidence says nothing on this, say so and make no claim."
)
"""What a section step must produce: short, so a 1.5B model on two cores answers in
seconds, and one fact per claim, so each bullet's figures can be checked against the
sentences it cites."""

TAKEAWAYS_OUTPUT = (
    "Two sentences; then up to 3 claims, the most important facts of the call, each citing "
    "the ids of the sentences that state it."
)


def summary_plan(
    document: DocumentInfo,
    sections: Sequence[Section] = DEFAULT_SECTIONS,
    *,
    k: int = 3,
) -> Plan:
    """The summary plan: one ``answer`` step per section, retrieval filtered to ``document``
    with ``k`` chunks per query, then the ``takeaways`` step over the sections.

    Raises:
        ValueError: No section, or two sections with the same id.
    """
    if not sections:
        raise ValueError("a summary needs at least one section")
    ids = [s.id for s in sections]
    if len(set(ids)) != len(ids) or TAKEAWAYS in ids:
        raise ValueError(f"section ids must be unique and not {TAKEAWAYS!r}: {ids}")
    name = display_name(document)
    steps = [
        Step(
            id=section.id,
            kind="answer",
            instruction=f"{section.title}: {section.question}",
            queries=list(section.queries),
            filters=SearchFilter(document_ids=[document.id]),
            k=k,
            expected_output=SECTION_OUTPUT,
        )
        for section in sections
    ]
    steps.append(
        Step(
            id=TAKEAWAYS,
            kind="summarize",
            instruction=f"The key takeaways of {name}, from the sections' results.",
            depends_on=ids,
            expected_output=TAKEAWAYS_OUTPUT,
        )
    )
    return Plan(
        steps=steps,
        rationale="One step per section, each searching only this call with a few chunks; "
        "then the key takeaways from the sections.",
    )


def _sources(citations: Sequence[Citation]) -> list[str]:
    """What may ground a statement's figures: its cited sentences, and the cited documents'
    names, as the validator has it ("the FY24 call" names a document)."""
    return [c.quote for c in citations] + [f"{c.title} {Path(c.path).name}" for c in citations]


class Bullet(BaseModel):
    """One bullet of the summary: a claim, its citations, and the figures they lack."""

    text: str
    citations: list[Citation] = Field(default_factory=list)
    ungrounded: list[str] = Field(default_factory=list)
    """Figures (amounts, percentages, dates) the bullet states that none of its cited
    sentences contains: the validator's figures check, per bullet."""

    @classmethod
    def of(cls, claim: Claim) -> Bullet:
        """The bullet of a claim, its figures checked against the sentences it cites."""
        return cls(
            text=claim.text,
            citations=claim.citations,
            ungrounded=ungrounded_figures(claim.text, _sources(claim.citations)),
        )


class SectionSummary(BaseModel):
    """What one section step found."""

    id: str
    title: str
    status: SectionStatus
    answer: str = ""
    """The step's one-sentence answer, shown above its bullets."""
    answer_ungrounded: list[str] = Field(default_factory=list)
    """Figures of ``answer`` that none of the section's cited sentences contains (the
    validator checks the answer against all of them)."""
    bullets: list[Bullet] = Field(default_factory=list)
    error: str | None = None

    @classmethod
    def of(cls, section: Section, step: StepResult | None) -> SectionSummary:
        """What ``step`` found for ``section`` (``missing`` when it never ran)."""
        if step is None:
            return cls(id=section.id, title=section.title, status="missing")
        bullets = [Bullet.of(c) for c in step.claims]
        return cls(
            id=section.id,
            title=section.title,
            status=step.status,
            answer=step.answer,
            answer_ungrounded=ungrounded_figures(step.answer, _sources(step.citations)),
            bullets=bullets,
            error=step.error,
        )


class SummaryReport(RunFacts):
    """A cited summary of one earnings call."""

    document: DocumentRef
    status: Literal["passed", "unmet", "failed"]
    """``passed``: every check met; ``unmet``: a summary, some checks failed (an ungrounded
    figure, a section that did not finish); ``failed``: no section produced a bullet."""
    takeaways: str = ""
    takeaway_bullets: list[Bullet] = Field(default_factory=list)
    sections: list[SectionSummary] = Field(default_factory=list)

    @property
    def bullets(self) -> list[Bullet]:
        """Every bullet: the takeaways', then each section's."""
        return [*self.takeaway_bullets, *(b for s in self.sections for b in s.bullets)]

    @property
    def ungrounded(self) -> list[str]:
        """Each figure not in its bullet's cited sentences, once, in report order."""
        return list(dict.fromkeys(f for b in self.bullets for f in b.ungrounded))

    @classmethod
    def from_result(
        cls, document: DocumentInfo, sections: Sequence[Section], result: RunResult
    ) -> SummaryReport:
        """The report of a finished summary run."""
        found = [SectionSummary.of(s, result.steps.get(s.id)) for s in sections]
        status = result.status
        if status == "failed" and any(s.bullets for s in found):
            # The takeaways step is skipped when a section fails; the other sections stand.
            status = "unmet"
        model = next((s.model for s in result.steps.values() if s.model), None)
        return cls(
            document=DocumentRef(
                document_id=document.id, title=display_name(document), path=document.path
            ),
            status=status,
            takeaways=result.output_text,
            takeaway_bullets=[Bullet.of(c) for c in result.claims],
            sections=found,
            requirements=result.requirements,
            run_id=result.run_id,
            model=model,
            usage=result.usage,
            wall_seconds=result.wall_seconds,
            budget_exhausted=result.budget_exhausted,
            error=result.error,
            plan=result.plan,
        )

    def to_markdown(self) -> str:
        """The summary as Markdown: takeaways, a bullet list per section with numbered
        citations (ungrounded figures marked), requirements and failed checks, sources."""
        index = CitationIndex()
        checked = sum(len(b.citations) > 0 for b in self.bullets)
        lines = [
            "# Earnings call summary",
            "",
            f"**Call:** {self.document.title} (`{Path(self.document.path).name}`)",
            "",
            f"**Status:** {self.status} ({status_detail(self.requirements)})",
            "",
            f"**Figures:** {_figures_line(self.bullets)}; {checked} of {len(self.bullets)} "
            "bullet(s) cited",
            "",
            "## Key takeaways",
            "",
            one_line(self.takeaways) or "_(none)_",
            "",
            *_bullet_lines(index, self.takeaway_bullets),
        ]
        if self.takeaway_bullets:
            lines.append("")
        if self.error:
            lines += [f"> {one_line(self.error)}", ""]
        for section in self.sections:
            lines += [f"## {section.title}", ""]
            if section.status != "done":
                lines += [f"_{section.status}: {one_line(section.error or '')}_", ""]
                continue
            lead = one_line(section.answer) or "_(nothing found)_"
            if section.answer_ungrounded:
                lead += f" **(not in the cited text: {', '.join(section.answer_ungrounded)})**"
            lines += [lead, ""]
            if section.bullets:
                lines += [*_bullet_lines(index, section.bullets), ""]
        lines += self.closing(index)
        return "\n".join(lines)

    def write(self, directory: str | Path, *, stem: str = "summary") -> tuple[Path, Path]:
        """Write ``<stem>.md`` and ``<stem>.json`` into ``directory`` (created if needed)."""
        return super().write(directory, stem=stem)


def _bullet_lines(index: CitationIndex, bullets: Iterable[Bullet]) -> list[str]:
    lines = []
    for bullet in bullets:
        line = f"- {one_line(bullet.text)} {index.refs(bullet.citations) or '**(uncited)**'}"
        if bullet.ungrounded:
            line += f" **(not in the cited text: {', '.join(bullet.ungrounded)})**"
        lines.append(line)
    return lines


def _figures_line(bullets: Sequence[Bullet]) -> str:
    stated = sum(len(ungrounded_figures(b.text, [])) for b in bullets)
    loose = sum(len(b.ungrounded) for b in bullets)
    if not stated:
        return "no figures stated"
    return f"{stated - loose} of {stated} figure(s) found in the sentences their bullet cites"


class Summarize:
    """The earnings-call summary pipeline.

    Args:
        maestro: The orchestrator.
        sections: The sections, in report order (:data:`DEFAULT_SECTIONS` by default).
        requirements: Extra requirements (every takeaway cited is always checked; the
            figures of every step are checked by the validator).
        budget: A preset is raised to what the plan needs (see ``fit_budget``): ``low``
            runs every step once; ``medium`` re-runs a step whose check failed (an
            ungrounded figure) with the failure in its prompt. A :class:`Budget` is used as
            given.
        k: Chunks retrieved per query of a section.
    """

    def __init__(
        self,
        maestro: Maestro,
        *,
        sections: Sequence[Section] = DEFAULT_SECTIONS,
        requirements: Sequence[RequirementLike] = (),
        budget: Budget | BudgetPreset = "low",
        k: int = 3,
    ) -> None:
        self.maestro = maestro
        self.sections = list(sections)
        self.requirements: list[RequirementLike] = [
            Requirement.cite_every_claim(),
            *requirements,
        ]
        self.budget = budget
        self.k = k

    @classmethod
    def from_job(cls, maestro: Maestro, job: SummarizeJob) -> Summarize:
        """The pipeline a :class:`~pipelines.job_types.SummarizeJob` describes: what ``maestro
        summarize`` runs in the foreground and what a worker runs for a scheduled one."""
        return cls(maestro, budget=job.budget, k=job.k)

    async def run(
        self,
        *,
        corpus: Retriever,
        document: str | DocumentInfo,
        on_event: EventHandler | None = None,
    ) -> SummaryReport:
        """Summarize one call.

        Args:
            corpus: The corpus holding the transcript.
            document: Its info, or its id, path or file name in ``corpus``.
            on_event: Called with every event of the run (live progress).

        Raises:
            UserError: ``document`` names no document of ``corpus``.
        """
        if isinstance(document, DocumentInfo):
            info = document
        else:
            info = match_documents(await corpus.documents(), [document])[0]
        plan = summary_plan(info, self.sections, k=self.k)
        result = await self.maestro.run(
            f"Summarize the earnings call {display_name(info)} as cited bullets.",
            corpus=corpus,
            requirements=self.requirements,
            budget=fit_budget(self.budget, plan, judged=judged(self.requirements)),
            plan=plan,
            on_event=on_event,
        )
        return SummaryReport.from_result(info, self.sections, result)

    def run_sync(self, **kwargs: Any) -> SummaryReport:
        """:meth:`run` for code without an event loop."""
        return asyncio.run(self.run(**kwargs))


def overall_status(reports: Sequence[SummaryReport]) -> Literal["passed", "unmet", "failed"]:
    """The worst status of several summaries (``failed`` when there are none)."""
    statuses = {r.status for r in reports}
    if not reports or "failed" in statuses:
        return "failed"
    return "unmet" if "unmet" in statuses else "passed"


def write_summaries(reports: Sequence[SummaryReport], out: str | Path) -> list[Path]:
    """Write each summary's ``summary.md`` and ``summary.json``: into ``out`` for one,
    into ``out/<file name>/`` for each of several. Returns the files written."""
    several = len(reports) > 1
    written: list[Path] = []
    for report in reports:
        folder = Path(out) / Path(report.document.path).stem if several else Path(out)
        written += report.write(folder)
    return written
