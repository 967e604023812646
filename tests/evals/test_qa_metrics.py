"""Answer metrics: normalisation, exact match, token F1, citations, figures."""

from __future__ import annotations

import pytest

from evals.qa_metrics import (
    citation_precision,
    exact_match,
    figure_recall,
    key_figures,
    normalize_answer,
    supporting_recall,
    token_f1,
)


def test_normalisation_drops_case_punctuation_articles_and_spacing() -> None:
    assert normalize_answer("  The  Beatles!") == "beatles"
    assert normalize_answer("A Tale of Two Cities") == "tale of two cities"
    assert normalize_answer("U.S.A.") == "usa"
    assert normalize_answer("theatre") == "theatre"  # 'the' only as a word


def test_exact_match_takes_any_alias() -> None:
    assert exact_match("the Rush", ["Rush"]) == 1.0
    assert exact_match("Spurs", ["Tottenham Hotspur F.C.", "Spurs"]) == 1.0
    assert exact_match("Rush band", ["Rush"]) == 0.0


def test_token_f1_is_the_best_over_aliases() -> None:
    assert token_f1("Rush", ["Rush"]) == 1.0
    # "the Canadian band Rush" vs "Rush": precision 1/3, recall 1 -> F1 0.5
    assert token_f1("the Canadian band Rush", ["Rush"]) == pytest.approx(0.5)
    assert token_f1("Tottenham Hotspur", ["Spurs", "Tottenham Hotspur F.C."]) == pytest.approx(
        2 * 1.0 * (2 / 3) / (1.0 + 2 / 3)
    )
    assert token_f1("Paris", ["London"]) == 0.0
    assert token_f1("", ["London"]) == 0.0


def test_yes_no_answers_score_only_when_exact() -> None:
    assert token_f1("yes", ["yes"]) == 1.0
    assert token_f1("no", ["yes"]) == 0.0
    assert token_f1("yes it is", ["yes"]) == 0.0


def test_citation_precision_checks_each_quote_against_gold_passages() -> None:
    gold = ["Rush is a Canadian rock band.  It formed in 1968.", "Neil Peart was its drummer."]
    quotes = ["It formed in\n1968.", "Neil Peart was its drummer.", "Toto is an American band."]
    assert citation_precision(quotes, gold) == pytest.approx(2 / 3)
    assert citation_precision([], gold) is None


def test_supporting_recall() -> None:
    assert supporting_recall({"a", "x"}, {"a", "b"}) == 0.5
    assert supporting_recall(set(), set()) == 1.0


def test_key_figures_apply_scales_and_skip_years_and_small_counts() -> None:
    text = "In Q3 2022 net sales were $82,959 million, up 1.9%; 4 segments; margin 43.3 percent."
    assert key_figures(text) == [(82_959_000_000.0, False), (1.9, True), (43.3, True)]
    assert key_figures("$1.2 billion and 350 thousand units") == [
        (1.2e9, False),
        (350_000.0, False),
    ]


def test_figure_recall_matches_across_units_and_rounding() -> None:
    reference = "Net sales were $82,959 million; the tax rate was 15.7%."
    assert figure_recall("Sales of $82.96 billion, tax rate 15.7%", reference) == 1.0
    assert figure_recall("Net sales: 82,959 (in millions). Rate 16%.", reference) == 0.5
    assert figure_recall("No figures here.", reference) == 0.0
    assert figure_recall("anything", "There were no acquisitions.") is None
