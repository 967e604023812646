"""Conflicts between sources are found in Python, with units normalised, and an answer is held
to stating each side with its source."""

from __future__ import annotations

from pathlib import Path

from maestro_lite.conflicts import (
    Statement,
    conflict_note,
    find_conflicts,
    stem,
    to_complete,
    told,
    unresolved,
    values,
)
from maestro_lite.evidence import sentence_spans

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = "When will the Skylark S3 drone launch?"


def _statements(path: Path, doc: str, title: str) -> list[Statement]:
    """A document's sentences, read as the executor reads a step's evidence: per chunk of a
    few paragraphs."""
    chunks, current = [], ""
    for paragraph in path.read_text().split("\n\n"):
        if len(current) + len(paragraph) > 1500:
            chunks.append(current)
            current = ""
        current += paragraph + "\n\n"
    chunks.append(current)
    return [
        Statement(chunk[s:e], doc, title, f"{doc}.c{n}.s{i}")
        for n, chunk in enumerate(chunks)
        for i, (s, e) in enumerate(sentence_spans(chunk))
    ]


def _research() -> list[Statement]:
    folder = ROOT / "sample_docs" / "research"
    return [
        *_statements(
            folder / "launch_status_memo.md",
            "memo",
            "Memorandum: Skylark S3 Launch Date Moved to October 14, 2025",
        ),
        *_statements(folder / "agritech_news_article.txt", "article", "agritech_news_article"),
        *_statements(folder / "preorder_sales_memo.md", "orders", "Skylark S3 Preorders"),
        *_statements(folder / "supplier_profiles.md", "suppliers", "Key Supplier Profiles"),
    ]


def _contracts() -> list[Statement]:
    folder = ROOT / "sample_docs" / "_src" / "contracts"
    return [
        *_statements(folder / "supply_agreement_2023.md", "a2023", "Supply Agreement 2023"),
        *_statements(
            folder / "supply_agreement_2025.md",
            "a2025",
            "Amended and Restated Supply Agreement 2025",
        ),
    ]


def _pairs(conflicts: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(c.sides[0].value, c.sides[1].value) for c in conflicts]


def test_the_memo_and_the_article_disagree_on_the_launch_and_the_official_memo_prevails() -> None:
    conflicts = find_conflicts(_research(), LAUNCH)
    assert len(conflicts) == 1
    (conflict,) = conflicts
    memo, article = conflict.sides
    assert (memo.document_id, article.document_id) == ("memo", "article")
    assert memo.value == "October 14, 2025" and article.value.startswith("September 9")
    assert conflict.kind == "date"
    assert conflict.prevails == 0 and conflict.why == "marked official"
    # The memo's own date (July 10) and the old date both sources share (July 22) are no side.
    assert "July" not in memo.value + article.value


def test_contract_versions_disagree_only_on_what_the_question_asks() -> None:
    asked = "How did the termination notice period change between the 2023 and 2025 agreements?"
    conflicts = find_conflicts(_contracts(), asked)
    assert _pairs(conflicts) == [("90 days", "60 days")]
    assert conflicts[0].prevails == 1 and "restated" in conflicts[0].why
    renewal = find_conflicts(_contracts(), "How did the renewal term change?")
    assert sorted(_pairs(renewal)) == [("180 days", "120 days"), ("one year", "two years")]


def test_values_the_documents_share_are_common_ground() -> None:
    # Both versions keep 5 years of confidentiality and 100 days of force majeure.
    asked = "Did the confidentiality and force majeure clauses change between 2023 and 2025?"
    assert find_conflicts(_contracts(), asked) == []


def test_units_are_normalised() -> None:
    assert [v.key for v in values("capped for 12 months")] == [365]
    assert [v.key for v in values("capped for one year")] == [365]
    assert [v.key for v in values("ninety (90) days' notice")] == [90]
    assert [v.key for v in values("$2.5 million")] == [v.key for v in values("$2,500,000")]
    assert [v.kind for v in values("up to 6% a year, at 45 degrees Celsius")] == [
        "percent",
        "°C",
    ]
    same = [
        Statement("The cap on liability is $2.5 million for either party.", "a", "A"),
        Statement("The cap on liability is $2,500,000 for either party.", "b", "B"),
    ]
    assert find_conflicts(same, "What is the cap on liability?") == []


