"""Structured extraction: a schema and documents become validated records with source spans.

One record per document. The plan is declared in Python: one ``extract`` step per group of
fields, retrieval filtered to the document with one query per field (its description) and a
few chunks each. Every field of the step's output carries its own evidence ids, so every
value comes with its own source span; a field the evidence does not state is null with the
model's reason. The pipeline then verifies each value's span against the stored text (the
span check the validator uses): a value whose span does not verify is not kept, it becomes
null with the reason, so nothing in a record is invented.

Records go to JSON Lines (the log a resumed run reads, so finished documents are skipped), a
SQLite table (one row per document, upserted as it finishes) and CSV (written from the log).
Documents are extracted concurrently, up to ``concurrency`` at a time.

Example::

    class Contract(BaseModel):
        parties: list[str] = Field(description="the parties to the agreement")
        governing_law: str = Field(description="the law that governs the agreement")

    extractor = Extractor(maestro, Contract)
    summary = await extractor.run(corpus=corpus, output=ExtractionOutput("out/", Contract))
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, Field, ValidationError, create_model

from maestro_lite import (
    Budget,
    BudgetPreset,
    Chunk,
    Citation,
    DocumentInfo,
    EventHandler,
    Maestro,
    Plan,
    RequirementLike,
    Retriever,
    RunResult,
    SearchFilter,
    Step,
    Usage,
    UserError,
    check_citations,
)

from ._budget import fit_budget
from ._docs import display_name, match_documents

__all__ = [
    "ExtractionOutput",
    "ExtractionRecord",
    "ExtractionSummary",
    "Extractor",
    "FieldValue",
    "extraction_plan",
    "optional_model",
    "schema_from_json",
]


class FieldValue(BaseModel):
    """One extracted field."""

    value: Any = None
    """The value; ``None`` when the document does not state it."""
    status: Literal["found", "missing", "unverified"]
    """``found``: a value whose source span verified; ``missing``: the model found none;
    ``unverified``: the model gave a value but its span did not verify, so it was dropped."""
    missing_reason: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    """The source spans of the value (document, page, offsets, exact quote)."""
    unverified_value: Any = None
    """What the model answered, kept for audit when its span did not verify."""


class ExtractionRecord(BaseModel):
    """The record of one document."""

    document_id: str
    title: str
    path: str
    status: Literal["ok", "failed"]
    """``failed``: no usable output (a resumed run tries the document again)."""
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    error: str | None = None
    run_ids: list[str] = Field(default_factory=list)
    model: str | None = None
    usage: Usage = Field(default_factory=Usage)
    wall_seconds: float = 0.0
    extracted_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def data(self) -> dict[str, Any]:
        """Field name -> value (``None`` for absent fields)."""
        return {name: f.value for name, f in self.fields.items()}

    def row(self) -> dict[str, Any]:
        """A flat row: the document, then per field its value, source and missing reason."""
        row: dict[str, Any] = {
            "document_id": self.document_id,
            "title": self.title,
            "path": self.path,
            "status": self.status,
            "error": self.error or "",
        }
        for name, f in self.fields.items():
            row[name] = f.value
            row[f"{name}__source"] = " | ".join(
                f"p.{c.page}: {' '.join(c.quote.split())}" for c in f.citations
            )
            row[f"{name}__missing_reason"] = f.missing_reason or ""
        return row


class ExtractionSummary(BaseModel):
    """What a run over many documents did."""

    records: list[ExtractionRecord] = Field(default_factory=list)
    """Records extracted by this run."""
    skipped: list[str] = Field(default_factory=list)
    """Document ids already extracted in the output (resumed)."""
    usage: Usage = Field(default_factory=Usage)
    wall_seconds: float = 0.0

    @property
    def failed(self) -> list[ExtractionRecord]:
        return [r for r in self.records if r.status == "failed"]


# -- schemas ----------------------------------------------------------------------------------


def optional_model(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every field optional (default ``None``): absent fields are null with a
    reason, never invented to satisfy a required field."""
    fields: dict[str, Any] = {
        name: (
            _nullable(info.annotation),
            Field(default=None, description=info.description, title=info.title),
        )
        for name, info in model.model_fields.items()
    }
    return create_model(model.__name__, __doc__=model.__doc__, **fields)


def _nullable(annotation: Any) -> Any:
    return annotation | None


_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
}


def _json_type(spec: Mapping[str, Any]) -> Any:
    if "enum" in spec and all(isinstance(v, str) for v in spec["enum"]):
        return cast(Any, Literal)[tuple(spec["enum"])]
    for key in ("anyOf", "oneOf"):
        if key in spec:
            options = [o for o in spec[key] if o.get("type") != "null"]
            return _json_type(options[0]) if options else Any
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "array":
        return cast(Any, list)[_json_type(spec.get("items", {}))]
    if kind == "object":
        return dict[str, Any]
    return _JSON_TYPES.get(str(kind), Any)


