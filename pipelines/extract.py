"""Structured extraction: a schema and documents become validated records with source spans.

One record per document, or (``per_item=True``) every item of the record type a document
holds: all its line items, all its parties. The plan is declared in Python: one ``extract``
step per group of fields, retrieval filtered to the document with one query per field (its
description) and a few chunks each. Every field of the step's output carries its own
evidence ids, so every value comes with its own source span; a field the evidence does not
state is null with the model's reason. The pipeline then verifies each value's span against
the stored text (the span check the validator uses): a value whose span does not verify is
not kept, it becomes null with the reason, so nothing in a record is invented.

Per item, a first step lists the items (a short label each, as the document names them);
then each item's fields are extracted as above, the queries and the instruction naming the
item, so each item's values carry their own spans.

Records go to JSON Lines (the log a resumed run reads, so finished documents are skipped), a
SQLite table (one row per document or per item, upserted as the document finishes) and CSV
(written from the log). Documents are extracted concurrently, up to ``concurrency`` at a
time.

Example::

    class Contract(BaseModel):
        parties: list[str] = Field(description="the parties to the agreement")
        governing_law: str = Field(description="the law that governs the agreement")

    extractor = Extractor(maestro, Contract)
    summary = await extractor.run(corpus=corpus, output=ExtractionOutput("out/", Contract))
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, Field, create_model

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

if TYPE_CHECKING:  # Type-only: the cluster package imports Ray
    from maestro_lite import ClusterNode

from ._budget import fit_budget
from ._docs import display_name, match_documents
from ._records import (
    ExtractionOutput,
    ExtractionRecord,
    ExtractionSummary,
    FieldValue,
    ItemRecord,
)

__all__ = [
    "ExtractionOutput",
    "ExtractionRecord",
    "ExtractionSummary",
    "Extractor",
    "FieldValue",
    "ItemRecord",
    "extract_on_node",
    "extraction_plan",
    "items_plan",
    "optional_model",
    "schema_from_json",
]


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


def _kind(record_type: type[BaseModel]) -> str:
    """``line item`` for ``LineItem``: how to name the record type to the model."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", record_type.__name__).lower()


def extraction_plan(
    document: DocumentInfo,
    record_type: type[BaseModel],
    *,
    k: int = 2,
    instructions: str = "",
    item: str | None = None,
) -> Plan:
    """One ``extract`` step: retrieval filtered to ``document``, one query per field.

    Args:
        item: Extract the fields of this one item (per-item mode; its label names it in the
            instruction and in every query).
    """
    names = ", ".join(n.replace("_", " ") for n in record_type.model_fields)
    queries = [_query(n, i) for n, i in record_type.model_fields.items()]
    if item is None:
        instruction = f"Extract {names} from {display_name(document)}."
    else:
        instruction = (
            f"Extract {names} of {item!r} in {display_name(document)}: only that one, not "
            "the others the document lists."
        )
        queries = [f"{item} {q}" for q in queries]
    return Plan(
        steps=[
            Step(
                id="extract",
                kind="extract",
                instruction=f"{instruction} {instructions}".strip(),
                queries=queries,
                filters=SearchFilter(document_ids=[document.id]),
                k=k,
            )
        ],
        rationale="Fields of one document, each with its own query; spans verified after.",
    )


def _item_list(record_type: type[BaseModel], max_items: int) -> type[BaseModel]:
    kind = _kind(record_type)
    description = (
        f"One short label per {kind} the document contains, in its order, as the document "
        f"names it (a name, a description or a number); each {kind} once"
    )
    field = Field(default=None, description=description, max_length=max_items)
    return create_model(f"{record_type.__name__}List", items=(list[str] | None, field))


