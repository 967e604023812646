"""Pieces every retrieval eval uses: document rankings from chunk hits, the machine, timing."""

from __future__ import annotations

import math
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from maestro_lite.corpus import Corpus
from maestro_lite.embeddings import Embedder, embedder_from_settings
from maestro_lite.retrieval import SearchFilter, SearchMode
from maestro_lite.settings import Settings

from .embedding_cache import CachedEmbedder

__all__ = ["eval_embedder", "machine", "percentile", "ranked_documents", "today"]


async def ranked_documents(
    corpus: Corpus,
    query: str,
    *,
    mode: SearchMode,
    depth: int,
    filters: SearchFilter | None = None,
) -> list[str]:
    """The ids of the first ``depth`` distinct documents among the chunk hits, best first
    (a document ranks where its best chunk ranks)."""
    k = 2 * depth
    while True:
        hits = await corpus.search(query, k=k, mode=mode, filters=filters)
        ranked = list(dict.fromkeys(h.chunk.document_id for h in hits))
        if len(ranked) >= depth or len(hits) < k:
            return ranked[:depth]
        k *= 2


def eval_embedder(settings: Settings, *, cache: bool = True) -> Embedder:
    """The embedder the settings name, behind an on-disk cache unless ``cache`` is false."""
    embedder = embedder_from_settings(settings)
    if not cache:
        return embedder
    return CachedEmbedder(embedder, settings.cache_dir / "eval-embeddings")


def machine() -> str:
    """A one-line description of this machine, for BENCHMARKS.md."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 1024**2:.0f} GiB RAM"
    gpu = "NVIDIA GPU" if Path("/proc/driver/nvidia").exists() else "no GPU"
    return (
        f"{cores} CPU cores{memory}, {gpu}, {platform.system()}, Python {platform.python_version()}"
    )


def today() -> str:
    """The date, ISO format (UTC)."""
    return datetime.now(UTC).date().isoformat()


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))
    return ordered[index]
