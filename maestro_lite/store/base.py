"""The store interface: what a corpus needs from a vector database, and nothing more."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..documents.model import Chunk, DocumentInfo
from ..embeddings.base import Vectors
from ..errors import UserError
from ..retrieval import SearchFilter

__all__ = [
    "Claim",
    "CorpusConfig",
    "StoredDocument",
    "VectorStore",
    "check_corpus_name",
]

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")


def check_corpus_name(name: str) -> str:
    """``name`` if it is a valid corpus name, else a ``UserError`` saying what is allowed."""
    if not _NAME.match(name) or ".." in name:
        raise UserError(
            f"invalid corpus name {name!r}",
            hint="Use 1-64 letters, digits, '.', '_' or '-', starting and ending with a "
            "letter or digit.",
        )
    return name


class CorpusConfig(BaseModel):
    """What a corpus was built with; recorded by the store when the corpus is created."""

    model_config = ConfigDict(frozen=True)

    embedder: str
    """:attr:`Embedder.name` of the model whose vectors the corpus holds."""
    chunk_tokens: int
    overlap_tokens: int
    title_in_index: bool = True
    """Whether the document title is prepended to each chunk's text when it is embedded and
    indexed for BM25 (the stored chunk text stays the exact page span)."""
    created_at: datetime


class StoredDocument(BaseModel):
    """A document record as the store keeps it."""

    model_config = ConfigDict(frozen=True)

    info: DocumentInfo
    complete: bool
    """``False`` while its chunks are being written: readers ignore the document, and the
    next ingestion removes it if the writer never finished (a crash)."""
    replaces: tuple[str, ...] = ()
    """Ids of older versions of this document's files that no other file holds. Once this
    record is complete, readers treat them as gone, so one record write switches every
    reader from the old version to the new one; the writer then deletes them and clears
    this field (the next ingestion finishes that if the writer crashed in between)."""
    deleting: bool = False
    """Set before the document's chunks are deleted: readers ignore the document and its
    chunks, and the next ingestion finishes the deletion if the writer crashed."""


class Claim(BaseModel):
    """One writer's claim on a key of a corpus (a document id: the content it embeds).

    Claims let several processes, on one machine or many, ingest into one corpus without
    embedding the same content twice. A key's claims form generations: the holder is the
    claim with the highest ``generation``; a writer takes over a dead holder's key by
    adding the next generation, which only one writer can (see :meth:`VectorStore.add_claims`).
    """

    model_config = ConfigDict(frozen=True)

    key: str
    generation: int = 0
    owner: str
    """The claiming writer (one ingestion run): a random id."""
    host: str
    """The machine it runs on, to tell a dead local process from a live remote one."""
    pid: int
    expires: float
    """Unix time when the claim lapses unless renewed."""


@runtime_checkable
class VectorStore(Protocol):
    """Chunks with their vectors, document records and a per-corpus config and version.

    The version is an opaque stamp the corpus changes after every write; caches derived from
    the store (the BM25 index) are keyed by it, so they can never serve stale results, even
    when another process wrote.
    """

    async def corpora(self) -> list[str]:
        """Names of the corpora in the store."""
        ...

    async def create_corpus(self, corpus: str, config: CorpusConfig) -> None:
        """Create an empty corpus. When another client created it meanwhile, its corpus
        and config stand (read :meth:`corpus_config` again)."""
        ...

    async def corpus_config(self, corpus: str) -> CorpusConfig | None:
        """The corpus's config, or ``None`` when there is no such corpus."""
        ...

    async def drop_corpus(self, corpus: str) -> None:
        """Delete the corpus and everything in it."""
        ...

    async def version(self, corpus: str) -> str:
        """The corpus's current version stamp."""
        ...

    async def bump_version(self, corpus: str) -> str:
        """Give the corpus a new version stamp (after a write) and return it."""
        ...

    async def put_documents(self, corpus: str, documents: Sequence[StoredDocument]) -> None:
        """Insert or replace document records."""
        ...

    async def documents(
        self, corpus: str, ids: Sequence[str] | None = None
    ) -> list[StoredDocument]:
        """Every document record, complete or not (only those with ``ids`` when given)."""
        ...

    async def delete_documents(self, corpus: str, ids: Sequence[str]) -> None:
        """Delete documents, in an order a crash cannot break: mark their records
        ``deleting``, then delete their chunks, then the records. At any point a reader sees
        either the whole document or a record marked ``deleting`` (never chunks without a
        record), and calling this again finishes the job. Unknown ids are ignored."""
        ...

    async def put_chunks(self, corpus: str, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Insert or replace chunks with their vectors (row ``i`` belongs to ``chunks[i]``)."""
        ...

    async def get_chunks(self, corpus: str, ids: Sequence[str]) -> list[Chunk]:
        """The chunks with these ids, in the order asked; unknown ids are left out."""
        ...

    def scan_chunks(self, corpus: str, *, batch_size: int = 1000) -> AsyncIterator[list[Chunk]]:
        """Every chunk, in batches (to rebuild derived indexes)."""
        ...

    async def query(
        self,
        corpus: str,
        vector: Vectors,
        *,
        k: int,
        filters: SearchFilter | None = None,
        exclude_documents: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        """``(chunk id, cosine similarity)`` of the ``k`` chunks nearest to ``vector`` (one
        row) that pass ``filters``, best first, leaving out ``exclude_documents``."""
        ...

    async def add_claims(self, corpus: str, claims: Sequence[Claim]) -> dict[str, Claim]:
        """Add each claim unless its key already has a claim of that generation (atomically
        per claim, for every client of the store), and return the ones stored, by key: each
        claim itself when this writer won it, another writer's when that one was first. A
        key whose claim its winner deleted before it could be read back is left out. Keys
        are distinct."""
        ...

    async def claims(self, corpus: str, keys: Sequence[str] | None = None) -> list[Claim]:
        """The stored claims (only those on ``keys`` when given), every generation."""
        ...

    async def renew_claims(self, corpus: str, claims: Sequence[Claim], expires: float) -> None:
        """Move the expiry of these claims (a writer's own) to ``expires``."""
        ...

    async def delete_claims(self, corpus: str, claims: Sequence[Claim]) -> None:
        """Delete these claims; unknown ones are ignored."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
