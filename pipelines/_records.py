"""Extracted records and where they go: JSON Lines (the log), SQLite and CSV.

A record is one document's result: its fields (one record per document), or every item of
the record type the document holds (per-item mode), each field with its source spans.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from maestro_lite import Citation, Usage, UserError

__all__ = [
    "ExtractionOutput",
    "ExtractionRecord",
    "ExtractionSummary",
    "FieldValue",
    "ItemRecord",
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


class ItemRecord(BaseModel):
    """One item a document holds (per-item mode): a party, a line item..."""

    index: int = Field(ge=1)
    """Position of the item in the document's list of them (1 for the first)."""
    label: str
    """How the document names the item (what the list of items gave)."""
    label_citations: list[Citation] = Field(default_factory=list)
    """Where the list of items was read from."""
    fields: dict[str, FieldValue] = Field(default_factory=dict)

    @property
    def data(self) -> dict[str, Any]:
        """Field name -> value (``None`` for absent fields)."""
        return {name: f.value for name, f in self.fields.items()}


class ExtractionRecord(BaseModel):
    """The record of one document."""

    document_id: str
    title: str
    path: str
    status: Literal["ok", "failed"]
    """``failed``: no usable output (a resumed run tries the document again)."""
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    """The document's fields (one record per document); empty in per-item mode."""
    items: list[ItemRecord] | None = None
    """Per-item mode: every item found, in the document's order (empty when it holds
    none); ``None`` for one record per document."""
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

    def _base(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "title": self.title,
            "path": self.path,
            "status": self.status,
            "error": self.error or "",
        }

    def row(self) -> dict[str, Any]:
        """A flat row: the document, then per field its value, source and missing reason."""
        return {**self._base(), **_field_columns(self.fields)}

    def rows(self) -> list[dict[str, Any]]:
        """The record's table rows: :meth:`row`, or in per-item mode one row per item
        (with ``item_index`` and ``item_label``; none when the document holds no item)."""
        if self.items is None:
            return [self.row()]
        return [
            {
                **self._base(),
                "item_index": item.index,
                "item_label": item.label,
                "item_label__source": _sources(item.label_citations),
                **_field_columns(item.fields),
            }
            for item in self.items
        ]


def _sources(citations: Sequence[Citation]) -> str:
    return " | ".join(f"p.{c.page}: {' '.join(c.quote.split())}" for c in citations)


