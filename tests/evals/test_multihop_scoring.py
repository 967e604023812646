"""Scoring of the multi-hop answers eval on synthetic reports (no model, no data)."""

from __future__ import annotations

import pytest

from evals.datasets import MultihopQuestion, paragraph_document
from evals.multihop_qa import aggregate, score_item
from evals.registry import EVALS
from maestro_lite import Citation, Claim, Usage
from pipelines import DocumentRef, Finding, ResearchReport

PARAGRAPHS = [
    ("Rush (band)", "Rush was a Canadian rock band formed in Toronto in 1968."),
    ("Neil Peart", "Neil Peart was the drummer and lyricist of Rush."),
    ("Toto (band)", "Toto is an American rock band formed in 1977."),
]
QUESTION = MultihopQuestion(
    id="q1",
    question="In which city was the band of Neil Peart formed?",
    paragraphs=PARAGRAPHS,
    supporting=frozenset({0, 1}),
)
IDS = [paragraph_document(t, x).id for t, x in PARAGRAPHS]


def cite(paragraph: int, quote: str) -> Citation:
    title, text = PARAGRAPHS[paragraph]
    start = text.index(quote)
    return Citation(
        evidence_id="c1.s1",
        chunk_id=f"{IDS[paragraph]}:0",
        document_id=IDS[paragraph],
        title=title,
        path=f"paragraph:{IDS[paragraph]}",
        page=1,
        start=start,
        end=start + len(quote),
        quote=quote,
    )


def report(
    answer: str | None, claims: list[Claim], *, status: str = "passed", error: str | None = None
) -> ResearchReport:
    hop = Finding(
        step_id="q1",
        kind="answer",
        instruction="Which band did Neil Peart play in?",
        status="done",
        answer="Rush",
        claims=[Claim(text="Peart drummed for Rush.", citations=[cite(1, "drummer")])],
    )
    return ResearchReport(
        question=QUESTION.question,
        status=status,
        error=error,
        answer=f'{{"answer": "{answer}"}}',
        data={"answer": answer},
        claims=claims,
        findings=[hop],
        consulted=[DocumentRef(document_id=i, title="", path="") for i in IDS],
        usage=Usage(requests=4, input_tokens=900, output_tokens=60),
    )


def test_a_right_answer_citing_both_gold_paragraphs() -> None:
    claims = [
        Claim(text="Rush formed in Toronto.", citations=[cite(0, "formed in Toronto")]),
        Claim(text="Peart played in Rush.", citations=[cite(1, "lyricist of Rush")]),
    ]
    record = score_item(
        QUESTION, ["Toronto", "Toronto, Ontario"], report("toronto", claims), seconds=12.34
    )
    assert (record["em"], record["f1"]) == (1.0, 1.0)
    assert (record["citations"], record["precise_citations"]) == (2, 2)
    assert (record["step_citations"], record["precise_step_citations"]) == (1, 1)
    assert record["cited_recall"] == 1.0 and record["retrieved_recall"] == 1.0
    assert record["prediction"] == "toronto" and record["seconds"] == 12.3
    assert (record["requests"], record["input_tokens"]) == (4, 900)


def test_a_partial_answer_citing_a_distractor() -> None:
    claims = [Claim(text="Toto formed in 1977.", citations=[cite(2, "formed in 1977")])]
    record = score_item(QUESTION, ["Toronto"], report("Toronto Canada", claims), seconds=1)
    assert record["em"] == 0.0 and record["f1"] == pytest.approx(2 / 3)
    assert (record["citations"], record["precise_citations"]) == (1, 0)
    assert record["cited_recall"] == 0.0  # the distractor is no gold paragraph
    # A typed answer left null is no answer (not its JSON).
    empty = score_item(QUESTION, ["Toronto"], report(None, []), seconds=1)
    assert empty["prediction"] == "" and empty["f1"] == 0.0 and empty["citations"] == 0


def test_aggregate_micro_averages_citations_and_counts_failures() -> None:
    right = score_item(
        QUESTION,
        ["Toronto"],
        report("Toronto", [Claim(text="x", citations=[cite(0, "Toronto"), cite(1, "Rush")])]),
        seconds=10,
    )
    wrong = score_item(
        QUESTION,
        ["Toronto"],
        report(
            "Los Angeles",
            [Claim(text="y", citations=[cite(2, "American")])],
            error="budget",
            status="failed",
        ),
        seconds=30,
    )
    row = aggregate("hotpotqa", "pipeline", [right, wrong])
    assert (row.items, row.em, row.f1) == (2, 0.5, 0.5)
    assert row.citation_precision == pytest.approx(2 / 3)  # 2 of 3 citations, not (1 + 0) / 2
    assert row.citations_per_item == 1.5 and row.step_citation_precision == 1.0
    assert row.cited_recall == 0.5 and row.retrieved_recall == 1.0
    assert (row.calls_per_item, row.seconds_per_item, row.failed) == (4.0, 20.0, 1)
    none = aggregate("musique", "baseline", [])
    assert none.items == 0 and none.citation_precision is None and none.em == 0.0


def test_the_docstring_names_the_registered_eval() -> None:
    import evals.multihop_qa as module

    assert "maestro eval multihop " in (module.__doc__ or "")
    assert EVALS["multihop"][0] == "evals.multihop_qa"
