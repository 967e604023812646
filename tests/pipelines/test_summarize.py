"""The earnings-call summary pipeline: its plan, its cited report, and the figures check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maestro_lite import DocumentInfo, Maestro, UserError
from maestro_lite.testing import ModelCall
from pipelines import DEFAULT_SECTIONS, Section, Summarize, SummaryReport, summary_plan

from .conftest import MemoryRetriever, chunk, cite, evidence, routed, step_of

CALL = "call"
PAGES = [
    "Revenue was $64.7 billion and increased 15%. Operating income increased 15% to "
    "$27.9 billion. Gross margin percentage was 70%.",
    "Results came in ahead of expectations. Intelligent Cloud revenue was $28.5 billion, "
    "up 19%. More Personal Computing revenue grew 14%.",
    "For next quarter we expect revenue to grow 13% to 15%. Foreign exchange is a headwind "
    "that will decrease revenue growth by 1 point.",
    "Analyst Keith Weiss asked a question about capital expenditure. Amy Hood answered that "
    "capital expenditures will increase sequentially.",
]
OTHER = "Another company's revenue was $12.0 billion, up 40%."


@pytest.fixture
def corpus() -> MemoryRetriever:
    pages = []
    offset = 0
    for n, text in enumerate(PAGES, start=1):
        page = chunk(CALL, "FY24 Q4 call", text, page=n, index=n)
        # Pages follow each other in the document (the evidence pool offers a span once).
        pages.append(page.model_copy(update={"doc_start": offset, "doc_end": offset + len(text)}))
        offset += len(text) + 1
    return MemoryRetriever([*pages, chunk("other", "Another call", OTHER)])


def document() -> DocumentInfo:
    return DocumentInfo(id=CALL, title="FY24 Q4 call", path="call.txt", pages=4, chars=9, chunks=4)


FACTS: dict[str, list[tuple[str, str]]] = {
    "Results against guidance": [("Results beat expectations.", "ahead of expectations")],
    "Revenue and margins": [
        ("Revenue was $64.7 billion, up 15%.", "$64.7 billion"),
        ("Gross margin was 70%.", "Gross margin"),
    ],
    "Segments": [("Intelligent Cloud revenue was $28.5 billion, up 19%.", "Intelligent Cloud")],
    "Outlook": [("Revenue is expected to grow 13% to 15% next quarter.", "13% to 15%")],
    "Risks": [("Foreign exchange is a headwind of 1 point.", "headwind")],
    "Notable Q&A": [("Asked about capex, Amy Hood said it will increase.", "Keith Weiss")],
}


def sections_answer(facts: dict[str, list[tuple[str, str]]]) -> Any:
    """A model that states each section's facts, citing the sentence holding each needle,
    and sums up the takeaways from the evidence inherited from the sections."""

    def answer(call: ModelCall) -> dict[str, Any]:
        step = step_of(call)
        assert OTHER not in evidence(call).values()  # only the call's document is read
        if step.startswith("The key takeaways"):
            return {
                "answer": "Revenue grew 15% and beat expectations.",
                "claims": [{"text": "Revenue grew 15%.", "evidence": cite(call, "increased 15%")}],
            }
        title = step.split(":")[0]
        claims = [{"text": text, "evidence": cite(call, needle)} for text, needle in facts[title]]
        return {"answer": f"{title} in brief.", "claims": claims}

    return answer


def test_the_plan_reads_each_section_from_the_call_only() -> None:
    plan = summary_plan(document(), k=2)
    sections = [s for s in plan.steps if s.id != "takeaways"]
    assert [s.id for s in sections] == [s.id for s in DEFAULT_SECTIONS]
    assert [s.id for s in sections] == ["guidance", "revenue", "segments", "outlook", "risks", "qa"]
    for step, section in zip(sections, DEFAULT_SECTIONS, strict=True):
        assert step.kind == "answer" and step.depends_on == []  # independent: run in parallel
        assert step.queries == section.queries and step.k == 2
        assert step.filters is not None and step.filters.document_ids == [CALL]
        assert step.instruction.startswith(section.title + ": ")
    final = plan.final
    assert final.id == "takeaways" and final.kind == "summarize" and final.queries == []
    assert final.depends_on == [s.id for s in DEFAULT_SECTIONS]
    assert "headwind impact" in plan.step("risks").queries


def test_the_plan_refuses_clashing_section_ids() -> None:
    twice = Section(id="x", title="X", question="x?", queries=["x"])
    with pytest.raises(ValueError, match="unique"):
        summary_plan(document(), [twice, twice])
    with pytest.raises(ValueError, match="at least one section"):
        summary_plan(document(), [])


async def test_a_call_becomes_a_cited_summary(corpus: MemoryRetriever, tmp_path: Path) -> None:
    model = routed(StepAnswer=sections_answer(FACTS))
    report = await Summarize(Maestro(model)).run(corpus=corpus, document="call.txt")

    assert report.status == "passed", [r for r in report.requirements if not r.passed]
    assert len(model.calls) == 7  # six sections and the takeaways, no judge
    assert [s.title for s in report.sections] == [s.title for s in DEFAULT_SECTIONS]
    assert all(s.status == "done" and s.bullets for s in report.sections)
    revenue = report.sections[1]
    assert [b.text for b in revenue.bullets] == [
        "Revenue was $64.7 billion, up 15%.",
        "Gross margin was 70%.",
    ]
    quote = revenue.bullets[0].citations[0]
    assert quote.quote == "Revenue was $64.7 billion and increased 15%."
    assert PAGES[0][quote.start : quote.end] == quote.quote and quote.page == 1
    assert report.ungrounded == [] and all(b.citations for b in report.bullets)
    # The validator checked the figures of every section step.
    figures = {r.id: r.passed for r in report.requirements if r.id.endswith(".figures")}
    assert figures == {f"{s.id}.figures": True for s in [*DEFAULT_SECTIONS]} | {
        "takeaways.figures": True
    }
    assert report.takeaways == "Revenue grew 15% and beat expectations."

    markdown = report.to_markdown()
    assert markdown.startswith("# Earnings call summary")
    assert "**Call:** FY24 Q4 call (`call.txt`)" in markdown
    headings = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
    assert headings == [
        "Key takeaways",
        *(s.title for s in DEFAULT_SECTIONS),
        "Requirements",
        "Sources",
    ]
    assert "- Revenue was $64.7 billion, up 15%. [" in markdown
    assert '"Revenue was $64.7 billion and increased 15%."' in markdown
    assert "8 of 8 figure(s) found" in markdown and "(uncited)" not in markdown

    md_path, json_path = report.write(tmp_path / "out")
    assert (md_path.name, json_path.name) == ("summary.md", "summary.json")
    assert md_path.read_text() == markdown
    data = json.loads(json_path.read_text())
    assert data["sections"][1]["bullets"][0]["citations"][0]["quote"] == quote.quote
    assert SummaryReport.model_validate(data).bullets == report.bullets


async def test_an_invented_figure_is_flagged(corpus: MemoryRetriever) -> None:
    invented = {**FACTS, "Revenue and margins": [("Revenue grew 17%.", "$64.7 billion")]}
    bullets = sections_answer(invented)

    def answer(call: ModelCall) -> dict[str, Any]:
        out = dict(bullets(call))
        if step_of(call).startswith("Segments"):
            out["answer"] = "Segments grew 99%."  # a lead sentence no cited sentence backs
        return out

    model = routed(StepAnswer=answer)
    report = await Summarize(Maestro(model), budget="low").run(corpus=corpus, document=CALL)

    assert report.status == "unmet"
    check = next(r for r in report.requirements if r.id == "revenue.figures")
    assert not check.passed and "17%" in check.reason
    bullet = report.sections[1].bullets[0]
    assert bullet.ungrounded == ["17%"] and report.ungrounded == ["17%"]
    markdown = report.to_markdown()
    assert "- Revenue grew 17%. [" in markdown and "(not in the cited text: 17%)" in markdown
    assert "revenue.figures" in markdown  # the failed check is listed
    segments = report.sections[2]
    assert segments.answer_ungrounded == ["99%"] and segments.bullets[0].ungrounded == []
    assert "Segments grew 99%. **(not in the cited text: 99%)**" in markdown
    assert not next(r for r in report.requirements if r.id == "segments.figures").passed


async def test_a_fix_round_carries_the_failed_figure(corpus: MemoryRetriever) -> None:
    """With a budget that allows a fix, the step whose figure failed is asked again with the
    failure in its prompt, and the corrected bullet replaces the invented one."""
    base = sections_answer(FACTS)

    def answer(call: ModelCall) -> dict[str, Any]:
        if step_of(call).startswith("Revenue") and "17%" not in call.last_user:
            return {
                "answer": "Revenue grew.",
                "claims": [{"text": "Revenue grew 17%.", "evidence": cite(call, "$64.7 billion")}],
            }
        return dict(base(call))

    report = await Summarize(Maestro(routed(StepAnswer=answer)), budget="medium").run(
        corpus=corpus, document=CALL
    )
    assert report.status == "passed"
    bullets = report.sections[1].bullets
    assert [b.text for b in bullets] == [
        "Revenue was $64.7 billion, up 15%.",
        "Gross margin was 70%.",
    ]
    assert bullets[0].ungrounded == []


async def test_a_failed_section_leaves_the_others(corpus: MemoryRetriever) -> None:
    good = sections_answer(FACTS)

    def answer(call: ModelCall) -> Any:
        if step_of(call).startswith("Risks"):
            return "not json at all"
        return good(call)

    report = await Summarize(Maestro(routed(StepAnswer=answer))).run(corpus=corpus, document=CALL)
    assert report.status == "unmet"
    risks = next(s for s in report.sections if s.id == "risks")
    assert risks.status == "failed" and risks.error
    assert all(s.bullets for s in report.sections if s.id != "risks")
    markdown = report.to_markdown()
    assert "## Risks\n\n_failed: " in markdown


async def test_a_document_not_in_the_corpus_is_refused(corpus: MemoryRetriever) -> None:
    model = routed(StepAnswer=sections_answer(FACTS))
    with pytest.raises(UserError, match=r"no document in the corpus match 'absent\.txt'"):
        await Summarize(Maestro(model)).run(corpus=corpus, document="absent.txt")
    assert model.calls == []