def _field_columns(fields: Mapping[str, FieldValue]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, f in fields.items():
        row[name] = f.value
        row[f"{name}__source"] = _sources(f.citations)
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


_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_DOCUMENT = ["document_id", "title", "path", "status", "error"]
_ITEM = ["item_index", "item_label", "item_label__source"]


class ExtractionOutput:
    """Where extracted records go: ``<stem>.jsonl``, ``<stem>.sqlite`` and ``<stem>.csv``.

    The JSON Lines file is the log: one record per line, appended (and flushed) as each
    document finishes, so an interrupted run loses at most the documents in flight, and a
    resumed run reads it to skip finished documents. The SQLite table has one row per
    document, or per item in per-item mode (a document extracted again replaces its rows);
    the CSV is rewritten from the log at the end of every run.

    An existing table made for another schema gets the columns of new fields (earlier rows
    hold NULL there; columns of removed fields stay); a table keyed for the other mode (one
    row per document vs per item) is an error that names the table and its columns.

    Args:
        directory: Created if needed.
        schema: The record type (or its field names), for the table's columns.
        stem: File name stem.
        table: SQLite table name.
        formats: Which of ``jsonl``, ``csv``, ``sqlite`` to write (JSON Lines always is).
        per_item: Rows per item (``Extractor(per_item=True)``), keyed by document id and
            item index.
    """

    def __init__(
        self,
        directory: str | Path,
        schema: type[BaseModel] | Sequence[str],
        *,
        stem: str = "records",
        table: str = "records",
        formats: Iterable[str] = ("jsonl", "csv", "sqlite"),
        per_item: bool = False,
    ) -> None:
        if not _TABLE.fullmatch(table):
            raise UserError(
                f"invalid table name {table!r}", hint="Use letters, digits and underscores."
            )
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fields = list(schema.model_fields) if isinstance(schema, type) else list(schema)
        self.table = table
        self.per_item = per_item
        self.formats = set(formats) | {"jsonl"}
        unknown = self.formats - {"jsonl", "csv", "sqlite"}
        if unknown:
            raise UserError(
                f"unknown output format(s) {sorted(unknown)}", hint="Use jsonl, csv or sqlite."
            )
        self.jsonl = self.directory / f"{stem}.jsonl"
        self.csv = self.directory / f"{stem}.csv"
        self.sqlite = self.directory / f"{stem}.sqlite"
        self.added_columns: list[str] = []
        """Columns :meth:`prepare` added to an existing table (new fields)."""
        self._prepared = False

    @property
    def keys(self) -> list[str]:
        """The table's primary key."""
        return ["document_id", "item_index"] if self.per_item else ["document_id"]

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
        """Documents with a successful record of this output's mode and fields (failed
        ones, and ones extracted before a field was added, are extracted again)."""
        return {k: r for k, r in self.records().items() if r.status == "ok" and self._covers(r)}

    def _covers(self, record: ExtractionRecord) -> bool:
        if (record.items is not None) != self.per_item:
            return False
        groups = [i.fields for i in record.items] if record.items is not None else [record.fields]
        return all(set(self.fields) <= set(fields) for fields in groups)

    def append(self, record: ExtractionRecord) -> None:
        """Log ``record`` and upsert its rows."""
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
        base = list(_DOCUMENT) + (list(_ITEM) if self.per_item else [])
        for name in self.fields:
            base += [name, f"{name}__source", f"{name}__missing_reason"]
        return base

    def prepare(self) -> None:
        """Create the SQLite table, or fit an existing one to this schema (adding the
        columns of new fields); :meth:`append` calls it first. A no-op without SQLite.

        Raises:
            UserError: The table is keyed for the other mode (per item vs per document).
        """
        if self._prepared or "sqlite" not in self.formats:
            return
        columns = [*self.columns(), "record_json"]
        with sqlite3.connect(self.sqlite) as db:
            info = db.execute(f'PRAGMA table_info("{self.table}")').fetchall()
            if not info:
                spec = ", ".join(f'"{c}"' for c in columns)
                key = ", ".join(f'"{k}"' for k in self.keys)
                db.execute(f'CREATE TABLE "{self.table}" ({spec}, PRIMARY KEY ({key}))')
            else:
                existing = [row[1] for row in info]
                keys = [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5]]
                if keys != self.keys:
                    raise UserError(
                        f"table {self.table!r} in {self.sqlite} is keyed by {keys}, "
                        f"this extraction by {self.keys}; its columns {existing} differ from "
                        f"{columns}",
                        hint="One row per document and one per item cannot share a table: "
                        "use another --out folder or --table.",
                    )
                self.added_columns = [c for c in columns if c not in existing]
                for column in self.added_columns:
                    db.execute(f'ALTER TABLE "{self.table}" ADD COLUMN "{column}"')
        db.close()
        self._prepared = True

    def _upsert(self, record: ExtractionRecord) -> None:
        self.prepare()
        columns = [*self.columns(), "record_json"]
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        record_json = record.model_dump_json()
        with sqlite3.connect(self.sqlite) as db:
            db.execute(f'DELETE FROM "{self.table}" WHERE document_id = ?', [record.document_id])
            for row in record.rows():
                values = [_sql_value(row.get(c)) for c in self.columns()]
                db.execute(
                    f'INSERT INTO "{self.table}" ({quoted}) VALUES ({marks})',
                    [*values, record_json],
                )
        db.close()

    def write_csv(self) -> Path | None:
        """Rewrite the CSV from the log (one row per document, or per item)."""
        if "csv" not in self.formats:
            return None
        columns = self.columns()
        with self.csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for record in self.records().values():
                for row in record.rows():
                    writer.writerow({k: _csv_value(v) for k, v in row.items()})
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