def test_one_document_or_another_subject_is_no_conflict() -> None:
    one = [
        Statement("The Skylark S3 launch is on October 14, 2025.", "memo", "Memo"),
        Statement("The Skylark S3 launch was planned for July 22, 2025.", "memo", "Memo"),
    ]
    assert find_conflicts(one, LAUNCH) == []
    apart = [
        Statement("The Skylark S3 launch is on October 14, 2025.", "memo", "Memo"),
        Statement("The harvest survey season starts on September 1, 2025.", "news", "News"),
    ]
    assert find_conflicts(apart, LAUNCH) == []


def test_the_later_document_prevails_when_none_is_marked() -> None:
    statements = [
        Statement("Date: March 3, 2025. The Falcon launch is set for May 5, 2025.", "a", "A"),
        Statement("Date: April 9, 2025. The Falcon launch is set for June 30, 2025.", "b", "B"),
    ]
    (conflict,) = find_conflicts(statements, "When is the Falcon launch?")
    assert _pairs([conflict]) == [("May 5, 2025", "June 30, 2025")]
    assert conflict.prevails == 1 and "later" in conflict.why


def test_an_answer_must_state_both_sides_cite_both_and_say_which_prevails() -> None:
    conflicts = find_conflicts(_research(), LAUNCH)
    both = {"memo", "article"}
    right = (
        "The Skylark S3 launches on October 14, 2025, the official date in the memo; a trade "
        "article reported September 9, 2025."
    )
    assert unresolved(conflicts, right, both) == []
    (one_side,) = unresolved(conflicts, "The Skylark S3 launches on October 14, 2025.", both)
    assert "does not state 'September 9" in one_side
    (uncited,) = unresolved(conflicts, right, {"memo"})
    assert "does not cite agritech_news_article" in uncited
    (silent,) = unresolved(conflicts, "Memo: October 14, 2025. Article: September 9, 2025.", both)
    assert "prevails (marked official)" in silent


def test_a_conflict_is_told_for_an_answer_that_gives_the_prevailing_side() -> None:
    conflicts = find_conflicts(_research(), LAUNCH)
    (complete,) = to_complete(conflicts, "It launches on October 14, 2025.", {"memo"})
    sentence = told(complete)
    assert "October 14, 2025, and it prevails (marked official)" in sentence
    assert "agritech_news_article gives September 9 instead" in sentence
    # What it adds passes the check it was added for.
    assert (
        unresolved(conflicts, f"It launches on October 14, 2025. {sentence}", {"memo", "article"})
        == []
    )
    # The side that lost, or no date at all: not completed (it would contradict the answer).
    assert to_complete(conflicts, "It launches on September 9, 2025.", {"article"}) == []
    assert to_complete(conflicts, "The evidence does not say.", set()) == []


def test_the_later_document_is_told_without_its_date() -> None:
    statements = [
        Statement("Date: March 3, 2025. The Falcon launch is set for May 5, 2025.", "a", "A"),
        Statement("Date: April 9, 2025. The Falcon launch is set for June 30, 2025.", "b", "B"),
    ]
    (conflict,) = find_conflicts(statements, "When is the Falcon launch?")
    assert told(conflict) == (
        "Sources disagree: B gives June 30, 2025, and it prevails (it is the later document); "
        "A gives May 5, 2025 instead."
    )


def test_the_note_for_the_model_names_each_side_by_its_evidence_id() -> None:
    note = conflict_note(find_conflicts(_research(), LAUNCH))
    assert "sources disagree" in note and "'October 14, 2025'" in note
    assert "[memo.c0." in note and "[article.c0." in note
    assert "prevails: marked official" in note and "prevails and why" in note
    assert "October 14, 2025, as Memorandum" in note and "gives September 9" in note


def test_word_forms_share_a_stem() -> None:
    assert stem("termination") == stem("terminate") == stem("terminated")
    assert stem("renewal") == stem("renew") == stem("renews")


def test_a_range_or_pair_that_writes_its_unit_once_gives_both_values() -> None:
    def shown(text: str) -> list[str]:
        return [v.written for v in values(text)]

    assert shown("Notice fell from 90 to 60 days.") == ["90 days", "60 days"]
    assert shown("between 30 and 45 calendar days") == ["30 calendar days", "45 calendar days"]
    assert shown("growth of 5 or 6%") == ["5%", "6%"]
    assert shown("from 90\u201360 days") == ["90 days", "60 days"]
    # A number followed by a word that is no unit stays a bare number.
    assert shown("the 2 and 3 agreements") == []
    assert shown("from 2023 to 2025 the price") == []
