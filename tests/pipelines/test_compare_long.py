"""Comparing 120-page PDFs: the model plans which pages to read per aspect from each
document's outline, the steps read those pages, and everything stays within the budget."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from maestro_lite import Budget, Corpus, DocumentInfo, Maestro, Settings
from maestro_lite.testing import HashingEmbedder, ModelCall
from pipelines import Compare

from .conftest import cite, evidence, routed, step_of

PAGES = 120
ASPECTS = ["termination notice", "liability cap"]
# Where each version states each aspect; pages 60-61 of the 2025 version have no text.
WHERE = {
    "2023": {"termination notice": 87, "liability cap": 42},
    "2025": {"termination notice": 91, "liability cap": 40},
}
BLANK = {"2025": {60, 61}}
TERMS = {
    "2023": {
        "termination notice": "Either party may terminate this Agreement on 90 days written "
        "notice.",
        "liability cap": "The liability of either party is capped at USD 5,000,000.",
    },
    "2025": {
        "termination notice": "Either party may terminate this Agreement on 60 days written "
        "notice.",
        "liability cap": "The liability of either party is capped at USD 2,500,000.",
    },
}
HEADINGS = {"termination notice": "Termination", "liability cap": "Limitation of Liability"}
TOPICS = ["Definitions", "Orders", "Delivery", "Invoicing", "Audit", "Insurance", "Notices"]


def _write(path: Path, year: str) -> None:
    pdf = FPDF()
    pdf.set_creation_date(dt.datetime(2025, 11, 1, tzinfo=dt.UTC))
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=10)
    pages = {page: aspect for aspect, page in WHERE[year].items()}
    for page in range(1, PAGES + 1):
        pdf.add_page()
        if page in BLANK.get(year, set()):
            continue
        pdf.set_xy(20, 12)
        pdf.cell(text=f"Master Supply Agreement {year} - page {page} of {PAGES}")
        aspect = pages.get(page)
        heading = HEADINGS[aspect] if aspect else TOPICS[page % len(TOPICS)]
        body = (
            TERMS[year][aspect]
            if aspect
            else "The parties shall cooperate in good faith on the matters of this section. "
            "Nothing in this section changes the termination notice or the liability cap."
        )
        pdf.set_xy(20, 25)
        pdf.multi_cell(w=170, text=f"Section {page}. {heading}\n\n{body}")
    pdf.output(str(path))


@pytest.fixture(scope="module")
def long_pdfs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two 120-page versions of an agreement, written once for the module."""
    folder = tmp_path_factory.mktemp("long")
    paths = [folder / f"master_agreement_{year}.pdf" for year in WHERE]
    for path, year in zip(paths, WHERE, strict=True):
        _write(path, year)
    return paths


@pytest.fixture
async def corpus(long_pdfs: list[Path], tmp_path: Path) -> AsyncIterator[Corpus]:
    settings = Settings(home=tmp_path / "home")
    async with await Corpus.open("long", settings=settings, embedder=HashingEmbedder()) as c:
        report = await c.ingest(long_pdfs)
        assert not report.failed, report.summary()
        yield c


def read_pages(call: ModelCall) -> dict[str, Any]:
    """A reading plan from the outline: for each aspect, the page whose heading names it."""
    prompt = call.last_user
    outline = dict(re.findall(r"^p(\d+): (.*)$", prompt, re.MULTILINE))
    aspects = re.findall(r"^(\d+)\. (.*)$", prompt, re.MULTILINE)
    assert len(outline) <= PAGES and "Master Supply Agreement" not in prompt.split("Outline")[1]
    plan = []
    for number, aspect in aspects:
        heading = HEADINGS[aspect]
        page = next(int(p) for p, line in outline.items() if heading in line)
        if "2025" in prompt and aspect == "liability cap":
            page = 60  # pages without text: the step falls back to the whole document
        plan.append({"aspect": int(number), "first_page": page, "last_page": page + 1})
    return {"pages": plan}


