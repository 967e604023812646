"""The earnings-summary eval's deterministic scoring: key terms, answered questions, figures."""

from __future__ import annotations

from evals.registry import EVALS
from evals.summaries import answered_by, decidable, key_terms, names, score
from maestro_lite import Citation
from pipelines import Bullet, SectionSummary, SummaryReport
from pipelines.research import DocumentRef

REVENUE = (
    "What was the revenue from the Intelligent Cloud segment and what is the expected revenue?"
)


def test_key_terms_leave_out_question_words_and_speakers() -> None:
    assert key_terms(REVENUE) == ["revenue", "intelligent", "cloud", "segment", "expected"]
    assert key_terms("How does Satya Nadella respond to the question about Copilot for M365?") == [
        "copilot",
        "m365",
    ]
    assert not decidable("What are the main themes does Amy Hood talk about?")


def test_a_bullet_answers_with_the_terms_and_a_figure_when_one_is_asked() -> None:
    figure = "Intelligent Cloud revenue was $28.5 billion, up 19%; we expect growth."
    vague = "Intelligent Cloud revenue in the segment is expected to grow."
    assert answered_by(REVENUE, [vague]) is None  # an amount is asked: no figure, no answer
    assert answered_by(REVENUE, ["Cloud is big.", figure]) == figure
    assert answered_by("What do analysts ask about gaming potential?", ["Gaming has potential."])
    assert answered_by("How did LinkedIn do?", ["Azure grew 29%."]) is None
    # A bullet with the question's words but not the name it asks about does not answer it.
    linkedin = "What is the expected revenue growth for LinkedIn?"
    gaming = "In Gaming, we expect revenue growth in the mid-30s."
    assert names(linkedin) == ["linkedin"] and answered_by(linkedin, [gaming]) is None
    assert answered_by(linkedin, [gaming.replace("Gaming", "LinkedIn")])


def _cite(quote: str) -> Citation:
    return Citation(
        evidence_id="c1.s1",
        chunk_id="d:0",
        document_id="d",
        title="Call",
        path="/call.txt",
        page=1,
        start=0,
        end=len(quote),
        quote=quote,
    )


def test_figure_precision_counts_figures_missing_from_the_cited_sentence() -> None:
    cited = _cite("Revenue was $64.7 billion and increased 15%.")
    claims = [
        Bullet(text="Revenue was $64.7 billion, up 15%.", citations=[cited]),
        Bullet(text="Revenue grew 17%.", citations=[cited], ungrounded=["17%"]),
    ]
    report = SummaryReport(
        document=DocumentRef(document_id="d", title="Call", path="/call.txt"),
        status="unmet",
        sections=[SectionSummary(id="revenue", title="Revenue", status="done", bullets=claims)],
    )
    assert score(report) == {
        "bullets": 2,
        "cited": 2,
        "figures": 3,
        "grounded": 2,
        "ungrounded": ["17%"],
    }
    assert EVALS["summaries"][0] == "evals.summaries"
