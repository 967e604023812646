"""Ingestion throughput on the 20 SEC 10-Q filings, against raw embedding throughput.

One run ingests every filing into a fresh corpus (parse in the guarded child process, chunk,
embed with the configured embedder, store in embedded Chroma) and measures the *raw*
embedding throughput, the physical bound, on the same kind of chunks with nothing else
running: once just before the ingestion (the chunks of the first filings) and once just
after (a random sample of all chunks), so that a change in the machine's load during the
run shows up as a gap between the two rather than as a skewed ratio. The ratio uses both.
The model is loaded before anything is timed. Embeddings are never cached here. The load
average is recorded: on a shared machine other work competes for the same two cores.

Reported: pages/s and chunks/s end to end, the ratio of end-to-end to raw chunk throughput
(target: 0.8 or more), busy seconds per stage (stages overlap), and peak resident memory of
this process and of the parse process.

Run: ``python -m evals.ingest_throughput``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from maestro_lite.corpus import Corpus, IngestReport, IngestTimings
from maestro_lite.documents import load_document
from maestro_lite.embeddings import Embedder, embedder_from_settings
from maestro_lite.errors import DocumentError, UserError
from maestro_lite.settings import Settings

from .common import machine, today
from .datasets import sec10q_pdfs

__all__ = ["NothingToMeasure", "ThroughputResult", "main", "run"]


class NothingToMeasure(UserError):
    """The filings gave no chunks, so there is no throughput to report."""


class ThroughputResult(BaseModel):
    """What one run measured."""

    date: str
    machine: str
    embedder: str
    files: int
    failed: int
    pages: int
    chunks: int
    model_load_seconds: float
    wall_seconds: float
    pages_per_second: float
    chunks_per_second: float
    raw_embed_chunks_per_second: float
    """Both raw measurements together (chunks over seconds)."""
    raw_before_chunks_per_second: float
    raw_after_chunks_per_second: float
    raw_sample: int
    ratio_to_raw: float
    """End-to-end chunks/s divided by raw embedding chunks/s."""
    busy: IngestTimings
    """Busy seconds per stage during ingestion (they overlap)."""
    cpu_seconds_per_chunk: float
    """CPU time (this process and the parse process) of the ingestion, per chunk."""
    raw_cpu_seconds_per_chunk: float
    """CPU time of the raw embedding, per chunk."""
    cpu_ratio: float
    """Raw over end-to-end CPU per chunk: the throughput ratio two dedicated, saturated cores
    would give. Unlike wall-clock figures it hardly moves with other load on the machine."""
    peak_rss_mb: float
    peak_rss_parse_process_mb: float
    load_average: tuple[float, float]
    """1-minute load average at the start and at the end of the run."""


def _cpu_seconds() -> float:
    """User and system CPU time of this process and its finished children."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_mb(who: int) -> float:
    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


