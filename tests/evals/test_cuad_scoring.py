"""CUAD normalisation and per-field scoring."""

from __future__ import annotations

from pathlib import Path

from evals.cuad import GoldContract, matches, parse_date, parse_duration, score
from pipelines import ExtractionRecord, FieldValue


def test_dates_in_cuad_and_contract_forms() -> None:
    assert parse_date("6/21/99") == (1999, 6, 21)
    assert parse_date("1/15/18") == (2018, 1, 15)
    assert parse_date("[]/[]/1996") == (1996, None, None)
    assert parse_date("11/[]/2006") == (2006, 11, None)
    assert parse_date("June 21, 1999") == (1999, 6, 21)
    assert parse_date("the 21st day of June, 1999") == (1999, 6, 21)
    assert parse_date("2023-03-01") == (2023, 3, 1)
    assert parse_date("perpetual") is None


def test_durations_in_days() -> None:
    assert parse_duration("30 days") == 30
    assert parse_duration("successive 1 year") == 365
    assert parse_duration("one (1) year") == 365
    assert parse_duration("sixty (60) days") == 60
    assert parse_duration("6 months") == 180
    assert parse_duration("until terminated") is None


def test_field_matching() -> None:
    assert matches("agreement_date", "June 21, 1999", "6/21/99")
    assert not matches("agreement_date", "June 22, 1999", "6/21/99")
    assert matches("agreement_date", "November 3, 2006", "11/[]/2006")  # unknown day
    assert matches("renewal_term", "one (1) year", "Successive 1 year")
    assert not matches("notice_period_to_terminate_renewal", "60 days", "30 days")
    assert matches("governing_law", "the laws of the State of California", "California")
    assert not matches("governing_law", "Delaware", "California")
    assert matches("cap_on_liability", True, "Yes")
    assert not matches("cap_on_liability", True, "No")
    assert not matches("termination_for_convenience", "yes", "Yes")  # must be a boolean
    gold = 'I-ESCROW, INC.  ("i-Escrow" ); 2THEMART.COM, INC. ("2TheMart")'
    assert matches("parties", ["i-Escrow, Inc.", "2TheMart.com, Inc."], gold)
    assert matches("parties", ["2THEMART.COM"], gold)  # half of the parties
    assert not matches("parties", ["Acme Corp"], gold)


def test_counts_per_field() -> None:
    gold = [
        GoldContract("a.pdf", Path("a.txt"), {"governing_law": "Texas", "renewal_term": ""}),
        GoldContract("b.pdf", Path("b.txt"), {"governing_law": "Ohio", "renewal_term": "1 year"}),
        GoldContract("c.pdf", Path("c.txt"), {"governing_law": "Utah", "renewal_term": ""}),
    ]
    for g in gold:
        for field in ("parties", "agreement_date", "effective_date", "expiration_date"):
            g.answers.setdefault(field, "")
        for field in (
            "notice_period_to_terminate_renewal",
            "cap_on_liability",
            "termination_for_convenience",
        ):
            g.answers.setdefault(field, "")

    def record(doc: str, **fields: FieldValue) -> ExtractionRecord:
        return ExtractionRecord(document_id=doc, title=doc, path=doc, status="ok", fields=fields)

    records = {
        "A": record(
            "A",
            governing_law=FieldValue(status="found", value="State of Texas"),
            renewal_term=FieldValue(status="found", value="2 years"),  # gold empty: FP
        ),
        "B": record(
            "B",
            governing_law=FieldValue(status="found", value="Texas"),  # wrong: FP and FN
            renewal_term=FieldValue(status="unverified", missing_reason="dropped"),  # FN
        ),
    }
    scores = {s.field: s for s in score(records, gold, {"a.pdf": "A", "b.pdf": "B"})}
    law, renewal = scores["governing_law"], scores["renewal_term"]
    assert (law.tp, law.fp, law.fn) == (1, 1, 1)  # c.pdf has no record: not counted
    assert (renewal.tp, renewal.fp, renewal.fn) == (0, 1, 1)
    assert (renewal.found, renewal.unverified) == (1, 1)
    assert law.precision == 0.5 and law.recall == 0.5
    assert renewal.precision == 0.0 and renewal.recall == 0.0
