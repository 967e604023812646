"""SEC 10-Q scoring on synthetic records: figures with signs, and figure precision."""

from __future__ import annotations

from typing import Any

import pytest

from evals.sec10q import aggregate, score_answer

REFERENCE = "Net sales decreased 2.5% to $81.8 billion; the gross margin was 43.3%."


def record(answer: str, evidence: list[str] | None, **extra: Any) -> dict[str, Any]:
    base = {
        "type": "single-chunk",
        "answer": answer,
        "filings": 1,
        "cited_filings": ["f1"],
        "requests": 2,
        "seconds": 10.0,
        "status": "passed",
        **extra,
    }
    if evidence is not None:
        base["evidence"] = evidence
    return {**base, **score_answer(answer, REFERENCE, evidence)}


def test_a_growth_is_not_the_decline_the_reference_states() -> None:
    right = score_answer("Sales fell 2.5% to $81.8 billion, margin 43.3%.", REFERENCE, [])
    wrong = score_answer("Sales grew 2.5% to $81.8 billion, margin 43.3%.", REFERENCE, [])
    assert right["figure_recall"] == 1.0
    assert wrong["figure_recall"] == pytest.approx(2 / 3)


def test_figure_precision_shows_figures_nothing_backs() -> None:
    evidence = ["Total net sales were $81,797 million.", "iPhone sales were $42.6 billion."]
    answer = "Sales fell 2.5% to $81,797 million; iPhone made $42.6 billion and Mac $9.9 billion."
    scored = score_answer(answer, REFERENCE, evidence)
    # 2.5% (reference), $81,797 million (both), $42.6 billion (evidence); $9.9 billion: none.
    assert (scored["figures_supported"], scored["figures_stated"]) == (3, 4)
    # Without the cited quotes (items cached before they were kept): recall only.
    old = score_answer(answer, REFERENCE, None)
    assert old["figures_stated"] is None and old["figure_recall"] == pytest.approx(2 / 3)


def test_aggregate_reports_recall_and_precision_per_type() -> None:
    records = [
        record("Sales fell 2.5% to $81.8 billion; margin 43.3%.", ["margin of 43.3%"]),
        record("Sales grew 2.5%; margin 45%.", [], status="failed"),  # 2.5% only in reference
        record("Sales were $81.8 billion.", None),  # cached before quotes were kept
        {**record("No figures.", []), "figure_recall": None},
    ]
    row = aggregate("single-chunk", records)
    assert (row.items, row.with_figures) == (4, 3)
    assert row.figure_recall == pytest.approx((1.0 + 0.0 + 1 / 3) / 3)
    assert row.correct == pytest.approx(1 / 3)
    # 3 of 3 figures, then 0 of 2 ("grew" contradicts the reference; 45% nowhere): 3 of 5.
    assert row.figure_precision == pytest.approx(3 / 5)
    assert row.failed == 1 and row.calls_per_item == 2.0
    assert aggregate("multi-doc", []).figure_precision is None
