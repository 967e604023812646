"""Answer metrics: normalisation, exact match, token F1, citations, figures."""

from __future__ import annotations

import pytest

from evals.qa_metrics import (
    Figure,
    citation_precision,
    exact_match,
    figure_recall,
    figure_support,
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
    assert key_figures(text) == [
        Figure(82_959_000_000.0, False, 0),
        Figure(1.9, True, 1),  # "up"
        Figure(43.3, True, 0),
    ]
    assert key_figures("$1.2 billion and 350 thousand units") == [
        Figure(1.2e9, False, 0),
        Figure(350_000.0, False, 0),
    ]


def test_figure_recall_matches_across_units_and_rounding() -> None:
    reference = "Net sales were $82,959 million; the tax rate was 15.7%."
    assert figure_recall("Sales of $82.96 billion, tax rate 15.7%", reference) == 1.0
    assert figure_recall("Net sales: 82,959 (in millions). Rate 16%.", reference) == 0.5
    assert figure_recall("No figures here.", reference) == 0.0
    assert figure_recall("anything", "There were no acquisitions.") is None


def test_negatives_are_read_written_or_worded() -> None:
    assert key_figures("revenue declined -5%") == [Figure(5.0, True, -1)]
    assert key_figures("margin fell to (5)%") == [Figure(5.0, True, -1)]
    assert key_figures("an operating loss of $(1.2) billion") == [Figure(1.2e9, False, -1)]
    assert key_figures("other income (expense) of (1,234)") == [Figure(1234.0, False, -1)]
    assert key_figures("a 12% decrease") == [Figure(12.0, True, -1)]
    assert key_figures("sales grew 5%") == [Figure(5.0, True, 1)]
    # Each figure takes the nearest direction word of its own clause.
    assert [f.sign for f in key_figures("iPhone up 3%, Mac down 4%, iPad 12% higher")] == [
        1,
        -1,
        1,
    ]
    assert [f.sign for f in key_figures("Net sales of $82,959 million, up 1.9%")] == [0, 1]
    # A range's dash is no minus; a closing parenthesis alone makes no negative.
    assert key_figures("5-10% (see Note 12)") == [Figure(10.0, True, 0), Figure(12.0, False, 0)]


def test_a_figure_of_the_opposite_sign_is_no_match() -> None:
    assert figure_recall("grew 5%", "declined -5%") == 0.0
    assert figure_recall("revenue was down 5%", "declined -5%") == 1.0
    assert figure_recall("a (5)% change", "revenue declined 5%") == 1.0
    assert figure_recall("net loss of $1.2 billion", "a net loss of $(1.2) billion") == 1.0
    assert figure_recall("net income rose $1.2 billion", "a net loss of $(1.2) billion") == 0.0
    # A magnitude stated without a sign matches either way.
    assert figure_recall("the change was 5%", "declined -5%") == 1.0
    assert figure_recall("decreased 5%", "the rate moved 5%") == 1.0
    # Also at another scale: the digits agree, the signs must too.
    assert figure_recall("a loss of 1,200 (in millions)", "loss of $1.2 billion") == 1.0
    assert figure_recall("gained 1,200 (in millions)", "loss of $1.2 billion") == 0.0


def test_figure_support_counts_the_answers_figures_its_sources_back() -> None:
    evidence = ["Net sales were $82,959 million, down 1.9%.", "Services revenue was $19.2 billion."]
    reference = "Net sales decreased 1.9% to $82.96 billion."
    answer = "Net sales fell 1.9% to $82,959 million; services made $19.2 billion; margin 43%."
    assert figure_support(answer, [*evidence, reference]) == (3, 4)  # 43% is backed by nothing
    assert figure_support("Sales grew 1.9%.", evidence) == (0, 1)  # the evidence says down
    assert figure_support("No figures.", evidence) == (0, 0)
