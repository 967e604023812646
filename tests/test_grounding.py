"""Figures in an answer must appear in its evidence."""

from __future__ import annotations

from maestro_lite.grounding import dates, figures, ungrounded_figures

QUOTE = "Either Party may terminate on 90 days' written notice; liability is capped at $2,500,000."


def test_a_figure_stated_in_the_evidence_is_grounded() -> None:
    assert ungrounded_figures("The notice period is 90 days.", [QUOTE]) == []


def test_an_invented_figure_is_caught() -> None:
    assert ungrounded_figures("Notice changed from 100 days to 90 days.", [QUOTE]) == ["100"]


def test_formats_and_scales_are_normalised() -> None:
    for text in ("The cap is USD 2.5 million.", "The cap is $2,500,000.", "cap: 2500000"):
        assert ungrounded_figures(text, [QUOTE]) == [], text
    assert ungrounded_figures("The cap is $3 million.", [QUOTE]) == ["3 million"]


def test_dates_and_percentages() -> None:
    source = "The agreement is effective February 1, 2025; prices may rise by at most 4%."
    assert ungrounded_figures("Effective 2025-02-01, cap 4%.", [source]) == []
    assert ungrounded_figures("Effective 2025-03-15.", [source]) == ["2025-03-15"]
    assert ungrounded_figures("Increases are capped at 6%.", [source]) == ["6%"]


def test_a_date_is_grounded_only_by_the_same_day_of_the_same_month() -> None:
    memo = "October 14, 2025 is now the official launch date."
    article = "Analysts said a September launch would still leave time for fall surveys."
    # "9" is a single digit and "September" is named: neither grounds the day.
    assert ungrounded_figures("It launches on September 9, 2025.", [memo, article]) == [
        "September 9"
    ]
    assert ungrounded_figures("It launches on October 14th.", [memo]) == []
    for written in ("14 October 2025", "Oct. 14", "2025-10-14", "the 14th day of October"):
        assert ungrounded_figures(f"Launch: {written}.", [memo]) == [], written
    assert ungrounded_figures("Launch: 2026-10-14.", [memo]) == ["2026"]  # the year still counts
    assert ungrounded_figures("Notice is 11 days.", ["Signed in November 2025."]) == ["11"]
    named = dates("Sept. 9th and 9 September and 2025-09-09")
    assert [(d.written, d.day) for d in named] == [
        ("Sept. 9th", 909),
        ("9 September", 909),
        ("2025-09-09", 909),
    ]
    assert named[2].digits == [(38, 40), (35, 37)]  # the day's digits, then the month's
    assert dates("May 2025, 31 June 2024, March 5.5%") == []


def test_small_counts_are_not_treated_as_figures() -> None:
    assert ungrounded_figures("Both of the 2 documents agree.", [QUOTE]) == []
    assert figures("2.5 million")[0][1] == {2.5, 2_500_000.0}


def test_month_names_ground_iso_months() -> None:
    assert ungrounded_figures("Effective 2025-11-03.", ["Effective November 3, 2025."]) == []
    assert ungrounded_figures("Effective 2025-11-03.", ["Effective on the 3rd, 2025."]) == [
        "2025-11-03"
    ]
    assert figures("6%.")[0][0] == "6%"


def test_file_names_count_as_sources() -> None:
    assert ungrounded_figures("The 2023 agreement", ["agreement_2023.txt"]) == []


def test_years_that_tell_documents_apart() -> None:
    from maestro_lite.grounding import distinguishing_years

    names = ["Supply Agreement (2023) a.pdf", "Amended Agreement (2025) b.pdf"]
    assert distinguishing_years(names) == {"2023", "2025"}
    assert distinguishing_years(["Report 2024", "Memo 2024"]) == set()  # names no document
    assert distinguishing_years(["only_2023.pdf"]) == set()
    # A full date in a title is what the document says, not which version it is.
    memo = "Memorandum: Skylark S3 Launch Date Moved to October 14, 2025"
    assert distinguishing_years([memo, "agritech_news_article.txt", "Preorders"]) == set()
    assert distinguishing_years(["Report 2024", "Memo"]) == set()  # one year: no versions


def test_a_claim_naming_a_year_must_cite_a_document_of_that_year() -> None:
    from maestro_lite.grounding import misattributed_years

    years = {"2023", "2025"}
    cited_2025 = ["Amended Agreement (2025) b.pdf"]
    claim = "The notice period in the 2023 agreement is 60 days."
    assert misattributed_years(claim, cited_2025, years) == ["2023"]
    assert misattributed_years("The 2025 agreement: 60 days.", cited_2025, years) == []
    assert misattributed_years("In 2019 prices rose.", cited_2025, years) == []
