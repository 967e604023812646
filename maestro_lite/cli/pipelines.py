"""``maestro research``, ``compare``, ``extract``, ``summarize``: the ready-made pipelines.

Each command ingests the documents it is given (unchanged files cost one hash), runs its
pipeline with live progress on stderr, writes its result where ``--out`` says, and prints a
short summary. The logic lives in :mod:`pipelines`; these commands only parse options.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines import (
    Compare,
    Comparison,
    DocumentSet,
    ExtractionRecord,
    Extractor,
    Research,
    ResearchReport,
    Summarize,
    SummaryReport,
    ingest_documents,
    overall_status,
    write_summaries,
)
from pipelines.extract import extract_on_node
from pipelines.job_types import ResearchJob, SummarizeJob

from ..corpus import Corpus
from ..documents import DocumentInfo
from ..embeddings import Embedder
from ..errors import UserError
from ..orchestrator import Maestro
from ..settings import Settings
from ._app import app
from ._checks import existing_paths, output_folder
from ._cluster import RAY, ray_session
from ._common import (
    NO_CACHE,
    console,
    durable,
    err_console,
    load_settings,
    open_model,
    shown,
    traced,
)
from ._jobargs import job_from_params
from ._schema import load_schema
from .render import EventPrinter
from .run import EXIT_UNMET, BudgetName

T = TypeVar("T")


class SubQuestionUse(StrEnum):
    steps = "steps"
    queries = "queries"
    hops = "hops"


_MODEL = typer.Option(None, "--model", "-m", help="provider:model to use.")
_BUDGET = typer.Option(BudgetName.low, "--budget", "-b", help="Budget preset.")
_CORPUS = typer.Option(
    None, "--corpus", "-c", help="Corpus name (default: named after the first document path)."
)
_VERBOSE = typer.Option(False, "--verbose", "-v", help="Show every model call.")


@contextmanager
def _ingest_progress() -> Iterator[Callable[[Any], None]]:
    bar = Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[current]}"),
        console=err_console,
        transient=True,
    )
    task = bar.add_task("ingest", total=None, current="")

    def update(event: Any) -> None:
        bar.update(
            task,
            completed=event.files_done,
            total=event.files_total,
            current=shown(Path(event.path).name) if event.path else "",
        )

    with bar:
        yield update


def _existing(paths: Sequence[str]) -> bool:
    return bool(paths) and all(Path(p).expanduser().exists() for p in paths)


async def _documents(
    settings: Settings,
    paths: Sequence[str],
    corpus: str | None,
    *,
    strict: bool = False,
    embedder: Embedder | None = None,
) -> DocumentSet:
    """Ingest ``paths`` into the corpus and report what happened.

    Args:
        strict: A file that could not be ingested (no text, encrypted...) is an error (one
            line naming it and why), before any model call; otherwise it is reported and
            the others are used.
        embedder: The embedder (a cluster's); the settings' when ``None``.

    Raises:
        UserError: ``strict`` and a file failed.
    """
    with _ingest_progress() as progress:
        docs = await ingest_documents(
            paths, corpus=corpus, settings=settings, embedder=embedder, progress=progress
        )
    report = docs.report
    if strict and report is not None and report.failed:
        await docs.corpus.close()
        failure = report.failed[0]
        raise UserError(
            f"{failure.path}: cannot be read ({failure.reason}: {failure.detail})",
            hint=failure.hint or "Give a transcript with a text layer (text, Markdown or PDF).",
        )
    if report is not None:
        err_console.print(f"[dim]corpus {docs.corpus.name}: {report.summary()}[/]")
        for failure in report.failed:
            err_console.print(
                f"[red]failed[/] {shown(failure.path)}: {failure.reason}: {shown(failure.detail)}"
            )
    return docs


async def _sources(
    settings: Settings,
    documents: Sequence[str],
    corpus: str | None,
    *,
    embedder: Embedder | None = None,
) -> tuple[Corpus, list[str | DocumentInfo]]:
    """Files and folders are ingested and their documents used; anything else names
    documents of an existing corpus (``--corpus``, else ``default``)."""
    if _existing(documents):
        docs = await _documents(settings, documents, corpus, embedder=embedder)
        return docs.corpus, list(docs.documents)
    source = await Corpus.open(corpus or "default", settings=settings, create=False)
    return source, list(documents)


class _Cluster:
    """What ``maestro extract --ray`` runs on the cluster: the embedding of what it
    ingests, and each document's extraction (a task per document; the records are written
    here)."""

    def __init__(self, address: str, settings: Settings) -> None:
        self.address = address
        self.settings = settings

    def embedder(self) -> Embedder:
        from ..cluster import RayEmbedder

        return RayEmbedder(self.address, settings=self.settings)

    def extract(
        self, extractor: Extractor, corpus: str, *, cache: bool
    ) -> Callable[[DocumentInfo], Awaitable[ExtractionRecord]]:
        from ..cluster import on_node

        options = {**extractor.options(), "cache": cache}

        async def one(document: DocumentInfo) -> ExtractionRecord:
            record: ExtractionRecord = await on_node(
                extract_on_node, self.settings, options, corpus, document
            )
            return record

        return one


def _run(
    settings: Settings,
    work: Callable[[Callable[[], Maestro]], Coroutine[Any, Any, T]],
    *,
    verbose: bool | None,
    no_cache: bool,
) -> T:
    """Run ``work`` with what a CLI run has (see ``durable``): the run store (so ``maestro
    runs`` lists pipeline runs), the response cache (unless ``no_cache``) and the limits of
    the settings. ``work`` builds its ``Maestro`` with the callable it is given; events are
    printed live (every model call with ``verbose``; none with ``None``)."""
    with durable(settings) as kwargs:
        if no_cache:
            kwargs["cache"] = None
        printer = EventPrinter(err_console, verbose=verbose) if verbose is not None else None

        def maestro() -> Maestro:
            return Maestro(open_model(settings), on_event=traced(printer), **kwargs)

        return asyncio.run(work(maestro))


def _exit_for(status: str) -> None:
    if status == "unmet":
        raise typer.Exit(EXIT_UNMET)
    if status == "failed":
        raise typer.Exit(1)


def _out(what: str) -> Any:
    """The ``--out`` option of a pipeline command: a folder for ``what``."""
    return typer.Option(None, "--out", "-o", help=what, callback=output_folder)


@app.command()
def research(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="The question; it may have several parts."),
    docs: list[str] = typer.Option(
        [],
        "--docs",
        "-d",
        help="Files or folders to ingest and search (repeatable).",
        callback=existing_paths,
    ),
    corpus: str | None = _CORPUS,
    out: Path | None = _out("Folder for research.md and research.json."),
    require: list[str] = typer.Option(
        [], "--require", "-r", help="An extra requirement (repeatable)."
    ),
    defaults: bool = typer.Option(
        True,
        "--default-requirements/--no-default-requirements",
        help="Every claim cited, every part addressed, contradictions called out.",
    ),
    sub_questions: int = typer.Option(
        3, "--sub-questions", help="Most sub-questions (1: answer in one step).", min=1, max=3
    ),
    planner: bool = typer.Option(
        False, "--planner", help="Let the planner write the whole plan (stronger models)."
    ),
    sub_question_use: SubQuestionUse = typer.Option(
        SubQuestionUse.steps,
        "--sub-question-use",
        help="steps: answer each sub-question, then the question; queries: only search "
        "with them and answer once; hops: a short call names the entity the question hinges "
        "on, then search with it too and answer once.",
    ),
    budget: BudgetName = _BUDGET,
    model: str | None = _MODEL,
    verbose: bool = _VERBOSE,
    no_cache: bool = NO_CACHE,
) -> None:
    """Answer a multi-part QUESTION over documents as a cited report (Markdown and JSON).

    Exit code: 0 every requirement met, 3 some unmet, 1 no answer.
    """
    settings = load_settings(model)
    job = job_from_params("research", ctx.params)
    assert isinstance(job, ResearchJob)

    async def work(build: Callable[[], Maestro]) -> ResearchReport:
        maestro = build()
        if docs:
            source: Corpus = (await _documents(settings, docs, corpus)).corpus
        else:
            source = await Corpus.open(corpus or "default", settings=settings, create=False)
        try:
            return await Research.from_job(maestro, job).run(question, corpus=source)
        finally:
            await source.close()

    report = _run(settings, work, verbose=verbose, no_cache=no_cache)
    console.print(report.to_markdown(), highlight=False, markup=False)
    if out is not None:
        markdown, data = report.write(out)
        err_console.print(f"wrote {markdown} and {data}")
    _exit_for(report.status)


@app.command()
def compare(
    documents: list[str] = typer.Argument(
        ..., help="Files or folders to compare (ingested), or document ids in --corpus."
    ),
    aspect: list[str] = typer.Option(
        [], "--aspect", "-a", help="An aspect to compare (repeatable); proposed when omitted."
    ),
    task: str | None = typer.Option(None, "--task", "-t", help="What the comparison is for."),
    corpus: str | None = _CORPUS,
    out: Path | None = _out("Folder for comparison.md and comparison.json."),
    k: int = typer.Option(3, "-k", help="Chunks read per document and aspect.", min=1),
    budget: BudgetName = _BUDGET,
    model: str | None = _MODEL,
    verbose: bool = _VERBOSE,
    no_cache: bool = NO_CACHE,
) -> None:
    """Compare two or more documents aspect by aspect, with citations.

    Exit code: 0 every requirement met, 3 some unmet, 1 no result.
    """
    settings = load_settings(model)
    goal = task or (
        "Compare the documents on " + ", ".join(aspect) + "."
        if aspect
        else "How do these documents differ, and what changed between them?"
    )

    async def work(build: Callable[[], Maestro]) -> Comparison:
        maestro = build()
        source, chosen = await _sources(settings, documents, corpus)
        try:  # Compare refuses fewer than two documents with a UserError
            return await Compare(maestro, k=k, budget=budget.value).run(
                goal, corpus=source, documents=chosen, aspects=aspect or None
            )
        finally:
            await source.close()

    comparison = _run(settings, work, verbose=verbose, no_cache=no_cache)
    console.print(comparison.to_markdown(), highlight=False, markup=False)
    if out is not None:
        markdown, data = comparison.write(out)
        err_console.print(f"wrote {markdown} and {data}")
    _exit_for(comparison.status)


@app.command()
def summarize(
    ctx: typer.Context,
    files: list[str] = typer.Argument(
        ...,
        help="Earnings-call transcripts (text, Markdown or PDF); each is summarized.",
        callback=existing_paths,
    ),
    corpus: str | None = _CORPUS,
    out: Path | None = _out(
        "Folder for summary.md and summary.json (one subfolder per file when several)."
    ),
    k: int = typer.Option(3, "-k", help="Chunks read per section query.", min=1),
    budget: BudgetName = _BUDGET,
    model: str | None = _MODEL,
    verbose: bool = _VERBOSE,
    no_cache: bool = NO_CACHE,
) -> None:
    """Summarize earnings calls as cited bullets: results against guidance, revenue and
    margins, segments, outlook, risks, notable Q&A. Every figure is checked against the
    sentence its bullet cites.

    Exit code: 0 every check met, 3 some unmet (an ungrounded figure, a section that did not
    finish), 1 no summary; 2 a file that does not exist or has no text.
    """
    settings = load_settings(model)
    job = job_from_params("summarize", ctx.params)
    assert isinstance(job, SummarizeJob)

    async def work(build: Callable[[], Maestro]) -> list[SummaryReport]:
        docs = await _documents(settings, job.files, job.corpus, strict=True)
        pipeline = Summarize.from_job(build(), job)
        try:
            return [await pipeline.run(corpus=docs.corpus, document=d) for d in docs.documents]
        finally:
            await docs.corpus.close()

    reports = _run(settings, work, verbose=verbose, no_cache=no_cache)
    for report in reports:
        console.print(report.to_markdown(), highlight=False, markup=False)
    if out is not None:
        err_console.print("wrote " + ", ".join(map(str, write_summaries(reports, out))))
    _exit_for(overall_status(reports))


_FORMATS = ("jsonl", "csv", "sqlite")


def _formats(value: str) -> str:
    """``--format``: a comma-separated list of known formats."""
    unknown = [f for f in value.split(",") if f not in _FORMATS]
    if unknown:
        raise typer.BadParameter(
            f"unknown format(s) {', '.join(map(repr, unknown))}; use {', '.join(_FORMATS)}"
        )
    return value


def _found(record: ExtractionRecord) -> str:
    """``3/4 field(s) found``, or per item ``5 item(s), 12/15 field(s) found``."""
    groups = [i.fields for i in record.items] if record.items is not None else [record.fields]
    found = sum(f.status == "found" for g in groups for f in g.values())
    total = sum(len(g) for g in groups)
    items = f"{len(groups)} item(s), " if record.items is not None else ""
    return f"{items}{found}/{total} field(s) found"


@app.command()
def extract(
    documents: list[str] = typer.Argument(
        ..., help="Files or folders to extract from (ingested), or document ids in --corpus."
    ),
    schema: str = typer.Option(
        ..., "--schema", "-s", help="schema.json, models.py:Class or package.module:Class."
    ),
    out: Path = typer.Option(
        Path("extracted"), "--out", "-o", help="Output folder.", callback=output_folder
    ),
    formats: str = typer.Option(
        "jsonl,csv,sqlite",
        "--format",
        "-f",
        help="Comma-separated: jsonl, csv, sqlite.",
        callback=_formats,
    ),
    table: str = typer.Option("records", "--table", help="SQLite table name."),
    corpus: str | None = _CORPUS,
    k: int = typer.Option(2, "-k", help="Chunks retrieved per field.", min=1),
    fields_per_step: int | None = typer.Option(
        None, "--fields-per-step", help="Fields asked per model call (default: all).", min=1
    ),
    concurrency: int = typer.Option(2, "--concurrency", help="Documents at once.", min=1),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Skip documents already extracted in --out."
    ),
    per_item: bool = typer.Option(
        False,
        "--per-item",
        help="Every item of the schema each document holds (all line items, all parties), "
        "one row per item with its document id and index.",
    ),
    budget: BudgetName = _BUDGET,
    model: str | None = _MODEL,
    verbose: bool = _VERBOSE,
    no_cache: bool = NO_CACHE,
    ray: str | None = RAY,
) -> None:
    """Extract one validated record per document (or per item found, with --per-item) to
    JSON Lines, CSV and SQLite.

    Every value comes with its source span; absent fields are null with the reason.

    Exit code: 0 every document extracted, 1 some failed (run again to retry them).
    """
    settings = load_settings(model)
    record_type = load_schema(schema)

    async def work(build: Callable[[], Maestro]) -> tuple[int, int, int]:
        maestro = build()
        embedder = on_cluster.embedder() if on_cluster else None
        source, chosen = await _sources(settings, documents, corpus, embedder=embedder)
        extractor = Extractor(
            maestro,
            record_type,
            k=k,
            fields_per_step=fields_per_step,
            budget=budget.value,
            concurrency=concurrency,
            per_item=per_item,
        )
        output = extractor.output(out, table=table, formats=formats.split(","))
        bar = Progress(
            TextColumn("[bold]extract"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[last]}"),
            console=err_console,
        )

        def done(record: ExtractionRecord) -> None:
            colour = "green" if record.status == "ok" else "red"
            bar.console.print(
                f"[{colour}]{record.status}[/] {shown(record.title)}: {_found(record)}, "
                f"{record.wall_seconds:.0f}s"
                + (f" [red]{escape(record.error)}[/]" if record.error else "")
            )
            bar.advance(task)
            bar.update(task, last=shown(record.title)[:40])

        try:
            output.prepare()  # a table of another schema fails here, before any call
            if output.added_columns:
                err_console.print(
                    f"[dim]table {table}: added column(s) {', '.join(output.added_columns)}[/]"
                )
            # The bar counts what is left to do: documents already extracted are skipped.
            todo, _ = await extractor.select(
                corpus=source, documents=chosen, output=output, resume=resume
            )
            with bar:
                task = bar.add_task("extract", total=len(todo), last="")
                summary = await extractor.run(
                    corpus=source,
                    documents=chosen,
                    output=output,
                    resume=resume,
                    on_record=done,
                    extract=on_cluster.extract(extractor, source.name, cache=not no_cache)
                    if on_cluster
                    else None,
                )
        finally:
            await source.close()
        if summary.skipped:
            err_console.print(f"[dim]{len(summary.skipped)} document(s) already extracted[/]")
        failed = len(summary.failed)
        return len(summary.records) - failed, failed, len(summary.skipped)

    with ray_session(ray, settings, "extracting") as address:
        on_cluster = _Cluster(address, settings) if address else None
        extracted, failed, skipped = _run(
            settings, work, verbose=True if verbose else None, no_cache=no_cache
        )
    written = [str(out / f"records.{f}") for f in ("jsonl", "csv", "sqlite") if f in formats]
    console.print(
        f"{extracted} extracted, {failed} failed, {skipped} skipped; wrote {', '.join(written)}"
    )
    if failed:
        raise typer.Exit(1)
