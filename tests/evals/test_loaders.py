"""Loaders for ../shared/data (skipped, with the path, when the data is absent)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from evals.cuad import load_gold
from evals.datasets import DataMissing
from evals.multihop_qa import load_answers
from evals.sec10q import filings_for, load_questions, select
from maestro_lite import DocumentInfo

# `data_dir` (tests/retrieval_fixtures.py) skips with the path when the data is absent.


def test_multihop_answers_and_aliases(data_dir: Path) -> None:
    hotpot = load_answers(data_dir, "hotpotqa")
    assert len(hotpot) == 100
    assert hotpot["5a7f6fd75542992e7d278cfa"] == ["Rush"]
    musique = load_answers(data_dir, "musique")
    assert len(musique) == 100
    assert any(len(golds) > 1 for golds in musique.values())  # aliases are kept


def test_sec10q_questions_and_a_balanced_selection(data_dir: Path) -> None:
    questions = load_questions(data_dir)
    assert len(questions) == 98
    assert Counter(q.type for q in questions) == {
        "multi-doc": 32,
        "single-chunk": 39,
        "multi-chunk": 27,
    }
    chosen = select(questions, 30)
    assert Counter(q.type for q in chosen) == {
        "multi-doc": 10,
        "single-chunk": 10,
        "multi-chunk": 10,
    }
    assert [q.id for q in chosen] == sorted(q.id for q in chosen)
    first = questions[0]
    assert (first.pattern, first.type) == ("*AAPL*", "multi-doc")
    assert "$82,959 million" in first.answer


def test_filings_are_matched_by_pattern_oldest_first() -> None:
    names = ["2023 Q1 AAPL.pdf", "2022 Q3 AAPL.pdf", "2023 Q3 NVDA.pdf", "2023 Q3 AAPL.pdf"]
    infos = [
        DocumentInfo(id=str(i), title=n, path=f"/x/{n}", pages=1, chars=1, chunks=1)
        for i, n in enumerate(names)
    ]
    assert [d.title for d in filings_for("*AAPL*", infos)] == [
        "2022 Q3 AAPL.pdf",
        "2023 Q1 AAPL.pdf",
        "2023 Q3 AAPL.pdf",
    ]
    assert [d.title for d in filings_for("*2023 Q3 NVDA*", infos)] == ["2023 Q3 NVDA.pdf"]


def test_cuad_gold_answers(data_dir: Path) -> None:
    gold = load_gold(data_dir)
    assert len(gold) == 99  # three rows have no text file
    first = gold[0]
    assert first.text_path.is_absolute() and first.text_path.exists()
    assert first.answers["agreement_date"] == "6/21/99"
    assert first.answers["governing_law"] == "California"
    assert first.answers["notice_period_to_terminate_renewal"] == "30 days"
    assert first.answers["cap_on_liability"] == "Yes"


def test_absent_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataMissing, match=str(tmp_path)):
        load_questions(tmp_path)
    with pytest.raises(DataMissing):
        load_gold(tmp_path)
    with pytest.raises(DataMissing):
        load_answers(tmp_path, "musique")
