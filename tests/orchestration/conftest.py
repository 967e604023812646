"""Fixtures for orchestration tests: a small corpus and helpers for scripted models."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from maestro_lite.documents import Chunk, DocumentInfo
from maestro_lite.models import ModelCall
from maestro_lite.retrieval import SearchFilter, SearchHit, SearchMode

V1 = (
    "Supply Agreement 2023. Either party may terminate this Agreement on 90 days written "
    "notice. The liability of either party is capped at the fees paid in the prior 12 months. "
    "This Agreement is governed by the laws of New York."
)
V2 = (
    "Amended Supply Agreement 2025. Either party may terminate this Agreement on 60 days "
    "written notice. The liability of either party is capped at USD 2,500,000. "
    "This Agreement is governed by the laws of Delaware."
)


class MemoryRetriever:
    """Keyword-overlap search over fixed chunks; honours document and page filters."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self.chunks = list(chunks)
        self.queries: list[str] = []

    async def search(
        self,
        query: str,
        *,
        k: int = 8,
        filters: SearchFilter | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        self.queries.append(query)
        words = set(re.findall(r"\w+", query.lower()))
        scored = []
        for chunk in self.chunks:
            if filters and filters.document_ids and chunk.document_id not in filters.document_ids:
                continue
            if filters and not (filters.page_from or 1) <= chunk.page <= (filters.page_to or 10**9):
                continue
            overlap = len(words & set(re.findall(r"\w+", chunk.text.lower())))
            scored.append((overlap, chunk))
        scored.sort(key=lambda pair: -pair[0])
        return [
            SearchHit(chunk=c, score=float(s), rank=i)
            for i, (s, c) in enumerate(scored[:k], start=1)
        ]

    async def documents(self) -> list[DocumentInfo]:
        ids = dict.fromkeys(c.document_id for c in self.chunks)
        return [
            DocumentInfo(
                id=d,
                title=next(c.title for c in self.chunks if c.document_id == d),
                path=f"{d}.txt",
                pages=max(c.page for c in self.chunks if c.document_id == d),
                chars=100,
                chunks=1,
            )
            for d in ids
        ]

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        wanted = set(ids)
        return [c for c in self.chunks if c.id in wanted]


def make_chunk(doc: str, title: str, text: str, index: int = 0, page: int = 1) -> Chunk:
    return Chunk(
        id=f"{doc}:{index}",
        document_id=doc,
        index=index,
        text=text,
        page=page,
        start=0,
        end=len(text),
        doc_start=0,
        doc_end=len(text),
        title=title,
        path=f"{doc}.txt",
    )


@pytest.fixture
def contracts() -> MemoryRetriever:
    return MemoryRetriever(
        [make_chunk("v1", "Agreement 2023", V1), make_chunk("v2", "Agreement 2025", V2)]
    )


def _step_prompt(call: ModelCall) -> str:
    """The step's own prompt (the first user message; later ones are re-asks)."""
    return next(m.content for m in call.messages if m.role == "user")


def evidence(call: ModelCall) -> dict[str, str]:
    """The evidence lines the step was shown: id -> sentence."""
    return dict(re.findall(r"^([ce]\d+(?:\.s\d+)?): (.*)$", _step_prompt(call), re.MULTILINE))


def cite(call: ModelCall, *needles: str) -> list[str]:
    """Ids of the evidence sentences containing every needle."""
    ids = [i for i, text in evidence(call).items() if all(n in text for n in needles)]
    assert ids, f"no evidence contains {needles}: {evidence(call)}"
    return ids


def step_of(call: ModelCall) -> str:
    """The instruction of the step a call is for."""
    match = re.search(r"Your step \((\w+)\): (.*)", _step_prompt(call))
    return match.group(2) if match else ""
