"""CUAD normalisation and per-field scoring."""

from __future__ import annotations

from pathlib import Path

from evals.cuad import FIELDS, GoldContract, matches, parse_date, parse_duration, score, unscored
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


def test_durations_in_months_or_days() -> None:
    assert parse_duration("30 days") == (30, "days")
    assert parse_duration("successive 1 year") == (12, "months")
    assert parse_duration("one (1) year") == (12, "months")
    assert parse_duration("sixty (60) days") == (60, "days")
    assert parse_duration("6 months") == (6, "months")
    assert parse_duration("0.5 year") == (6, "months")
    assert parse_duration("2 weeks") == (14, "days")
    assert parse_duration("until terminated") is None


def test_durations_in_words_and_hyphenated_forms() -> None:
    assert parse_duration("a one-year renewal term") == (12, "months")
    assert parse_duration("two (2) years") == (24, "months")
    assert parse_duration("twenty-four months") == (24, "months")
    assert parse_duration("a sixty-day notice") == (60, "days")
    assert parse_duration("forty five (45) days") == (45, "days")
    assert parse_duration("for a term of one year") == (12, "months")
    assert parse_duration("successive 12 months") == parse_duration("1 year")


def test_field_matching() -> None:
    assert matches("agreement_date", "June 21, 1999", "6/21/99")
    assert not matches("agreement_date", "June 22, 1999", "6/21/99")
    assert matches("agreement_date", "November 3, 2006", "11/[]/2006")  # unknown day
    assert matches("renewal_term", "one (1) year", "Successive 1 year")
    assert matches("renewal_term", "12 months", "successive 1 year")
    assert matches("renewal_term", "two-year", "2 years")
    assert not matches("renewal_term", "one year", "successive 2 years")
    assert not matches("notice_period_to_terminate_renewal", "60 days", "30 days")
    assert not matches("notice_period_to_terminate_renewal", "90 days", "3 months")
    assert matches("governing_law", "the laws of the State of California", "California")
    assert not matches("governing_law", "Delaware", "California")
    assert matches("cap_on_liability", True, "Yes")
    assert not matches("cap_on_liability", True, "No")
    assert not matches("termination_for_convenience", "yes", "Yes")  # must be a boolean
    gold = 'I-ESCROW, INC.  ("i-Escrow" ); 2THEMART.COM, INC. ("2TheMart")'
    assert matches("parties", ["i-Escrow, Inc.", "2TheMart.com, Inc."], gold)
    assert matches("parties", ["2THEMART.COM"], gold)  # half of the parties
    assert not matches("parties", ["Acme Corp"], gold)


def test_parties_match_as_whole_names() -> None:
    assert not matches("parties", ["X"], "Xerox Corp")  # not a word inside another
    assert not matches("parties", ["York"], "New York Life Insurance Company")
    assert not matches("parties", ["New"], "New York Life Insurance Company")
    assert matches("parties", ["Brightline"], "Brightline Robotics, Inc.")  # leading words
    assert matches("parties", ["New York Life"], "New York Life Insurance Company")
    # CUAD nests parentheses: the names inside survive, the aliases do not.
    gold = '(AFSALA  Bancorp,  Inc. (the  "Company"); Capital Resources, Inc. ("CR"))'
    assert matches("parties", ["AFSALA Bancorp"], gold)
    assert matches("parties", ["Capital Resources Inc"], gold)
    assert not matches("parties", ["Company"], gold)


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
    assert (law.tp, law.fp, law.fn) == (1, 1, 2)  # c.pdf has no record: a miss
    assert (renewal.tp, renewal.fp, renewal.fn) == (0, 1, 1)
    assert (renewal.found, renewal.unverified) == (1, 1)
    assert law.precision == 0.5 and law.recall == 1 / 3
    assert renewal.precision == 0.0 and renewal.recall == 0.0


def contract(name: str, **answers: str) -> GoldContract:
    return GoldContract(name, Path(f"/data/{name}.txt"), {f: answers.get(f, "") for f in FIELDS})


