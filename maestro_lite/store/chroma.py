"""The Chroma adapter: the only module that imports ``chromadb``.

A corpus ``NAME`` is three collections: ``maestro.NAME.chunks`` (chunk text, offsets and
metadata with their vectors, cosine space), ``maestro.NAME.docs`` (one record per document;
Chroma requires a vector per record, so each gets a constant 1-d one) and
``maestro.NAME.claims`` (ingestion claims, one record per key and generation, made on first
use). On a server, all three are shared by every machine that uses the corpus. The corpus
config and version stamp live in the chunks collection's metadata. Vectors are always passed
in: Chroma's default embedding function downloads a model at first use, which fails offline.

Chroma's client is synchronous; every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import ChromaError, NotFoundError

from ..documents.model import Chunk, DocumentInfo, MetadataValue
from ..embeddings.base import Vectors
from ..errors import ConfigError, StoreError
from ..retrieval import SearchFilter
from ..settings import Settings
from .base import Claim, CorpusConfig, StoredDocument, check_corpus_name

__all__ = ["ChromaStore"]

T = TypeVar("T")

_CONFIG_KEY = "maestro.config"
_VERSION_KEY = "maestro.version"
_META = "meta."
"""Prefix of user metadata keys in chunk metadata, so they never clash with ours."""
_CHUNK_FIELDS = ("document_id", "index", "page", "start", "end", "doc_start", "doc_end")


def _chunks(corpus: str) -> str:
    return f"maestro.{corpus}.chunks"


def _docs(corpus: str) -> str:
    return f"maestro.{corpus}.docs"


def _claims(corpus: str) -> str:
    return f"maestro.{corpus}.claims"


def _claim_id(key: str, generation: int) -> str:
    return f"{key}#{generation}"


def _claim_from(meta: Any) -> Claim:
    return Claim.model_validate(meta)


def _chunk_metadata(chunk: Chunk) -> dict[str, MetadataValue]:
    meta: dict[str, MetadataValue] = {name: getattr(chunk, name) for name in _CHUNK_FIELDS}
    meta["title"] = chunk.title
    meta["path"] = chunk.path
    for key, value in chunk.metadata.items():
        meta[_META + key] = value
    return meta


def _chunk_from(id: str, text: str | None, meta: Any) -> Chunk:
    user = {k[len(_META) :]: v for k, v in meta.items() if k.startswith(_META)}
    return Chunk(
        id=id,
        text=text or "",
        title=meta.get("title", ""),
        path=meta.get("path", ""),
        metadata=user,
        **{name: meta[name] for name in _CHUNK_FIELDS},
    )


def where_clause(
    filters: SearchFilter | None, exclude_documents: Sequence[str] = ()
) -> dict[str, Any] | None:
    """A Chroma ``where`` filter for a search filter (``None`` when it restricts nothing)."""
    clauses: list[dict[str, Any]] = []
    if filters is not None:
        if filters.document_ids is not None:
            clauses.append({"document_id": {"$in": list(filters.document_ids)}})
        if filters.page_from is not None:
            clauses.append({"page": {"$gte": filters.page_from}})
        if filters.page_to is not None:
            clauses.append({"page": {"$lte": filters.page_to}})
        for key, value in sorted(filters.metadata.items()):
            clauses.append({_META + key: {"$eq": value}})
    if exclude_documents:
        clauses.append({"document_id": {"$nin": list(exclude_documents)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaStore:
    """A :class:`~maestro_lite.store.VectorStore` on Chroma, embedded or server.

    Build one with :meth:`from_settings`, :meth:`persistent` or :meth:`connect`.

    Args:
        client: A Chroma client.
        where: Where the data lives, for messages (a path or URL).
        embedded: The client is an embedded `PersistentClient` (closed by :meth:`close`).
    """

    def __init__(self, client: Any, *, where: str, embedded: bool = False) -> None:
        self._client = client
        self.where = where
        self._embedded = embedded
        self._max_batch = int(client.get_max_batch_size())

    @classmethod
    def from_settings(cls, settings: Settings) -> ChromaStore:
        """A server store when ``settings.chroma_url`` is set, else embedded under
        ``settings.chroma_dir``."""
        if settings.chroma_url:
            return cls.connect(settings.chroma_url)
        return cls.persistent(settings.chroma_dir)

    @classmethod
    def persistent(cls, path: str | Path) -> ChromaStore:
        """Embedded Chroma keeping its files under ``path``."""
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(
                path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
            )
        except (ChromaError, OSError, ValueError, RuntimeError) as exc:
            raise StoreError(
                f"cannot open the Chroma store at {path}: {exc}",
                hint="Check that the directory is writable (MAESTRO_HOME moves it).",
            ) from None
        return cls(client, where=str(path), embedded=True)

    @classmethod
    def connect(cls, url: str) -> ChromaStore:
        """A Chroma server at ``url`` (``http://host:port``)."""
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(
                f"invalid Chroma URL {url!r}", hint="Use http://host:port (MAESTRO_CHROMA_URL)."
            )
        port = parsed.port or (443 if parsed.scheme == "https" else 8000)
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname,
                port=port,
                ssl=parsed.scheme == "https",
                settings=ChromaSettings(anonymized_telemetry=False),
            )
        except (ChromaError, ValueError, OSError) as exc:
            raise StoreError(
                f"cannot reach the Chroma server at {url}: {exc}",
                hint="Start it (`chroma run --path DIR --port N`) or unset MAESTRO_CHROMA_URL.",
            ) from None
        return cls(client, where=url)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except (ChromaError, ValueError, OSError, RuntimeError) as exc:
            raise StoreError(f"Chroma at {self.where}: {exc}") from exc

    def _collection(self, name: str) -> Any:
        return self._client.get_collection(name, embedding_function=None)

    async def corpora(self) -> list[str]:
        collections = await self._run(self._client.list_collections)
        names = [c if isinstance(c, str) else c.name for c in collections]
        return sorted(
            n[len("maestro.") : -len(".chunks")]
            for n in names
            if n.startswith("maestro.") and n.endswith(".chunks")
        )

    async def create_corpus(self, corpus: str, config: CorpusConfig) -> None:
        check_corpus_name(corpus)

        def create() -> None:
            self._client.get_or_create_collection(_docs(corpus), embedding_function=None)
            # Created last: its existence is what makes the corpus exist.
            try:
                self._client.create_collection(
                    _chunks(corpus),
                    embedding_function=None,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={
                        _CONFIG_KEY: config.model_dump_json(),
                        _VERSION_KEY: uuid.uuid4().hex,
                    },
                )
            except ChromaError:
                # Another process (or machine) created it first: theirs stands.
                self._collection(_chunks(corpus))

        await self._run(create)

    async def _metadata(self, corpus: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            try:
                return dict(self._collection(_chunks(corpus)).metadata or {})
            except NotFoundError:
                return None

        return await self._run(read)

    async def corpus_config(self, corpus: str) -> CorpusConfig | None:
        meta = await self._metadata(corpus)
        if meta is None or _CONFIG_KEY not in meta:
            return None
        return CorpusConfig.model_validate_json(meta[_CONFIG_KEY])

    async def drop_corpus(self, corpus: str) -> None:
        def drop() -> None:
            for name in (_chunks(corpus), _docs(corpus), _claims(corpus)):
                try:
                    self._client.delete_collection(name)
                except NotFoundError:
                    pass

        await self._run(drop)

    async def version(self, corpus: str) -> str:
        meta = await self._metadata(corpus)
        if meta is None:
            raise StoreError(f"corpus {corpus!r} vanished from Chroma at {self.where}")
        return str(meta.get(_VERSION_KEY, ""))

    async def bump_version(self, corpus: str) -> str:
        stamp = uuid.uuid4().hex

        def bump() -> None:
            collection = self._collection(_chunks(corpus))
            meta = dict(collection.metadata or {})
            meta[_VERSION_KEY] = stamp
            collection.modify(metadata=meta)

        await self._run(bump)
        return stamp

    async def put_documents(self, corpus: str, documents: Sequence[StoredDocument]) -> None:
        if not documents:
            return

        def put() -> None:
            self._collection(_docs(corpus)).upsert(
                ids=[d.info.id for d in documents],
                embeddings=np.ones((len(documents), 1), dtype=np.float32),
                documents=[d.info.model_dump_json() for d in documents],
                # Every key, every time: Chroma merges an upsert's metadata into the old.
                metadatas=[
                    {
                        "complete": d.complete,
                        "deleting": d.deleting,
                        "replaces": json.dumps(list(d.replaces)),
                        "path": d.info.path,
                    }
                    for d in documents
                ],
            )

        await self._run(put)

    async def documents(
        self, corpus: str, ids: Sequence[str] | None = None
    ) -> list[StoredDocument]:
        if ids is not None and not ids:
            return []

        def read() -> Any:
            wanted = None if ids is None else list(dict.fromkeys(ids))
            return self._collection(_docs(corpus)).get(
                ids=wanted, include=["documents", "metadatas"]
            )

        got = await self._run(read)
        return [
            StoredDocument(
                info=DocumentInfo.model_validate_json(text),
                complete=bool(meta["complete"]),
                # Records written before these fields existed have neither.
                deleting=bool(meta.get("deleting", False)),
                replaces=tuple(json.loads(str(meta.get("replaces") or "[]"))),
            )
            for text, meta in zip(got["documents"], got["metadatas"], strict=True)
        ]

    async def delete_documents(self, corpus: str, ids: Sequence[str]) -> None:
        if not ids:
            return

        def delete() -> None:
            # Mark, then chunks, then the record (see VectorStore.delete_documents): chunks
            # whose record is gone would be orphans no reader knows to leave out. `update`
            # merges the flag into the metadata and skips ids that have no record.
            docs = self._collection(_docs(corpus))
            for lo in range(0, len(ids), self._max_batch):
                batch = list(ids[lo : lo + self._max_batch])
                docs.update(ids=batch, metadatas=[{"deleting": True}] * len(batch))
            chunks = self._collection(_chunks(corpus))
            for lo in range(0, len(ids), 1000):
                chunks.delete(where={"document_id": {"$in": list(ids[lo : lo + 1000])}})
            docs.delete(ids=list(ids))

        await self._run(delete)

    async def put_chunks(self, corpus: str, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")

        def put() -> None:
            collection = self._collection(_chunks(corpus))
            for lo in range(0, len(chunks), self._max_batch):
                batch = chunks[lo : lo + self._max_batch]
                collection.upsert(
                    ids=[c.id for c in batch],
                    embeddings=vectors[lo : lo + self._max_batch],
                    documents=[c.text for c in batch],
                    metadatas=[_chunk_metadata(c) for c in batch],
                )

        await self._run(put)

    async def get_chunks(self, corpus: str, ids: Sequence[str]) -> list[Chunk]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []

        def read() -> dict[str, Chunk]:
            collection = self._collection(_chunks(corpus))
            found: dict[str, Chunk] = {}
            for lo in range(0, len(wanted), self._max_batch):
                got = collection.get(
                    ids=wanted[lo : lo + self._max_batch], include=["documents", "metadatas"]
                )
                for id, text, meta in zip(
                    got["ids"], got["documents"], got["metadatas"], strict=True
                ):
                    found[id] = _chunk_from(id, text, meta)
            return found

        found = await self._run(read)
        return [found[i] for i in wanted if i in found]

    async def scan_chunks(
        self, corpus: str, *, batch_size: int = 1000
    ) -> AsyncIterator[list[Chunk]]:
        collection = await self._run(self._collection, _chunks(corpus))
        offset = 0
        while True:
            got = await self._run(
                collection.get, limit=batch_size, offset=offset, include=["documents", "metadatas"]
            )
            if not got["ids"]:
                return
            yield [
                _chunk_from(id, text, meta)
                for id, text, meta in zip(
                    got["ids"], got["documents"], got["metadatas"], strict=True
                )
            ]
            offset += len(got["ids"])

    async def query(
        self,
        corpus: str,
        vector: Vectors,
        *,
        k: int,
        filters: SearchFilter | None = None,
        exclude_documents: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        if filters is not None and filters.document_ids is not None and not filters.document_ids:
            return []  # Chroma rejects an empty $in; nothing can match anyway
        where = where_clause(filters, exclude_documents)

        def search() -> Any:
            # Ids and distances only: hybrid search asks for hundreds of candidates and
            # fetches the text of the few it returns.
            return self._collection(_chunks(corpus)).query(
                query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
                n_results=k,
                where=where,
                include=["distances"],
            )

        got = await self._run(search)
        # Cosine distance is 1 - cosine similarity.
        return [
            (id, 1.0 - float(distance))
            for id, distance in zip(got["ids"][0], got["distances"][0], strict=True)
        ]

    def _claims_collection(self, corpus: str) -> Any:
        # Made on first use: corpora created before claims existed have none.
        return self._client.get_or_create_collection(_claims(corpus), embedding_function=None)

    async def add_claims(self, corpus: str, claims: Sequence[Claim]) -> dict[str, Claim]:
        if not claims:
            return {}
        ids = [_claim_id(c.key, c.generation) for c in claims]

        def add() -> dict[str, Claim]:
            collection = self._claims_collection(corpus)
            # Chroma keeps the first record of an id and ignores a later `add` of it, id by
            # id (an upsert would overwrite): whoever the server applied first holds the
            # claim, and every client reads back the same winner. A write costs a commit on
            # the server (tens of milliseconds), so claims go in batches.
            stored: dict[str, Claim] = {}  # by key
            for lo in range(0, len(ids), self._max_batch):
                batch = ids[lo : lo + self._max_batch]
                collection.add(
                    ids=batch,
                    embeddings=np.ones((len(batch), 1), dtype=np.float32),
                    metadatas=[c.model_dump() for c in claims[lo : lo + self._max_batch]],
                )
                got = collection.get(ids=batch, include=["metadatas"])
                for meta in got["metadatas"]:
                    claim = _claim_from(meta)
                    stored[claim.key] = claim
            return stored

        return await self._run(add)

    async def claims(self, corpus: str, keys: Sequence[str] | None = None) -> list[Claim]:
        if keys is not None and not keys:
            return []

        def read() -> list[Claim]:
            collection = self._claims_collection(corpus)
            if keys is None:
                return [_claim_from(m) for m in collection.get(include=["metadatas"])["metadatas"]]
            found: list[Claim] = []
            wanted = list(dict.fromkeys(keys))
            for lo in range(0, len(wanted), 1000):
                where = {"key": {"$in": wanted[lo : lo + 1000]}}
                got = collection.get(where=where, include=["metadatas"])
                found.extend(_claim_from(m) for m in got["metadatas"])
            return found

        return await self._run(read)

    async def renew_claims(self, corpus: str, claims: Sequence[Claim], expires: float) -> None:
        if not claims:
            return

        def renew() -> None:
            # `update` merges into the stored metadata and skips ids that are gone.
            self._claims_collection(corpus).update(
                ids=[_claim_id(c.key, c.generation) for c in claims],
                metadatas=[{"expires": expires}] * len(claims),
            )

        await self._run(renew)

    async def delete_claims(self, corpus: str, claims: Sequence[Claim]) -> None:
        if not claims:
            return

        def delete() -> None:
            self._claims_collection(corpus).delete(
                ids=[_claim_id(c.key, c.generation) for c in claims]
            )

        await self._run(delete)

    async def close(self) -> None:
        """Release an embedded client: Chroma counts the clients of one store and stops its
        system (SQLite connections, index files) when the last one closes; without this,
        every store a process opens keeps its files open for good. A server client is left
        as it is: Chroma's close would drop its HTTP session without closing its sockets.
        Safe to call twice."""
        if not self._embedded:
            return
        close = getattr(self._client, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
