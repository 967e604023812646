"""SciFact retrieval: nDCG@10 and recall@100 for dense, lexical and hybrid search, plus hybrid
query latency.

The whole corpus (5,183 abstracts, each a document titled with its paper title) is ingested
into a fresh corpus with the configured embedder (MiniLM by default; its vectors are cached
on disk between runs). Queries with train judgements (809) are split by a hash of their id:
a third is ``dev``, where fusion settings were chosen, the rest ``test``, where they are
reported. ``hybrid-rrf`` is plain reciprocal rank fusion (k=60, equal weights), the
reference point the default convex fusion has to beat.

Run: ``python -m evals.scifact`` (``--tune`` adds the dev-split sweep of the lexical weight).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from maestro_lite.corpus import Corpus, HybridSearch
from maestro_lite.retrieval import SearchMode
from maestro_lite.settings import Settings
from maestro_lite.store import store_from_settings

from .common import eval_embedder, machine, percentile, ranked_documents, today
from .datasets import load_scifact, split_of
from .embedding_cache import CachedEmbedder
from .metrics import mean, ndcg_at, recall_at

__all__ = ["MethodScores", "SciFactResult", "main", "run"]

SPLITS = ("dev", "test", "all")


class MethodScores(BaseModel):
    """Scores of one retrieval method on one split."""

    ndcg_at_10: float
    recall_at_100: float
    queries: int


class SciFactResult(BaseModel):
    """Everything one run measured."""

    date: str
    machine: str
    embedder: str
    documents: int
    chunks: int
    ingest_seconds: float
    """With cached embeddings this is chunking and storing, not a throughput figure."""
    lexical_build_seconds: float
    """Rebuilding the BM25 index from the store (done after every write)."""
    scores: dict[str, dict[str, MethodScores]]
    """Method -> split -> scores."""
    latency_ms_p50: float
    latency_ms_p95: float
    latency_queries: int
    load_average: float
    """1-minute load average after the latency pass (other work on a shared machine)."""


def _methods(tune: bool) -> dict[str, tuple[SearchMode, HybridSearch]]:
    methods: dict[str, tuple[SearchMode, HybridSearch]] = {
        "dense": ("dense", HybridSearch()),
        "lexical": ("lexical", HybridSearch()),
        "hybrid": ("hybrid", HybridSearch()),
        "hybrid-rrf": ("hybrid", HybridSearch(fusion="rrf", lexical_weight=0.5)),
    }
    if tune:
        for weight in (0.3, 0.4, 0.6, 0.7):
            methods[f"hybrid w={weight}"] = ("hybrid", HybridSearch(lexical_weight=weight))
        for candidates in (100, 1000):
            methods[f"hybrid n={candidates}"] = ("hybrid", HybridSearch(candidates=candidates))
        methods["hybrid-rrf w=0.6"] = ("hybrid", HybridSearch(fusion="rrf", lexical_weight=0.6))
    return methods


async def run(
    settings: Settings | None = None, *, tune: bool = False, cache: bool = True
) -> SciFactResult:
    """Ingest SciFact into a temporary corpus and score every method.

    Args:
        settings: Data directory and embedder; ``Settings.from_env()`` when ``None``. The corpus
            itself goes to a temporary home, never the user's.
        tune: Also score the alternative fusion settings (for choosing them on ``dev``).
        cache: Reuse embeddings cached on disk by earlier runs.
    """
    settings = settings or Settings.from_env()
    data = load_scifact(settings.data_dir)
    embedder = eval_embedder(settings, cache=cache)
    with tempfile.TemporaryDirectory(prefix="maestro-scifact-") as home:
        local = settings.model_copy(update={"home": Path(home), "chroma_url": None})
        store = store_from_settings(local)
        corpus = await Corpus.open("scifact", settings=local, embedder=embedder, vector_store=store)
        started = time.perf_counter()
        report = await corpus.ingest_documents(data.documents)
        ingest_seconds = time.perf_counter() - started
        started = time.perf_counter()
        await corpus.search("build the lexical index", mode="lexical")  # scan store, index
        lexical_build_seconds = time.perf_counter() - started

        scores: dict[str, dict[str, MethodScores]] = {}
        for method, (mode, hybrid) in _methods(tune).items():
            searcher = await Corpus.open(
                "scifact", settings=local, embedder=embedder, vector_store=store, hybrid=hybrid
            )
            per_query: dict[str, tuple[float, float]] = {}
            for query_id, text in data.queries.items():
                ranked = await ranked_documents(searcher, text, mode=mode, depth=100)
                relevant = data.qrels[query_id]
                per_query[query_id] = (
                    ndcg_at(ranked, relevant, 10),
                    recall_at(ranked, relevant, 100),
                )
            scores[method] = {}
            for split in SPLITS:
                chosen = [v for q, v in per_query.items() if split in ("all", split_of(q))]
                scores[method][split] = MethodScores(
                    ndcg_at_10=round(mean([n for n, _ in chosen]), 4),
                    recall_at_100=round(mean([r for _, r in chosen]), 4),
                    queries=len(chosen),
                )

        # Latency of the call the orchestration makes: hybrid, k=10, warm lexical index,
        # and the query embedded for real (the eval cache would hide that cost).
        raw = embedder.inner if isinstance(embedder, CachedEmbedder) else embedder
        timed = await Corpus.open("scifact", settings=local, embedder=raw, vector_store=store)
        await timed.search("warm up the model and the lexical index", k=10)
        latencies = []
        for text in data.queries.values():
            started = time.perf_counter()
            await timed.search(text, k=10, mode="hybrid")
            latencies.append((time.perf_counter() - started) * 1000)

    return SciFactResult(
        date=today(),
        machine=machine(),
        embedder=embedder.name,
        documents=len(data.documents),
        chunks=report.chunks,
        ingest_seconds=round(ingest_seconds, 1),
        lexical_build_seconds=round(lexical_build_seconds, 2),
        scores=scores,
        latency_ms_p50=round(percentile(latencies, 0.5), 1),
        latency_ms_p95=round(percentile(latencies, 0.95), 1),
        latency_queries=len(latencies),
        load_average=round(os.getloadavg()[0], 2),
    )


def to_markdown(result: SciFactResult) -> str:
    """The result as a Markdown table."""
    lines = [
        f"SciFact ({result.documents} documents, {result.chunks} chunks, {result.embedder}); "
        f"{result.machine}; {result.date}",
        "",
        "| method | nDCG@10 test | recall@100 test | nDCG@10 dev | nDCG@10 all | recall@100 all |",
        "|---|---|---|---|---|---|",
    ]
    for method, splits in result.scores.items():
        test, dev, every = splits["test"], splits["dev"], splits["all"]
        lines.append(
            f"| {method} | {test.ndcg_at_10:.3f} | {test.recall_at_100:.3f} | "
            f"{dev.ndcg_at_10:.3f} | {every.ndcg_at_10:.3f} | {every.recall_at_100:.3f} |"
        )
    queries = result.scores["dense"]
    lines += [
        "",
        f"Queries: dev {queries['dev'].queries}, test {queries['test'].queries}, "
        f"all {queries['all'].queries}. Ingestion {result.ingest_seconds:.0f} s; lexical index "
        f"built from the store in {result.lexical_build_seconds:.1f} s. "
        f"Hybrid latency (k=10, {result.latency_queries} queries): "
        f"p50 {result.latency_ms_p50:.1f} ms, p95 {result.latency_ms_p95:.1f} ms "
        f"(load average {result.load_average:.1f}).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: print the table, and the JSON with ``--json PATH``."""
    parser = argparse.ArgumentParser(prog="python -m evals.scifact", description=__doc__)
    parser.add_argument("--tune", action="store_true", help="also score alternative fusions")
    parser.add_argument("--no-cache", action="store_true", help="embed everything again")
    parser.add_argument("--json", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = asyncio.run(run(tune=args.tune, cache=not args.no_cache))
    print(to_markdown(result))
    if args.json:
        args.json.write_text(result.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