class Reader:
    """Answers the steps and records the pages each per-document step was shown."""

    def __init__(self) -> None:
        self.shown: dict[str, set[int]] = {}

    def __call__(self, call: ModelCall) -> dict[str, Any]:
        step = step_of(call)
        if step.startswith("What does"):
            self.shown[step] = {int(p) for p in re.findall(r", page (\d+)\]", call.last_user)}
            needle = "terminate" if "termination" in step else "capped"
            return {
                "answer": "It states the term.",
                "claims": [{"text": "The term.", "evidence": cite(call, needle)}],
            }
        shown = evidence(call)  # each version's clause, as the comparison must state them
        return {
            "answer": "The terms changed: " + " / ".join(shown.values()),
            "claims": [{"text": "They changed.", "evidence": list(shown)[:8]}],
        }


async def test_long_documents_are_read_where_the_outline_points(corpus: Corpus) -> None:
    docs = await corpus.documents()
    assert sorted(d.pages for d in docs) == [PAGES, PAGES]
    reader = Reader()
    model = routed(ReadingPlan=read_pages, StepAnswer=reader)
    budget = Budget(max_rounds=1, max_requests=9, max_tokens=60_000)
    comparison = await Compare(Maestro(model), budget=budget, k=2).run(
        "How did the agreement change?",
        corpus=corpus,
        documents=["master_agreement_2023.pdf", "master_agreement_2025.pdf"],
        aspects=ASPECTS,
    )

    # Two reading plans and the seven steps: the budget, exactly.
    titles = [c.schema_title for c in model.calls]
    assert titles.count("ReadingPlan") == 2 and len(titles) == 9
    assert comparison.usage.requests == 9 and comparison.usage.total_tokens <= 60_000
    assert comparison.status == "passed", [r for r in comparison.requirements if not r.passed]
    termination, cap = comparison.aspects
    old, new = termination.positions
    assert (old.reading, old.pages and old.pages.label) == ("pages", "pp. 87-88")
    assert (new.reading, new.pages and new.pages.label) == ("pages", "pp. 91-92")
    # The steps read only the planned pages, and cite the page that states the term.
    shown = {
        re.sub(r"What does (\S+) say about (.*?)\? .*", r"\1: \2", k): v
        for k, v in reader.shown.items()
    }
    assert shown["master_agreement_2023: termination notice"] <= {87, 88}
    assert shown["master_agreement_2025: termination notice"] <= {91, 92}
    assert shown["master_agreement_2023: liability cap"] <= {42, 43}
    assert not shown["master_agreement_2025: liability cap"] <= {60, 61}
    assert [c.page for cl in old.claims for c in cl.citations] == [87]
    assert [c.page for cl in new.claims for c in cl.citations] == [91]
    old_cap, new_cap = cap.positions
    assert old_cap.reading == "pages" and old_cap.claims[0].citations[0].page == 42
    # Pages 60-61 of the 2025 version have no text: that step searched the whole document.
    assert (new_cap.reading, new_cap.pages and new_cap.pages.label) == ("fallback", "pp. 60-61")
    assert new_cap.claims[0].citations[0].page == 40
    markdown = comparison.to_markdown()
    assert "| master_agreement_2023 (pp. 87-88) |" in markdown
    assert comparison.model_validate_json(comparison.model_dump_json()) == comparison


async def test_reading_plans_the_budget_cannot_pay_for_are_not_made(corpus: Corpus) -> None:
    model = routed(ReadingPlan=read_pages, StepAnswer=Reader())
    steps_only = Budget(max_rounds=1, max_requests=7)
    comparison = await Compare(Maestro(model), budget=steps_only, k=2).run(
        "How did the agreement change?",
        corpus=corpus,
        documents=await corpus.documents(),
        aspects=ASPECTS,
    )
    assert "ReadingPlan" not in [c.schema_title for c in model.calls]
    assert comparison.usage.requests == 7
    assert {p.reading for a in comparison.aspects for p in a.positions} == {"document"}
    assert len(comparison.notes) == 2 and "budget leaves no room" in comparison.notes[0]


def test_short_documents_get_no_reading_plan() -> None:
    short = DocumentInfo(id="a", title="A", path="/a.pdf", pages=30, chars=1, chunks=1)
    long = short.model_copy(update={"id": "b", "pages": 31})
    compare = Compare(Maestro(routed()))
    assert compare._long([short, long]) == [long]
    assert Compare(Maestro(routed()), long_document_pages=None)._long([long]) == []
