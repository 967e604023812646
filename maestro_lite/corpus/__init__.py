"""Corpora: ingestion into a vector store, and dense, lexical and hybrid search over it."""

from .corpus import DEFAULT_CORPUS, Corpus, HybridSearch, list_corpora
from .fusion import convex_fusion, reciprocal_rank_fusion
from .ingest import (
    IngestEvent,
    IngestFailure,
    IngestProgress,
    IngestReport,
    IngestSkipped,
    IngestTimings,
    collect_files,
)
from .lexical import LexicalIndex

__all__ = [
    "collect_files",
    "DEFAULT_CORPUS",
    "Corpus",
    "HybridSearch",
    "IngestEvent",
    "IngestFailure",
    "IngestProgress",
    "IngestReport",
    "IngestSkipped",
    "IngestTimings",
    "LexicalIndex",
    "convex_fusion",
    "list_corpora",
    "reciprocal_rank_fusion",
]
