"""The pipelines' jobs and their runners, so schedules, watches and triggers can start them.

:class:`~maestro_lite.scheduling.Worker` runs a ``research``, ``compare``, ``extract`` or
``summarize`` job
with these (``run`` jobs are maestro-lite's own). Each does what the pipeline's command
does (ingest the files it names, run the pipeline, write its outputs) and returns the
outcome a completion trigger passes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maestro_lite import (
    Corpus,
    DocumentInfo,
    JobContext,
    JobOutcome,
    JobRunner,
    Retriever,
)

from ._docs import ingest_documents
from ._render import one_line
from .compare import Compare
from .extract import ExtractionOutput, Extractor
from .job_types import CompareJob, ExtractJob, ResearchJob, SummarizeJob
from .research import Research
from .summarize import Summarize, overall_status, write_summaries

__all__ = [
    "RUNNERS",
    "CompareJob",
    "ExtractJob",
    "ResearchJob",
    "SummarizeJob",
    "run_compare",
    "run_extract",
    "run_research",
    "run_summarize",
]


def _paths(items: Sequence[str]) -> bool:
    return bool(items) and all(Path(p).expanduser().exists() for p in items)


async def _source(
    context: JobContext, items: Sequence[str], corpus: str | None
) -> tuple[Retriever, list[str | DocumentInfo], Corpus | None]:
    """The corpus and documents a job names: files and folders are ingested first (their
    corpus is then the job's, else the watch's, else named after them); anything else
    names documents of the job's corpus. The third value is a corpus to close."""
    if _paths(items):
        docs = await ingest_documents(
            items,
            corpus=corpus or context.inputs.corpus,
            settings=context.settings,
            embedder=context.embedder,
        )
        return docs.corpus, list(docs.documents), docs.corpus
    retriever = await context.corpora.corpus(context.corpus_name(corpus))
    return retriever, list(items), None


async def run_research(job: ResearchJob, context: JobContext) -> JobOutcome:
    """The runner of :class:`ResearchJob`."""
    opened: Corpus | None = None
    if job.docs:
        source, _, opened = await _source(context, job.docs, job.corpus)
    else:
        source = await context.corpora.corpus(context.corpus_name(job.corpus))
    try:
        report = await Research.from_job(context.maestro, job).run(
            job.question, corpus=source, on_event=context.on_event
        )
    finally:
        if opened is not None:
            await opened.close()
    files = [str(p) for p in report.write(job.out)] if job.out else []
    return JobOutcome(status=report.status, output=report.answer, files=files)


async def run_compare(job: CompareJob, context: JobContext) -> JobOutcome:
    """The runner of :class:`CompareJob`."""
    source, chosen, opened = await _source(context, job.documents, job.corpus)
    goal = job.task or (
        "Compare the documents on " + ", ".join(job.aspects) + "."
        if job.aspects
        else "How do these documents differ, and what changed between them?"
    )
    try:
        comparison = await Compare(context.maestro, k=job.k, budget=job.budget).run(
            goal,
            corpus=source,
            documents=chosen,
            aspects=job.aspects or None,
            on_event=context.on_event,
        )
    finally:
        if opened is not None:
            await opened.close()
    files = [str(p) for p in comparison.write(job.out)] if job.out else []
    return JobOutcome(status=comparison.status, output=comparison.to_markdown(), files=files)


async def run_extract(job: ExtractJob, context: JobContext) -> JobOutcome:
    """The runner of :class:`ExtractJob` (documents already in
    ``out`` are skipped, so a job continued after a restart does only what was left)."""
    source, chosen, opened = await _source(context, job.documents, job.corpus)
    extractor = Extractor(
        context.maestro,
        job.record_schema,
        k=job.k,
        fields_per_step=job.fields_per_step,
        budget=job.budget,
        concurrency=job.concurrency,
        per_item=job.per_item,
    )
    output = ExtractionOutput(job.out, extractor.record_type, table=job.table, formats=job.formats)
    try:
        summary = await extractor.run(
            corpus=source, documents=chosen, output=output, on_event=context.on_event
        )
    finally:
        if opened is not None:
            await opened.close()
    failed = summary.failed
    text = (
        f"{len(summary.records) - len(failed)} extracted, {len(failed)} failed, "
        f"{len(summary.skipped)} already done"
    )
    files = [str(output.jsonl), *(str(p) for p in _written(output))]
    return JobOutcome(
        status="failed" if failed else "passed",
        output=text,
        files=files,
        error="; ".join(f"{one_line(r.title)}: {r.error}" for r in failed if r.error) or None,
    )


async def run_summarize(job: SummarizeJob, context: JobContext) -> JobOutcome:
    """The runner of :class:`SummarizeJob`: each file ingested and
    summarized; a file that could not be ingested fails the job, with its reason."""
    docs = await ingest_documents(
        job.files,
        corpus=job.corpus or context.inputs.corpus,
        settings=context.settings,
        embedder=context.embedder,
    )
    try:
        failed = docs.report.failed if docs.report else []
        if failed:
            reasons = "; ".join(f"{f.path}: {f.reason}: {f.detail}" for f in failed)
            return JobOutcome(status="failed", error=f"cannot be read: {reasons}")
        pipeline = Summarize.from_job(context.maestro, job)
        reports = [
            await pipeline.run(corpus=docs.corpus, document=d, on_event=context.on_event)
            for d in docs.documents
        ]
    finally:
        await docs.corpus.close()
    files = [str(p) for p in write_summaries(reports, job.out)] if job.out else []
    text = "\n\n".join(r.to_markdown() for r in reports)
    return JobOutcome(status=overall_status(reports), output=text, files=files)


def _written(output: ExtractionOutput) -> list[Path]:
    names = {"csv": output.csv, "sqlite": output.sqlite}
    return [path for kind, path in names.items() if kind in output.formats and path.exists()]


RUNNERS: dict[str, JobRunner[Any]] = {
    "research": JobRunner(ResearchJob, run_research),
    "compare": JobRunner(CompareJob, run_compare),
    "extract": JobRunner(ExtractJob, run_extract),
    "summarize": JobRunner(SummarizeJob, run_summarize),
}
"""The runners by job kind, for ``Worker(runners=...)``: each checks its kind's
parameters."""