def schema_from_json(schema: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model (every field optional) from a JSON schema of an object.

    Supports the types records use: strings (any ``format``), numbers, integers, booleans,
    string enums, arrays of those, and nullable variants; nested objects become free dicts.

    Raises:
        UserError: The schema does not describe an object with properties.
    """
    properties = schema.get("properties")
    if schema.get("type", "object") != "object" or not isinstance(properties, Mapping):
        raise UserError(
            "the extraction schema must be a JSON schema of an object with properties",
            hint='For example {"type": "object", "properties": {"name": {"type": "string"}}}.',
        )
    name = re.sub(r"\W", "", str(schema.get("title", "Record"))) or "Record"
    fields: dict[str, Any] = {
        key: (
            _nullable(_json_type(spec)),
            Field(default=None, description=spec.get("description")),
        )
        for key, spec in properties.items()
    }
    return create_model(name, __doc__=schema.get("description"), **fields)


def _query(name: str, info: Any) -> str:
    return str(info.description or name.replace("_", " "))


# -- the plan ---------------------------------------------------------------------------------


def extraction_plan(
    document: DocumentInfo,
    record_type: type[BaseModel],
    *,
    k: int = 2,
    instructions: str = "",
) -> Plan:
    """One ``extract`` step: retrieval filtered to ``document``, one query per field."""
    names = ", ".join(n.replace("_", " ") for n in record_type.model_fields)
    return Plan(
        steps=[
            Step(
                id="extract",
                kind="extract",
                instruction=f"Extract {names} from {display_name(document)}. "
                f"{instructions}".strip(),
                queries=[_query(n, i) for n, i in record_type.model_fields.items()],
                filters=SearchFilter(document_ids=[document.id]),
                k=k,
            )
        ],
        rationale="Fields of one document, each with its own query; spans verified after.",
    )


def _groups(record_type: type[BaseModel], size: int | None) -> list[type[BaseModel]]:
    names = list(record_type.model_fields)
    if not size or size >= len(names):
        return [record_type]
    groups = []
    for start in range(0, len(names), size):
        chosen = names[start : start + size]
        fields: dict[str, Any] = {
            n: (record_type.model_fields[n].annotation, record_type.model_fields[n]) for n in chosen
        }
        groups.append(create_model(f"{record_type.__name__}{start // size + 1}", **fields))
    return groups


# -- the pipeline -----------------------------------------------------------------------------


class Extractor:
    """The structured-extraction pipeline.

    Args:
        maestro: The orchestrator.
        schema: A pydantic model or a JSON schema of one record. Every field becomes
            optional: a value the document does not state is null with a reason.
        k: Chunks retrieved per field.
        fields_per_step: Fields asked in one model call (all when ``None``). Smaller groups
            give a small model fewer things to track at once, at the price of more calls.
        budget: A preset is raised to what the plan needs; a :class:`Budget` is used as given.
        requirements: Extra requirements for every document's run.
        concurrency: Documents extracted at once.
        strict: Drop values whose source span does not verify (keep them, marked
            ``unverified``, when false).
        instructions: Added to every step's instruction (conventions, units, date format).
    """

    def __init__(
        self,
        maestro: Maestro,
        schema: type[BaseModel] | Mapping[str, Any],
        *,
        k: int = 2,
        fields_per_step: int | None = None,
        budget: Budget | BudgetPreset = "low",
        requirements: Sequence[RequirementLike] = (),
        concurrency: int = 2,
        strict: bool = True,
        instructions: str = "",
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.maestro = maestro
        self.record_type = (
            optional_model(schema) if isinstance(schema, type) else schema_from_json(schema)
        )
        self.k = k
        self.groups = _groups(self.record_type, fields_per_step)
        self.budget = budget
        self.requirements = list(requirements)
        self.concurrency = concurrency
        self.strict = strict
        self.instructions = instructions

    @property
    def fields(self) -> list[str]:
        return list(self.record_type.model_fields)

    async def extract(
        self,
        document: DocumentInfo,
        *,
        corpus: Retriever,
        on_event: EventHandler | None = None,
    ) -> ExtractionRecord:
        """The record of one document (never raises for a model failure: the record says)."""
        fields: dict[str, FieldValue] = {}
        runs: list[RunResult] = []
        errors: list[str] = []
        for group in self.groups:
            plan = extraction_plan(document, group, k=self.k, instructions=self.instructions)
            result = await self.maestro.run(
                f"Extract a {self.record_type.__name__} record from {display_name(document)}.",
                corpus=corpus,
                requirements=self.requirements,
                budget=fit_budget(self.budget, plan),
                output_type=group,
                plan=plan,
                on_event=on_event,
            )
            runs.append(result)
            if result.status == "failed":
                errors.append(result.error or "no usable output")
            fields.update(await self._fields(document, group, result, corpus))
        usage = sum((r.usage for r in runs), Usage())
        step_models = [s.model for r in runs for s in r.steps.values() if s.model]
        return ExtractionRecord(
            document_id=document.id,
            title=document.title,
            path=document.path,
            status="failed" if errors else "ok",
            fields={name: fields[name] for name in self.fields if name in fields},
            error="; ".join(errors) or None,
            run_ids=[r.run_id for r in runs],
            model=step_models[0] if step_models else None,
            usage=usage,
            wall_seconds=sum(r.wall_seconds for r in runs),
        )

    async def _fields(
        self,
        document: DocumentInfo,
        group: type[BaseModel],
        result: RunResult,
        corpus: Retriever,
    ) -> dict[str, FieldValue]:
        step = result.steps.get("extract")
        if step is None or step.status != "done" or step.data is None:
            reason = (step.error if step else None) or result.error or "the extraction failed"
            return {
                n: FieldValue(status="missing", missing_reason=f"not extracted: {reason}")
                for n in group.model_fields
            }
        cited = {c.text.split(":", 1)[0]: c.citations for c in step.claims}
        spans = [c for cs in cited.values() for c in cs]
        chunks = {c.id: c for c in await corpus.get_chunks(sorted({c.chunk_id for c in spans}))}
        retrieved = {h.chunk.id for h in step.retrieved}
        out: dict[str, FieldValue] = {}
        for name in group.model_fields:
            value = step.data.get(name)
            if value is None or value == [] or value == "":
                reason = step.missing.get(name) or "not stated in the evidence"
                out[name] = FieldValue(status="missing", missing_reason=reason)
                continue
            citations = cited.get(name, [])
            problem = _span_problem(citations, document, retrieved, chunks)
            if problem is None:
                out[name] = FieldValue(status="found", value=value, citations=citations)
            elif self.strict:
                out[name] = FieldValue(
                    status="unverified",
                    missing_reason=f"value dropped: {problem}",
                    citations=citations,
                    unverified_value=value,
                )
            else:
                out[name] = FieldValue(
                    status="unverified",
                    value=value,
                    missing_reason=problem,
                    citations=citations,
                    unverified_value=value,
                )
        return out

    async def run(
        self,
        *,
        corpus: Retriever,
        documents: Sequence[str | DocumentInfo] | None = None,
        output: ExtractionOutput | None = None,
        resume: bool = True,
        on_record: Callable[[ExtractionRecord], None] | None = None,
        on_event: EventHandler | None = None,
    ) -> ExtractionSummary:
        """Extract a record from each document, ``concurrency`` at a time.

        Args:
            corpus: The corpus holding the documents.
            documents: Document infos, or ids, paths or file names; every document of
                ``corpus`` when ``None``.
            output: Where records go as they finish (JSON Lines, SQLite, then CSV).
            resume: Skip documents ``output`` already holds a successful record for.
            on_record: Called with each record as it finishes (progress).
            on_event: Called with every event of every document's run.
        """
        started = asyncio.get_running_loop().time()
        everything = await corpus.documents()
        if documents is None:
            infos = [d for d in everything if d.status == "ok"]
        else:
            infos = [d for d in documents if isinstance(d, DocumentInfo)]
            names = [d for d in documents if not isinstance(d, DocumentInfo)]
            infos += match_documents(everything, names)
        done = output.done() if output is not None and resume else {}
        skipped = [d.id for d in infos if d.id in done]
        todo = [d for d in infos if d.id not in done]
        limit = asyncio.Semaphore(self.concurrency)
        records: list[ExtractionRecord] = []

        async def one(document: DocumentInfo) -> None:
            async with limit:
                record = await self.extract(document, corpus=corpus, on_event=on_event)
            records.append(record)
            if output is not None:
                output.append(record)
            if on_record is not None:
                on_record(record)

        try:
            await asyncio.gather(*(one(d) for d in todo))
        finally:
            if output is not None:
                output.write_csv()
        return ExtractionSummary(
            records=records,
            skipped=skipped,
            usage=sum((r.usage for r in records), Usage()),
            wall_seconds=asyncio.get_running_loop().time() - started,
        )

    def run_sync(self, **kwargs: Any) -> ExtractionSummary:
        """:meth:`run` for code without an event loop."""
        return asyncio.run(self.run(**kwargs))


def _span_problem(
    citations: Sequence[Citation],
    document: DocumentInfo,
    retrieved: set[str],
    chunks: Mapping[str, Chunk],
) -> str | None:
    """Why the value's source spans do not verify, or ``None`` when they do."""
    if not citations:
        return "no source span was cited for it"
    foreign = [c.evidence_id for c in citations if c.document_id != document.id]
    if foreign:
        return f"{', '.join(foreign)} cite another document"
    problems = check_citations(citations, retrieved=retrieved, sources=chunks)
    return "; ".join(problems) if problems else None


# -- output -----------------------------------------------------------------------------------

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class ExtractionOutput:
    """Where extracted records go: ``<stem>.jsonl``, ``<stem>.sqlite`` and ``<stem>.csv``.

    The JSON Lines file is the log: one record per line, appended (and flushed) as each
    document finishes, so an interrupted run loses at most the documents in flight, and a
    resumed run reads it to skip finished documents. The SQLite table has one row per
    document (replaced when a document is extracted again); the CSV is rewritten from the
    log at the end of every run.

    Args:
        directory: Created if needed.
        schema: The record type (or its field names), for the table's columns.
        stem: File name stem.
        table: SQLite table name.
        formats: Which of ``jsonl``, ``csv``, ``sqlite`` to write (JSON Lines always is).
    """

    def __init__(
        self,
        directory: str | Path,
        schema: type[BaseModel] | Sequence[str],
        *,
        stem: str = "records",
        table: str = "records",
        formats: Iterable[str] = ("jsonl", "csv", "sqlite"),
    ) -> None:
        if not _TABLE.fullmatch(table):
            raise UserError(
                f"invalid table name {table!r}", hint="Use letters, digits and underscores."
            )
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fields = list(schema.model_fields) if isinstance(schema, type) else list(schema)
        self.table = table
        self.formats = set(formats) | {"jsonl"}
        unknown = self.formats - {"jsonl", "csv", "sqlite"}
        if unknown:
            raise UserError(
                f"unknown output format(s) {sorted(unknown)}", hint="Use jsonl, csv or sqlite."
            )
        self.jsonl = self.directory / f"{stem}.jsonl"
        self.csv = self.directory / f"{stem}.csv"
        self.sqlite = self.directory / f"{stem}.sqlite"

    def records(self) -> dict[str, ExtractionRecord]:
        """The latest record per document in the log (unreadable lines are skipped: a line
        cut short by a crash must not stop a resumed run)."""
        out: dict[str, ExtractionRecord] = {}
        if not self.jsonl.exists():
            return out
        for line in self.jsonl.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                record = ExtractionRecord.model_validate_json(line)
            except ValidationError:
                continue
            out[record.document_id] = record
        return out

    def done(self) -> dict[str, ExtractionRecord]:
        """Documents with a successful record (failed ones are tried again)."""
        return {k: r for k, r in self.records().items() if r.status == "ok"}

    def append(self, record: ExtractionRecord) -> None:
        """Log ``record`` and upsert its row."""
        # A line left unfinished by a crash must not swallow this record.
        start = "\n" if self._ends_mid_line() else ""
        with self.jsonl.open("a", encoding="utf-8") as handle:
            handle.write(start + record.model_dump_json() + "\n")
            handle.flush()
        if "sqlite" in self.formats:
            self._upsert(record)

    def _ends_mid_line(self) -> bool:
        if not self.jsonl.exists() or self.jsonl.stat().st_size == 0:
            return False
        with self.jsonl.open("rb") as handle:
            handle.seek(-1, 2)
            return handle.read(1) != b"\n"

    def columns(self) -> list[str]:
        base = ["document_id", "title", "path", "status", "error"]
        for name in self.fields:
            base += [name, f"{name}__source", f"{name}__missing_reason"]
        return base

    def _upsert(self, record: ExtractionRecord) -> None:
        columns = [*self.columns(), "record_json"]
        quoted = ", ".join(f'"{c}"' for c in columns)
        with sqlite3.connect(self.sqlite) as db:
            spec = ", ".join(
                f'"{c}" TEXT PRIMARY KEY' if c == "document_id" else f'"{c}"' for c in columns
            )
            db.execute(f'CREATE TABLE IF NOT EXISTS "{self.table}" ({spec})')
            row = record.row()
            values = [_sql_value(row.get(c)) for c in self.columns()]
            values.append(record.model_dump_json())
            marks = ", ".join("?" for _ in columns)
            db.execute(f'INSERT OR REPLACE INTO "{self.table}" ({quoted}) VALUES ({marks})', values)
        db.close()

    def write_csv(self) -> Path | None:
        """Rewrite the CSV from the log (one row per document)."""
        if "csv" not in self.formats:
            return None
        columns = self.columns()
        with self.csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for record in self.records().values():
                writer.writerow({k: _csv_value(v) for k, v in record.row().items()})
        return self.csv


def _sql_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value
