"""Evidence pools built from whole chunks, as retrieval would hand them to a step."""

from __future__ import annotations

from maestro_lite.documents import Chunk
from maestro_lite.evidence import EvidencePool
from maestro_lite.retrieval import SearchHit

from .orchestration.conftest import make_chunk

__all__ = ["make_chunk", "pool_of"]


def pool_of(*chunks: Chunk) -> EvidencePool:
    """Every sentence of ``chunks``, numbered as a step sees them (``c1.s1``...)."""
    hits = [SearchHit(chunk=c, score=1.0, rank=i) for i, c in enumerate(chunks, start=1)]
    return EvidencePool.from_hits(hits, max_tokens=10_000)
