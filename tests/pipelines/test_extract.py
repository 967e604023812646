"""The extraction pipeline: per-field spans, nulls with reasons, outputs, resumability."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from maestro_lite import Maestro, UserError
from maestro_lite.testing import ModelCall
from pipelines import ExtractionOutput, Extractor, optional_model, schema_from_json

from .conftest import MemoryRetriever, chunk, cite, evidence, routed, step_of

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


@pytest.mark.parametrize("concurrency", [2, 3])
async def test_documents_are_extracted_concurrently_up_to_the_limit(
    corpus: MemoryRetriever, concurrency: int
) -> None:
    in_flight: set[str] = set()
    most = 0
    together = asyncio.Event()

    async def held(call: ModelCall) -> dict[str, Any]:
        # Each call waits until `concurrency` documents are in flight at once: with fewer
        # in parallel the test would stop here (the guard below), never pass by chance.
        nonlocal most
        title = next(t for t in ("Alpha", "Beta", "Gamma") if t in call.prompt)
        in_flight.add(title)
        most = max(most, len(in_flight))
        if len(in_flight) >= concurrency:
            together.set()
        await asyncio.wait_for(together.wait(), timeout=30)
        in_flight.discard(title)
        return extract(call)

    extractor = Extractor(
        Maestro(routed(ExtractedContract=held)), Contract, concurrency=concurrency
    )
    summary = await extractor.run(corpus=corpus)
    assert most == concurrency  # never more than the limit
    assert sorted(r.document_id for r in summary.records) == ["alpha", "beta", "gamma"]


LEGACY_TABLE = (
    'CREATE TABLE IF NOT EXISTS "records" ("document_id" TEXT PRIMARY KEY, "title", "path", '
    '"status", "error", "parties", "parties__source", "parties__missing_reason", '
    '"governing_law", "governing_law__source", "governing_law__missing_reason", "record_json")'
)


async def test_a_schema_change_adds_its_columns_to_an_existing_table(
    corpus: MemoryRetriever, tmp_path: Path
) -> None:
    class Narrow(BaseModel):
        parties: list[str] = Field(description="the parties to the agreement")
        governing_law: str = Field(description="the law that governs the agreement")

    def narrow(call: ModelCall) -> dict[str, Any]:
        return {k: v for k, v in extract(call).items() if k in Narrow.model_fields}

    first = Extractor(Maestro(routed(ExtractedNarrow=narrow)), Narrow)
    await first.run(corpus=corpus, documents=["alpha"], output=first.output(tmp_path))

    model = routed(ExtractedContract=extract)
    wider = Extractor(Maestro(model), Contract)
    output = wider.output(tmp_path)
    summary = await wider.run(corpus=corpus, documents=["alpha", "beta"], output=output)

    assert output.added_columns == [
        "cap_on_liability",
        "cap_on_liability__source",
        "cap_on_liability__missing_reason",
    ]
    # alpha was extracted before the field existed, so it is extracted again.
    assert summary.skipped == [] and len(model.calls) == 2
    with sqlite3.connect(output.sqlite) as db:
        rows = db.execute(
            'SELECT document_id, cap_on_liability__missing_reason FROM "records" '
            "ORDER BY document_id"
        ).fetchall()
    db.close()
    assert rows == [("alpha", "no liability clause found"), ("beta", "no liability clause found")]


async def test_a_table_of_the_other_mode_is_a_clear_error(
    corpus: MemoryRetriever, tmp_path: Path
) -> None:
    with sqlite3.connect(tmp_path / "records.sqlite") as db:  # written by an earlier version
        db.execute(LEGACY_TABLE)
    db.close()
    model = routed(ExtractedContract=extract)
    per_item = Extractor(Maestro(model), Contract, per_item=True)
    with pytest.raises(UserError) as raised:
        await per_item.run(corpus=corpus, output=per_item.output(tmp_path))
    message = str(raised.value)
    assert "table 'records'" in message and "keyed by ['document_id']" in message
    assert "'item_index'" in message and "'governing_law__source'" in message
    assert model.calls == []  # refused before anything was extracted
    with pytest.raises(UserError, match="per document, the extractor not"):
        await per_item.run(corpus=corpus, output=ExtractionOutput(tmp_path / "x", Contract))


INVOICE = [
    "Invoice 1001 is issued by Calder Inc. to Brightline Corp.",
    "Line 1: 4 actuator housings at USD 120 each.",
    "Line 2: 2 gearbox assemblies at USD 900 each.",
    "Line 3: 1 calibration service, price on request.",
]


class LineItem(BaseModel):
    """A line item of an invoice."""

    description: str = Field(description="what the line item is")
    quantity: int = Field(description="how many units")
    unit_price: float = Field(description="the price per unit in USD")


@pytest.fixture
def invoices() -> MemoryRetriever:
    """The invoice, one chunk per line (two lines a page), at its offsets in the document."""
    lines, at = [], 0
    for i, text in enumerate(INVOICE):
        part = chunk("inv", "Invoice 1001", text, page=1 + i // 2, index=i)
        lines.append(part.model_copy(update={"doc_start": at, "doc_end": at + len(text)}))
        at += len(text) + 1
    return MemoryRetriever([*lines, chunk("lic", "Beta license", BETA[0])])


def list_lines(call: ModelCall) -> dict[str, Any]:
    lines = {i: t for i, t in evidence(call).items() if t.startswith("Line ")}
    if not lines:
        return {"items": {"value": [], "missing_reason": "no line items"}}
    labels = [re.sub(r"^Line \d: \d+ (.*?)(?: at|,) .*$", r"\1", t) for t in lines.values()]
    return {"items": {"value": labels, "evidence": list(lines)}}


def item_fields(call: ModelCall) -> dict[str, Any]:
    label = re.search(r"unit price of '(.*?)'", step_of(call))
    assert label, step_of(call)
    line = cite(call, label.group(1))
    text = evidence(call)[line[0]]
    quantity = int(re.search(r": (\d+) ", text).group(1))  # type: ignore[union-attr]
    price = re.search(r"USD (\d+)", text)
    return {
        "description": {"value": label.group(1), "evidence": line},
        "quantity": {"value": quantity, "evidence": line},
        "unit_price": (
            {"value": float(price.group(1)), "evidence": line}
            if price
            else {"value": None, "missing_reason": "the price is on request"}
        ),
    }


async def test_per_item_mode_extracts_every_item_with_its_spans(
    invoices: MemoryRetriever, tmp_path: Path
) -> None:
    model = routed(ExtractedLineItemList=list_lines, ExtractedLineItem=item_fields)
    extractor = Extractor(Maestro(model), LineItem, per_item=True)
    output = extractor.output(tmp_path, table="line_items")
    summary = await extractor.run(corpus=invoices, output=output)

    records = {r.document_id: r for r in summary.records}
    invoice, license_ = records["inv"], records["lic"]
    assert invoice.status == "ok" and license_.status == "ok" and license_.items == []
    assert invoice.items is not None and invoice.fields == {}
    assert [(i.index, i.label) for i in invoice.items] == [
        (1, "actuator housings"),
        (2, "gearbox assemblies"),
        (3, "calibration service"),
    ]
    first, second, third = invoice.items
    assert first.data == {"description": "actuator housings", "quantity": 4, "unit_price": 120.0}
    assert [(c.page, c.quote) for c in second.fields["unit_price"].citations] == [(2, INVOICE[2])]
    price = third.fields["unit_price"]
    assert (price.status, price.value, price.missing_reason) == (
        "missing",
        None,
        "the price is on request",
    )
    assert [c.quote for c in first.label_citations] == INVOICE[1:]
    # Each item was asked for by name, in the instruction and the queries.
    assert "gearbox assemblies the price per unit in USD" in invoices.queries
    assert [c.schema_title for c in model.calls].count("ExtractedLineItem") == 3

    with output.csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["document_id"], r["item_index"], r["item_label"]) for r in rows] == [
        ("inv", "1", "actuator housings"),
        ("inv", "2", "gearbox assemblies"),
        ("inv", "3", "calibration service"),
    ]  # the license holds no line item: no row
    assert rows[1]["unit_price__source"] == f"p.2: {INVOICE[2]}"
    assert rows[2]["unit_price"] == "" and rows[2]["unit_price__missing_reason"] == (
        "the price is on request"
    )

    # Extracted again, a document's rows are replaced, not added to.
    await extractor.run(corpus=invoices, output=output, resume=False, documents=["inv"])
    with sqlite3.connect(output.sqlite) as db:
        found = db.execute(
            'SELECT document_id, item_index, quantity FROM "line_items" ORDER BY item_index'
        ).fetchall()
    db.close()
    assert found == [("inv", 1, 4), ("inv", 2, 2), ("inv", 3, 1)]
    assert {k: len(r.items or []) for k, r in output.done().items()} == {"inv": 3, "lic": 0}
