"""The extraction pipeline: per-field spans, nulls with reasons, outputs, resumability."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from maestro_lite import Maestro, ModelCall, UserError
from pipelines import ExtractionOutput, Extractor, optional_model, schema_from_json

from .conftest import MemoryRetriever, chunk, cite, evidence, routed

ALPHA = [
    "This Supply Agreement is made between Calder Inc. and Brightline Corp.",
    "This Agreement is governed by the laws of the State of New York.",
]
BETA = ["This License is made between Orion LLC and Vega Ltd."]
GAMMA = ["This Services Agreement is made between Atlas SA and Borealis AG."]


class Contract(BaseModel):
    """A few contract fields."""

    parties: list[str] = Field(description="the parties to the agreement")
    governing_law: str = Field(description="the law that governs the agreement")
    cap_on_liability: bool = Field(description="whether liability is capped")


@pytest.fixture
def corpus() -> MemoryRetriever:
    return MemoryRetriever(
        [
            chunk("alpha", "Alpha agreement", ALPHA[0], page=1, index=0),
            chunk("alpha", "Alpha agreement", ALPHA[1], page=3, index=1),
            chunk("beta", "Beta license", BETA[0]),
            chunk("gamma", "Gamma services", GAMMA[0]),
        ]
    )


def extract(call: ModelCall) -> dict[str, Any]:
    """Parties from the 'made between' sentence, the law when stated, never the cap."""
    shown = evidence(call)
    made = next(t for t in shown.values() if "made between" in t)
    names = made.split("between ", 1)[1].rstrip(".").split(" and ")
    law = [t for t in shown.values() if "governed by" in t]
    return {
        "parties": {"value": names, "evidence": cite(call, "made between")},
        "governing_law": (
            {"value": "New York", "evidence": cite(call, "governed by")}
            if law
            else {"value": None, "missing_reason": "no governing-law clause in the evidence"}
        ),
        "cap_on_liability": {"value": None, "missing_reason": "no liability clause found"},
    }


async def test_each_value_has_its_span_and_absent_fields_are_null_with_a_reason(
    corpus: MemoryRetriever,
) -> None:
    model = routed(ExtractedContract=extract)
    extractor = Extractor(Maestro(model), Contract)
    summary = await extractor.run(corpus=corpus, documents=["alpha", "beta"])

    alpha, beta = sorted(summary.records, key=lambda r: r.document_id)
    assert alpha.status == "ok" and alpha.data == {
        "parties": ["Calder Inc.", "Brightline Corp"],
        "governing_law": "New York",
        "cap_on_liability": None,
    }
    law = alpha.fields["governing_law"]
    assert law.status == "found"
    assert [(c.document_id, c.page, c.quote) for c in law.citations] == [("alpha", 3, ALPHA[1])]
    cap = alpha.fields["cap_on_liability"]
    assert (cap.status, cap.value, cap.missing_reason) == (
        "missing",
        None,
        "no liability clause found",
    )
    assert beta.fields["governing_law"].missing_reason == "no governing-law clause in the evidence"
    assert beta.fields["parties"].citations[0].document_id == "beta"
    # Each field was searched for with its own query, inside the document only.
    assert "the law that governs the agreement" in corpus.queries
    prompt = model.calls[0].last_user
    assert "Alpha agreement" in prompt and "Beta license" not in prompt


async def test_a_value_without_a_verified_span_is_dropped_not_invented(
    corpus: MemoryRetriever,
) -> None:
    def invent(call: ModelCall) -> dict[str, Any]:
        answer = extract(call)
        answer["cap_on_liability"] = {"value": True}  # no evidence cited
        return answer

    strict = Extractor(Maestro(routed(ExtractedContract=invent)), Contract)
    record = (await strict.run(corpus=corpus, documents=["alpha"])).records[0]
    cap = record.fields["cap_on_liability"]
    assert (cap.status, cap.value, cap.unverified_value) == ("unverified", None, True)
    assert cap.missing_reason == "value dropped: no source span was cited for it"

    lenient = Extractor(Maestro(routed(ExtractedContract=invent)), Contract, strict=False)
    record = (await lenient.run(corpus=corpus, documents=["alpha"])).records[0]
    assert record.fields["cap_on_liability"].value is True
    assert record.fields["cap_on_liability"].status == "unverified"


async def test_records_go_to_jsonl_csv_and_sqlite(corpus: MemoryRetriever, tmp_path: Path) -> None:
    extractor = Extractor(Maestro(routed(ExtractedContract=extract)), Contract, concurrency=3)
    output = ExtractionOutput(tmp_path, extractor.record_type, table="contracts")
    summary = await extractor.run(corpus=corpus, output=output)
    assert len(summary.records) == 3 and not summary.failed

    lines = output.jsonl.read_text().splitlines()
    assert sorted(json.loads(line)["document_id"] for line in lines) == ["alpha", "beta", "gamma"]

    with output.csv.open(newline="") as handle:
        rows = {r["document_id"]: r for r in csv.DictReader(handle)}
    assert json.loads(rows["alpha"]["parties"]) == ["Calder Inc.", "Brightline Corp"]
    assert rows["alpha"]["governing_law__source"] == f"p.3: {ALPHA[1]}"
    assert rows["gamma"]["governing_law"] == ""
    assert rows["gamma"]["governing_law__missing_reason"] == (
        "no governing-law clause in the evidence"
    )

    with sqlite3.connect(output.sqlite) as db:
        found = db.execute(
            "SELECT document_id, governing_law, cap_on_liability__missing_reason, record_json "
            'FROM "contracts" ORDER BY document_id'
        ).fetchall()
    db.close()
    assert [(r[0], r[1], r[2]) for r in found] == [
        ("alpha", "New York", "no liability clause found"),
        ("beta", None, "no liability clause found"),
        ("gamma", None, "no liability clause found"),
    ]
    assert json.loads(found[0][3])["fields"]["governing_law"]["citations"][0]["page"] == 3


async def test_a_resumed_run_skips_finished_documents_and_retries_failed_ones(
    corpus: MemoryRetriever, tmp_path: Path
) -> None:
    def flaky(call: ModelCall) -> Any:
        if "Gamma services" in call.prompt:
            return "not json"  # every re-ask too: the document fails
        return extract(call)

    output = ExtractionOutput(tmp_path, Contract)
    first = await Extractor(Maestro(routed(ExtractedContract=flaky)), Contract).run(
        corpus=corpus, output=output
    )
    assert [r.document_id for r in first.failed] == ["gamma"]
    assert (first.failed[0].fields["parties"].missing_reason or "").startswith("not extracted:")
    assert set(output.done()) == {"alpha", "beta"}
    # A line cut short by a crash does not stop the next run.
    with output.jsonl.open("a") as handle:
        handle.write('{"document_id": "alp')

    model = routed(ExtractedContract=extract)
    second = await Extractor(Maestro(model), Contract).run(corpus=corpus, output=output)
    assert sorted(second.skipped) == ["alpha", "beta"]
    assert [r.document_id for r in second.records] == ["gamma"]
    assert second.records[0].status == "ok"
    assert len(model.calls) == 1  # only gamma was asked for
    assert {k: r.status for k, r in output.records().items()} == {
        "alpha": "ok",
        "beta": "ok",
        "gamma": "ok",
    }
    with output.csv.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 3

    third = await Extractor(Maestro(model), Contract).run(
        corpus=corpus, output=output, resume=False, documents=["beta"]
    )
    assert [r.document_id for r in third.records] == ["beta"]


async def test_fields_can_be_asked_in_groups(corpus: MemoryRetriever) -> None:
    model = routed(
        ExtractedContract1=lambda call: {
            k: v for k, v in extract(call).items() if k in ("parties", "governing_law")
        },
        ExtractedContract2=lambda call: {"cap_on_liability": extract(call)["cap_on_liability"]},
    )
    extractor = Extractor(Maestro(model), Contract, fields_per_step=2)
    record = await extractor.extract((await corpus.documents())[0], corpus=corpus)
    assert [c.schema_title for c in model.calls] == ["ExtractedContract1", "ExtractedContract2"]
    assert record.data["governing_law"] == "New York" and len(record.run_ids) == 2
    assert list(record.fields) == ["parties", "governing_law", "cap_on_liability"]


def test_a_json_schema_becomes_an_optional_record_type() -> None:
    record = schema_from_json(
        {
            "title": "Invoice record",
            "type": "object",
            "properties": {
                "number": {"type": "string", "description": "the invoice number"},
                "total": {"type": "number"},
                "lines": {"type": "integer"},
                "paid": {"type": ["boolean", "null"]},
                "currency": {"enum": ["USD", "EUR"]},
                "items": {"type": "array", "items": {"type": "string"}},
                "due": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
            },
            "required": ["number"],
        }
    )
    assert record.__name__ == "Invoicerecord"
    assert record.model_fields["number"].description == "the invoice number"
    empty = record()
    assert all(v is None for v in empty.model_dump().values())  # absent is null, not invalid
    full = record(number="7", total=1.5, lines=2, paid=True, currency="EUR", items=["a"])
    assert full.model_dump()["items"] == ["a"]
    with pytest.raises(ValidationError):
        record(currency="GBP")
    with pytest.raises(UserError):
        schema_from_json({"type": "array", "items": {"type": "string"}})


def test_required_fields_become_optional() -> None:
    record = optional_model(Contract)
    assert record.__name__ == "Contract"
    assert record().model_dump() == {
        "parties": None,
        "governing_law": None,
        "cap_on_liability": None,
    }
    assert record.model_fields["governing_law"].description == "the law that governs the agreement"


def test_output_rejects_a_bad_table_name_or_format(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        ExtractionOutput(tmp_path, Contract, table="x; DROP TABLE y")
    with pytest.raises(UserError):
        ExtractionOutput(tmp_path, Contract, formats=["xml"])