def items_plan(
    document: DocumentInfo,
    record_type: type[BaseModel],
    *,
    k: int = 2,
    instructions: str = "",
) -> Plan:
    """The first step of per-item mode: list every item of ``record_type`` in
    ``document`` (retrieval with the type and each field's query)."""
    kind = _kind(record_type)
    queries = [
        str(record_type.__doc__ or kind).strip().splitlines()[0],
        *(_query(n, i) for n, i in record_type.model_fields.items()),
    ]
    return Plan(
        steps=[
            Step(
                id="extract",
                kind="extract",
                instruction=f"List every {kind} in {display_name(document)}. "
                f"{instructions}".strip(),
                queries=list(dict.fromkeys(queries)),
                filters=SearchFilter(document_ids=[document.id]),
                k=k,
            )
        ],
        rationale="The items of one document; then each item's fields on their own.",
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
        schema: A pydantic model or a JSON schema of one record (of one item, per item).
            Every field becomes optional: a value the document does not state is null with
            a reason.
        k: Chunks retrieved per field.
        fields_per_step: Fields asked in one model call (all when ``None``). Smaller groups
            give a small model fewer things to track at once, at the price of more calls.
        budget: A preset is raised to what the plan needs; a :class:`Budget` is used as given
            (per run: one per field group, per item in per-item mode).
        requirements: Extra requirements for every document's run.
        concurrency: Documents extracted at once.
        strict: Drop values whose source span does not verify (keep them, marked
            ``unverified``, when false).
        instructions: Added to every step's instruction (conventions, units, date format).
        per_item: Extract every item of ``schema`` each document holds (all line items, all
            parties) instead of one record per document: one call lists the items, then each
            item's fields are extracted (one call per item and field group).
        max_items: Most items kept per document in per-item mode.
        items_k: Chunks retrieved per query to list the items (per-item mode): a list
            reads more of the document than one field does.
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
        per_item: bool = False,
        max_items: int = 50,
        items_k: int = 8,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.maestro = maestro
        self.record_type = (
            optional_model(schema) if isinstance(schema, type) else schema_from_json(schema)
        )
        self.k = k
        self.fields_per_step = fields_per_step
        self.groups = _groups(self.record_type, fields_per_step)
        self.budget = budget
        self.requirements = list(requirements)
        self.concurrency = concurrency
        self.strict = strict
        self.instructions = instructions
        self.per_item = per_item
        self.max_items = max_items
        self.items_k = items_k

    @property
    def fields(self) -> list[str]:
        return list(self.record_type.model_fields)

    def options(self) -> dict[str, Any]:
        """What rebuilds this extractor elsewhere (with another orchestrator): the record
        schema as JSON and the options, all plain data (Python-callable requirements are
        not carried)."""
        return {
            "schema": self.record_type.model_json_schema(),
            "k": self.k,
            "fields_per_step": self.fields_per_step,
            "budget": self.budget,
            "strict": self.strict,
            "instructions": self.instructions,
            "per_item": self.per_item,
            "max_items": self.max_items,
            "items_k": self.items_k,
        }

    def output(self, directory: str | Path, **options: Any) -> ExtractionOutput:
        """An :class:`ExtractionOutput` for this extractor's records (its fields and mode)."""
        return ExtractionOutput(directory, self.record_type, per_item=self.per_item, **options)

    async def _run(
        self,
        task: str,
        plan: Plan,
        output_type: type[BaseModel],
        corpus: Retriever,
        on_event: EventHandler | None,
    ) -> RunResult:
        return await self.maestro.run(
            task,
            corpus=corpus,
            requirements=self.requirements,
            budget=fit_budget(self.budget, plan),
            output_type=output_type,
            plan=plan,
            on_event=on_event,
        )

    async def _fields_of(
        self,
        document: DocumentInfo,
        corpus: Retriever,
        on_event: EventHandler | None,
        runs: list[RunResult],
        errors: list[str],
        item: str | None = None,
    ) -> dict[str, FieldValue]:
        """Every field of the document (or of one item in it), group by group."""
        fields: dict[str, FieldValue] = {}
        what = self.record_type.__name__ if item is None else repr(item)
        for group in self.groups:
            plan = extraction_plan(
                document, group, k=self.k, instructions=self.instructions, item=item
            )
            result = await self._run(
                f"Extract a {what} record from {display_name(document)}.",
                plan,
                group,
                corpus,
                on_event,
            )
            runs.append(result)
            if result.status == "failed":
                errors.append(result.error or "no usable output")
            fields.update(await self._fields(document, group, result, corpus))
        return {name: fields[name] for name in self.fields if name in fields}

    async def _items(
        self,
        document: DocumentInfo,
        corpus: Retriever,
        on_event: EventHandler | None,
        runs: list[RunResult],
        errors: list[str],
    ) -> list[ItemRecord]:
        listing = _item_list(self.record_type, self.max_items)
        plan = items_plan(
            document, self.record_type, k=self.items_k, instructions=self.instructions
        )
        result = await self._run(
            f"List every {_kind(self.record_type)} in {display_name(document)}.",
            plan,
            listing,
            corpus,
            on_event,
        )
        runs.append(result)
        found = (await self._fields(document, listing, result, corpus))["items"]
        if result.status == "failed":
            errors.append(result.error or "no usable output")
        elif found.status == "unverified" and found.value is None:
            errors.append(f"the list of items was dropped: {found.missing_reason}")
        labels = found.value if isinstance(found.value, list) else []
        unique = list({str(label).strip().casefold(): str(label).strip() for label in labels})
        items: list[ItemRecord] = []
        for index, key in enumerate(unique[: self.max_items], start=1):
            label = next(str(x).strip() for x in labels if str(x).strip().casefold() == key)
            fields = await self._fields_of(document, corpus, on_event, runs, errors, item=label)
            items.append(
                ItemRecord(index=index, label=label, label_citations=found.citations, fields=fields)
            )
        return items

    async def extract(
        self,
        document: DocumentInfo,
        *,
        corpus: Retriever,
        on_event: EventHandler | None = None,
    ) -> ExtractionRecord:
        """The record of one document (never raises for a model failure: the record says)."""
        runs: list[RunResult] = []
        errors: list[str] = []
        fields: dict[str, FieldValue] = {}
        items: list[ItemRecord] | None = None
        if self.per_item:
            items = await self._items(document, corpus, on_event, runs, errors)
        else:
            fields = await self._fields_of(document, corpus, on_event, runs, errors)
        step_models = [s.model for r in runs for s in r.steps.values() if s.model]
        return ExtractionRecord(
            document_id=document.id,
            title=document.title,
            path=document.path,
            status="failed" if errors else "ok",
            fields=fields,
            items=items,
            error="; ".join(dict.fromkeys(errors)) or None,
            run_ids=[r.run_id for r in runs],
            model=step_models[0] if step_models else None,
            usage=sum((r.usage for r in runs), Usage()),
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

    async def select(
        self,
        *,
        corpus: Retriever,
        documents: Sequence[str | DocumentInfo] | None = None,
        output: ExtractionOutput | None = None,
        resume: bool = True,
    ) -> tuple[list[DocumentInfo], list[str]]:
        """The documents :meth:`run` would extract, and the ids of those it would skip as
        already extracted in ``output`` (for a progress bar, or a dry run).

        Raises:
            UserError: A name matches no document.
        """
        everything = await corpus.documents()
        if documents is None:
            infos = [d for d in everything if d.status == "ok"]
        else:
            infos = [d for d in documents if isinstance(d, DocumentInfo)]
            names = [d for d in documents if not isinstance(d, DocumentInfo)]
            infos += match_documents(everything, names)
        done = output.done() if output is not None and resume else {}
        return [d for d in infos if d.id not in done], [d.id for d in infos if d.id in done]

    async def run(
        self,
        *,
        corpus: Retriever,
        documents: Sequence[str | DocumentInfo] | None = None,
        output: ExtractionOutput | None = None,
        resume: bool = True,
        on_record: Callable[[ExtractionRecord], None] | None = None,
        on_event: EventHandler | None = None,
        extract: Callable[[DocumentInfo], Awaitable[ExtractionRecord]] | None = None,
    ) -> ExtractionSummary:
        """Extract a record from each document, ``concurrency`` at a time.

        Args:
            corpus: The corpus holding the documents.
            documents: Document infos, or ids, paths or file names; every document of
                ``corpus`` when ``None``.
            output: Where records go as they finish (JSON Lines, SQLite, then CSV); its
                table is created or fitted to the schema before anything is extracted.
            resume: Skip documents ``output`` already holds a successful record for.
            on_record: Called with each record as it finishes (progress).
            on_event: Called with every event of every document's run.
            extract: Extracts one document's record somewhere else (``maestro extract
                --ray``: a task on a cluster node, see :func:`extract_on_node`);
                :meth:`extract` in this process when ``None``. Records are written here,
                once each, as they come back.

        Raises:
            UserError: A name matches no document; ``output`` is of the other mode (per
                item vs per document), or its SQLite table is.
        """
        started = asyncio.get_running_loop().time()
        if output is not None:
            if output.per_item != self.per_item:
                raise UserError(
                    f"the output in {output.directory} is "
                    f"{'per item' if output.per_item else 'per document'}, the extractor not",
                    hint="Make it with extractor.output(directory).",
                )
            output.prepare()
        todo, skipped = await self.select(
            corpus=corpus, documents=documents, output=output, resume=resume
        )
        limit = asyncio.Semaphore(self.concurrency)
        records: list[ExtractionRecord] = []

        async def one(document: DocumentInfo) -> None:
            async with limit:  # back-pressure: at most `concurrency` documents in flight
                if extract is not None:
                    record = await extract(document)
                else:
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


async def extract_on_node(
    node: ClusterNode, options: Mapping[str, Any], corpus: str, document: DocumentInfo
) -> ExtractionRecord:
    """One document's record, extracted on a cluster node (the body of a ``maestro extract
    --ray`` task): an :class:`Extractor` rebuilt from ``options``
    (:meth:`Extractor.options`) over the node's orchestrator, reading ``corpus`` as the
    settings place it (a Chroma server for several machines)."""
    given = dict(options)
    schema, cache = given.pop("schema"), given.pop("cache", True)
    maestro = node.maestro(caller=f"extract-{document.id}", cache=cache)
    extractor = Extractor(maestro, schema, **given)
    return await extractor.extract(document, corpus=await node.corpora.corpus(corpus))


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