def test_yes_no_fields_score_the_detection_of_a_yes() -> None:
    gold = [
        contract("a", cap_on_liability="Yes"),
        contract("b", cap_on_liability="Yes"),
        contract("c", cap_on_liability="No"),
        contract("d", cap_on_liability="No"),
        contract("e", cap_on_liability="No"),
    ]

    def said(value: bool | None) -> ExtractionRecord:
        field = (
            FieldValue(status="missing", missing_reason="no such clause")
            if value is None
            else FieldValue(status="found", value=value)
        )
        return ExtractionRecord(
            document_id="x", title="x", path="x", status="ok", fields={"cap_on_liability": field}
        )

    records = {"A": said(True), "B": said(None), "C": said(None), "D": said(True), "E": said(False)}
    ids = {g.name: g.name.upper() for g in gold}
    cap = {s.field: s for s in score(records, gold, ids)}["cap_on_liability"]
    # a: found (TP); b: a Yes missed (FN); c, e: a No not claimed (nothing); d: a false Yes.
    assert (cap.tp, cap.fp, cap.fn) == (1, 1, 1)


def test_contracts_without_a_record_are_misses_and_reported() -> None:
    gold = [contract("ok", governing_law="Texas"), contract("bad", governing_law="Ohio")]
    gold.append(contract("late", governing_law="Utah", termination_for_convenience="Yes"))
    record = ExtractionRecord(
        document_id="OK",
        title="ok",
        path="ok",
        status="ok",
        fields={"governing_law": FieldValue(status="found", value="Texas")},
    )
    ids = {"ok": "OK", "late": "LATE"}  # "bad" failed ingestion: no document id
    scores = {s.field: s for s in score({"OK": record}, gold, ids)}
    assert (scores["governing_law"].tp, scores["governing_law"].fn) == (1, 2)
    assert scores["termination_for_convenience"].fn == 1
    failures = {"/data/bad.txt": "ingestion failed (malformed): no text"}
    assert unscored({"OK": record}, gold, ids, failures) == {
        "bad": "ingestion failed (malformed): no text",
        "late": "not extracted",
    }


def test_misspelled_months_parse() -> None:
    assert parse_date("15 JANAURY, 2018") == (2018, 1, 15)
    assert parse_date("Septmber 3, 2019") == (2019, 9, 3)
    assert parse_date("Marc Jones, 2019") == (2019, None, None)  # a name, not March


def test_an_expiration_term_matches_the_date_it_comes_to_from_the_records_own_start() -> None:
    term = "5 years following the Effective Date"
    assert matches("expiration_date", term, "9/23/21", start="September 23, 2016")
    assert not matches("expiration_date", term, "9/23/22", start="September 23, 2016")
    assert not matches("expiration_date", term, "9/23/21")  # no start date: no date to match
    assert matches("expiration_date", "10 years", "1/15/28", start="15 JANAURY, 2018")
    assert matches("expiration_date", "thirty (30) days", "2/9/20", start="January 10, 2020")

    def record(**fields: str) -> ExtractionRecord:
        values = {f: FieldValue(status="found", value=v) for f, v in fields.items()}
        return ExtractionRecord(document_id="A", title="a", path="a", status="ok", fields=values)

    gold = [contract("a.pdf", effective_date="9/23/16", expiration_date="9/23/21")]
    own = record(effective_date="September 23, 2016", expiration_date=term)
    scores = {s.field: s for s in score({"A": own}, gold, {"a.pdf": "A"})}
    assert (scores["expiration_date"].tp, scores["expiration_date"].fp) == (1, 0)
    # From a wrong start date of its own, the same term is a wrong expiration.
    wrong = record(effective_date="September 23, 2015", expiration_date=term)
    scores = {s.field: s for s in score({"A": wrong}, gold, {"a.pdf": "A"})}
    assert (scores["expiration_date"].tp, scores["expiration_date"].fp) == (0, 1)