async def run(settings: Settings | None = None, *, sample: int = 1000) -> ThroughputResult:
    """Ingest the 10-Qs into a temporary corpus, then measure raw embedding throughput.

    Args:
        settings: Data directory and embedder; ``Settings.from_env()`` when ``None``.
        sample: How many of the ingested chunks to embed again for the raw figure.
    """
    if sample < 2:
        raise UserError(f"sample must be at least 2 chunks, not {sample}")
    settings = settings or Settings.from_env()
    files = sec10q_pdfs(settings.data_dir)
    embedder = embedder_from_settings(settings)
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    await embedder.embed(["load the model before timing anything"])
    load_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="maestro-sec10q-") as home:
        local = settings.model_copy(update={"home": Path(home), "chroma_url": None})
        corpus = await Corpus.open("sec10q", settings=local, embedder=embedder)
        before = await _chunk_texts(corpus, files, limit=sample // 3)
        cpu = _cpu_seconds()
        before_seconds = await _embed_seconds(embedder, before)
        raw_cpu = _cpu_seconds() - cpu

        started, cpu = time.perf_counter(), _cpu_seconds()
        report = await corpus.ingest(files)
        wall, ingest_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
        if not report.chunks:
            raise _nothing_to_measure(report, files, settings.data_dir)

        texts = [
            corpus.index_text(chunk)
            async for batch in corpus.store.scan_chunks("sec10q")
            for chunk in batch
        ]
    after = random.Random(0).sample(texts, min(sample - len(before), len(texts)))
    cpu = _cpu_seconds()
    after_seconds = await _embed_seconds(embedder, after)
    raw_cpu += _cpu_seconds() - cpu
    raw_cpu_per_chunk = raw_cpu / (len(before) + len(after))
    raw = (len(before) + len(after)) / (before_seconds + after_seconds)

    chunks_per_second = report.chunks / wall
    return ThroughputResult(
        date=today(),
        machine=machine(),
        embedder=embedder.name,
        files=len(files),
        failed=len(report.failed),
        pages=report.pages,
        chunks=report.chunks,
        model_load_seconds=round(load_seconds, 1),
        wall_seconds=round(wall, 1),
        pages_per_second=round(report.pages / wall, 2),
        chunks_per_second=round(chunks_per_second, 2),
        raw_embed_chunks_per_second=round(raw, 2),
        raw_before_chunks_per_second=round(_rate(before, before_seconds), 2),
        raw_after_chunks_per_second=round(_rate(after, after_seconds), 2),
        raw_sample=len(before) + len(after),
        ratio_to_raw=round(chunks_per_second / raw, 3),
        busy=report.timings,
        cpu_seconds_per_chunk=round(ingest_cpu / report.chunks, 4),
        raw_cpu_seconds_per_chunk=round(raw_cpu_per_chunk, 4),
        cpu_ratio=round(raw_cpu_per_chunk / (ingest_cpu / report.chunks), 3),
        peak_rss_mb=_peak_mb(resource.RUSAGE_SELF),
        peak_rss_parse_process_mb=_peak_mb(resource.RUSAGE_CHILDREN),
        load_average=(round(load_start, 2), round(os.getloadavg()[0], 2)),
    )


def _nothing_to_measure(report: IngestReport, files: list[Path], data_dir: Path) -> UserError:
    failures = "; ".join(f"{Path(f.path).name}: {f.reason}" for f in report.failed[:5])
    return NothingToMeasure(
        f"no chunks to measure: the {len(files)} filing(s) gave {len(report.failed)} "
        f"failure(s) and {len(report.no_text)} without text"
        + (f" ({failures})" if failures else ""),
        hint=f"Check the 10-Q PDFs under {data_dir / 'sec10q' / 'docs'} (MAESTRO_DATA_DIR).",
    )


async def _chunk_texts(corpus: Corpus, files: list[Path], *, limit: int) -> list[str]:
    """Index texts of up to ``limit`` chunks of the first of ``files`` that have text,
    loaded and chunked outside any timing (files that fail to load are left to ingestion
    to report)."""
    texts: list[str] = []
    for path in files:
        if len(texts) >= limit:
            break
        try:
            document = await asyncio.to_thread(load_document, path, registry=corpus.loaders)
        except DocumentError:
            continue
        texts += [corpus.index_text(c) for c in corpus.chunker.chunk(document)]
    return texts[:limit]


async def _embed_seconds(embedder: Embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    if texts:
        await embedder.embed(texts)
    return time.perf_counter() - started


def _rate(texts: list[str], seconds: float) -> float:
    """Texts per second; 0 for none."""
    return len(texts) / seconds if texts else 0.0


def to_markdown(result: ThroughputResult) -> str:
    """The result as Markdown."""
    busy = result.busy
    return "\n".join(
        [
            f"SEC 10-Q ingestion ({result.files} PDFs, {result.pages} pages, {result.chunks} "
            f"chunks, {result.failed} failed; {result.embedder}); {result.machine}; {result.date}",
            "",
            "| figure | value |",
            "|---|---|",
            f"| wall time | {result.wall_seconds:.1f} s |",
            f"| pages/s | {result.pages_per_second:.2f} |",
            f"| chunks/s end to end | {result.chunks_per_second:.2f} |",
            f"| raw embedding chunks/s ({result.raw_sample} chunks; before / after) | "
            f"{result.raw_embed_chunks_per_second:.2f} ({result.raw_before_chunks_per_second:.2f}"
            f" / {result.raw_after_chunks_per_second:.2f}) |",
            f"| end to end / raw | {result.ratio_to_raw:.2f} |",
            f"| CPU per chunk: ingestion / raw embedding | {result.cpu_seconds_per_chunk:.3f} s"
            f" / {result.raw_cpu_seconds_per_chunk:.3f} s (raw / ingestion = "
            f"{result.cpu_ratio:.2f}) |",
            f"| busy: embedding | {busy.embed:.1f} s ({busy.embed / busy.total:.0%} of wall) |",
            f"| busy: parsing (child process) | {busy.parse:.1f} s "
            f"({busy.parse / busy.total:.0%}) |",
            f"| busy: chunking | {busy.chunk:.1f} s ({busy.chunk / busy.total:.0%}) |",
            f"| busy: storing | {busy.store:.1f} s ({busy.store / busy.total:.0%}) |",
            f"| model load (before timing) | {result.model_load_seconds:.1f} s |",
            f"| peak RSS, main process | {result.peak_rss_mb:.0f} MB |",
            f"| peak RSS, parse process | {result.peak_rss_parse_process_mb:.0f} MB |",
            f"| load average at start / end | {result.load_average[0]:.2f} / "
            f"{result.load_average[1]:.2f} |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: print the table, and the JSON with ``--json PATH``."""
    parser = argparse.ArgumentParser(prog="python -m evals.ingest_throughput", description=__doc__)
    parser.add_argument("--sample", type=int, default=1000, help="chunks for the raw figure")
    parser.add_argument("--json", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = asyncio.run(run(sample=args.sample))
    print(to_markdown(result))
    if args.json:
        args.json.write_text(result.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
