"""What the orchestration needs from retrieval: search with filters, the list of documents,
and chunks by id. :class:`Retriever` is the protocol; the Chroma-backed corpus implements it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from .documents.model import Chunk, DocumentInfo, MetadataValue

__all__ = ["Retriever", "SearchFilter", "SearchHit", "SearchMode"]

SearchMode = Literal["dense", "lexical", "hybrid"]


class SearchFilter(BaseModel):
    """Restricts a search. Fields combine with AND; ``None`` means no restriction."""

    model_config = ConfigDict(frozen=True)

    document_ids: list[str] | None = None
    """Only chunks of these documents."""
    page_from: int | None = Field(default=None, ge=1)
    """Only chunks on this page or later."""
    page_to: int | None = Field(default=None, ge=1)
    """Only chunks on this page or earlier."""
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    """Only chunks whose document metadata has these exact values."""


class SearchHit(BaseModel):
    """One ranked result."""

    model_config = ConfigDict(frozen=True)

    chunk: Chunk
    score: float
    """Higher is better; comparable only within one result list."""
    rank: int = Field(ge=1)


@runtime_checkable
class Retriever(Protocol):
    """Search over one corpus."""

    async def search(
        self,
        query: str,
        *,
        k: int = 8,
        filters: SearchFilter | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        """The ``k`` best chunks for ``query``, best first."""
        ...

    async def documents(self) -> list[DocumentInfo]:
        """Every document in the corpus."""
        ...

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """The chunks with these ids (unknown ids are left out)."""
        ...
