"""A corpus: named documents you ingest, list, remove and search (dense, lexical, hybrid)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..documents.chunking import Chunker
from ..documents.loaders import LoaderRegistry
from ..documents.model import Chunk, Document, DocumentInfo, MetadataValue
from ..embeddings import Embedder, embedder_from_settings
from ..embeddings.base import Vectors
from ..errors import CorpusNotFound, EmbeddingMismatch, UserError
from ..retrieval import SearchFilter, SearchHit, SearchMode
from ..settings import Settings
from ..store import CorpusConfig, VectorStore, check_corpus_name, store_from_settings
from ._files import absolute_keys, absolute_path, collect_files, directories
from ._records import Records, retire, tombstone
from .fusion import convex_fusion, reciprocal_rank_fusion
from .ingest import Ingestion, IngestProgress, IngestReport, detach_paths
from .lexical import LexicalEntry, LexicalIndex

__all__ = ["DEFAULT_CORPUS", "Corpus", "HybridSearch", "list_corpora"]

DEFAULT_CORPUS = "default"


class HybridSearch(BaseModel):
    """How hybrid search fuses dense and lexical results.

    The defaults were chosen on a development third of SciFact's train queries and checked
    on the other two thirds (``python -m evals.scifact``): convex fusion with equal weights
    did best, which is also the choice that assumes nothing about a new corpus.
    ``Settings.fusion`` (``MAESTRO_FUSION``) picks the method for corpora opened without an
    explicit ``hybrid``.
    """

    model_config = ConfigDict(frozen=True)

    fusion: Literal["convex", "rrf"] = "convex"
    """``convex``: weighted sum of min-max normalised scores; ``rrf``: reciprocal rank fusion."""
    lexical_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    """Weight of BM25 against dense similarity, in [0, 1]. For RRF the two lists weigh
    ``2 * (1 - lexical_weight)`` and ``2 * lexical_weight``, so 0.5 is plain RRF."""
    candidates: int = Field(default=300, ge=1)
    """How many results each retriever contributes before fusion (at least ``k``): deeper
    lists let a chunk ranked well by one side and poorly by the other still surface."""
    rrf_k: int = Field(default=60, ge=1)


@dataclass
class _Snapshot:
    """What the corpus looked like at one version stamp."""

    version: str
    records: Records
    lexical: LexicalIndex | None = None


class Corpus:
    """Documents in a vector store, searchable by meaning and by words.

    Implements :class:`~maestro_lite.retrieval.Retriever`. Open one with :meth:`open`::

        corpus = await Corpus.open("papers", settings=Settings())
        report = await corpus.ingest(["docs/"], password="secret")
        hits = await corpus.search("effect of statins on mortality", k=5)

    Any number of processes, on one machine or several sharing a Chroma server, may ingest
    into a corpus at once: they claim each new content in the store before embedding it, so
    none is embedded twice (see :meth:`ingest_file`). Readers see each document either
    completely or not at all.
    """

    def __init__(
        self,
        name: str,
        *,
        store: VectorStore,
        embedder: Embedder,
        config: CorpusConfig,
        chunker: Chunker,
        loaders: LoaderRegistry,
        hybrid: HybridSearch,
        cache_dir: Path | None,
        parse_timeout: float,
        owns_store: bool = False,
    ) -> None:
        self.name = name
        self.store = store
        self._owns_store = owns_store
        self.embedder = embedder
        self.config = config
        self.chunker = chunker
        self.loaders = loaders
        self.hybrid = hybrid
        self.parse_timeout = parse_timeout
        self._cache_dir = cache_dir
        self._snapshot: _Snapshot | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        name: str = DEFAULT_CORPUS,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        vector_store: VectorStore | None = None,
        create: bool = True,
        chunker: Chunker | None = None,
        loaders: LoaderRegistry | None = None,
        hybrid: HybridSearch | None = None,
        parse_timeout: float = 300.0,
        store: VectorStore | None = None,
    ) -> Corpus:
        """Open the corpus ``name``, creating it when ``create`` is true.

        Args:
            name: The corpus name (letters, digits, ``.``, ``_``, ``-``).
            settings: Where the store and caches live and which embedder to use, for what is
                not passed explicitly; ``Settings.from_env()`` when ``None``.
            embedder: The embedding model; the one ``settings.embedder`` names when ``None``
                (loaded lazily, so listing or lexical search never loads it).
            vector_store: The vector store; Chroma as ``settings`` describe when ``None``.
                A store passed in stays open when the corpus closes (close it yourself);
                one the corpus opened closes with it.
            create: Create the corpus if it does not exist; else raise ``CorpusNotFound``.
            chunker: How to chunk new documents; a new corpus records its sizes, an existing
                one uses the recorded sizes when ``None``.
            loaders: File loaders by suffix; PDF, text and Markdown when ``None``.
            hybrid: How hybrid search fuses results; the defaults with
                ``settings.fusion`` when ``None``.
            parse_timeout: Seconds one file may take to parse before it is abandoned.
            store: The old name of ``vector_store`` (still accepted).

        Raises:
            CorpusNotFound: No such corpus and ``create`` is false.
        """
        check_corpus_name(name)
        store = vector_store if vector_store is not None else store
        settings = settings or Settings.from_env()
        options: dict[str, Any] = {
            "settings": settings,
            "embedder": embedder,
            "create": create,
            "chunker": chunker,
            "loaders": loaders,
            "hybrid": hybrid,
            "parse_timeout": parse_timeout,
        }
        if store is not None:
            return await cls._open_on(name, store, owns_store=False, **options)
        own = store_from_settings(settings)
        try:
            return await cls._open_on(name, own, owns_store=True, **options)
        except BaseException:
            await own.close()  # a corpus that could not open leaves no files open
            raise

    @classmethod
    async def _open_on(
        cls,
        name: str,
        store: VectorStore,
        *,
        owns_store: bool,
        settings: Settings,
        embedder: Embedder | None,
        create: bool,
        chunker: Chunker | None,
        loaders: LoaderRegistry | None,
        hybrid: HybridSearch | None,
        parse_timeout: float,
    ) -> Corpus:
        embedder = embedder or embedder_from_settings(settings)
        config = await store.corpus_config(name)
        if config is None:
            if not create:
                raise CorpusNotFound(name, await store.corpora())
            chunker = chunker or Chunker()
            config = CorpusConfig(
                embedder=embedder.name,
                chunk_tokens=chunker.chunk_tokens,
                overlap_tokens=chunker.overlap_tokens,
                created_at=datetime.now(UTC),
            )
            await store.create_corpus(name, config)
            # Another process may have created it at the same moment: its config stands.
            config = await store.corpus_config(name) or config
        chunker = chunker or Chunker(
            chunk_tokens=config.chunk_tokens, overlap_tokens=config.overlap_tokens
        )
        where = getattr(store, "where", "")
        key = hashlib.sha256(f"{where}\0{name}".encode()).hexdigest()[:16]
        return cls(
            name,
            store=store,
            embedder=embedder,
            config=config,
            chunker=chunker,
            loaders=loaders or LoaderRegistry(),
            hybrid=hybrid or HybridSearch(fusion=settings.fusion),
            cache_dir=settings.cache_dir / "lexical" / key,
            parse_timeout=parse_timeout,
            owns_store=owns_store,
        )

    async def close(self) -> None:
        """Release the store connection, if this corpus opened it (see :meth:`open`)."""
        if self._owns_store:
            await self.store.close()

    async def __aenter__(self) -> Corpus:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- writing --------------------------------------------------------------------------

    async def ingest(
        self,
        paths: Iterable[str | Path],
        *,
        password: str | None = None,
        passwords: Mapping[str, str] | Mapping[Path, str] | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
        progress: IngestProgress | None = None,
        prune: bool = False,
    ) -> IngestReport:
        """Ingest files and directories (recursively). One bad file never stops the batch.

        Args:
            paths: Files and directories.
            password: Tried on every encrypted PDF without its own entry in ``passwords``.
            passwords: Passwords per file.
            metadata: Metadata for every document of this call (search filters match it).
            progress: Called as files finish and chunks are embedded.
            prune: Take off the corpus the paths under the given directories whose files
                are gone (a document left with no path is removed). Without it they are
                kept, and listed in the report's ``gone``.

        Returns:
            What happened to each file.
        """
        paths = list(paths)
        files, skipped = await asyncio.to_thread(collect_files, paths, self.loaders)
        folders = await asyncio.to_thread(directories, paths)
        run = Ingestion(
            self,
            passwords=absolute_keys(passwords or {}),
            password=password,
            metadata=metadata or {},
            progress=progress,
        )
        return await self._kept(await run.run_files(files, skipped, folders=folders, prune=prune))

    async def ingest_file(
        self,
        path: str | Path,
        *,
        password: str | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> IngestReport:
        """Ingest one file, idempotently, even while other processes or machines ingest
        into this corpus (the unit to fan out over a cluster). Its content is embedded
        once, whoever gets to it first; a file whose content is stored costs no embedding.
        Each call reads the corpus's document records once: for many files per worker,
        pass them to :meth:`ingest` together. Unlike :meth:`ingest`, the report is not
        kept as the corpus's last ingestion.
        """
        files = [absolute_path(path)]
        run = Ingestion(
            self, passwords={}, password=password, metadata=metadata or {}, progress=None
        )
        return await run.run_files(files, [])

    async def ingest_documents(
        self,
        documents: Iterable[Document],
        *,
        metadata: Mapping[str, MetadataValue] | None = None,
        progress: IngestProgress | None = None,
    ) -> IngestReport:
        """Ingest documents built in memory (ids must be stable, see ``document_id``)."""
        run = Ingestion(
            self, passwords={}, password=None, metadata=metadata or {}, progress=progress
        )
        return await self._kept(await run.run_documents(documents))

    _LAST_REPORT = "last-ingestion.json"

    async def _kept(self, report: IngestReport) -> IngestReport:
        """``report``, kept as the corpus's last ingestion (for ``maestro ui``); a report that
        cannot be written is not an ingestion error."""

        def write(directory: Path) -> None:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / self._LAST_REPORT).write_text(report.model_dump_json(), "utf-8")

        if self._cache_dir is not None:
            try:
                await asyncio.to_thread(write, self._cache_dir)
            except OSError:
                pass
        return report

    async def last_ingestion(self) -> tuple[datetime, IngestReport] | None:
        """When this corpus was last ingested into from this machine, and its report."""
        if self._cache_dir is None:
            return None
        path = self._cache_dir / self._LAST_REPORT

        def read() -> tuple[datetime, IngestReport] | None:
            try:
                at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                return at, IngestReport.model_validate_json(path.read_text("utf-8"))
            except (OSError, ValueError):
                return None

        return await asyncio.to_thread(read)

    async def remove(self, document_id: str) -> DocumentInfo:
        """Remove a document and its chunks, for every path it was ingested from; a unique
        id prefix is enough. Ingesting one of its files again brings it back.

        Raises:
            UserError: No document, or more than one, matches.
        """
        info = await self.document(document_id)
        records = (await self._current()).records
        # Hidden first, in one record write (with a new version stamp, so no reader keeps
        # a cached view of it), then deleted: a crash in between leaves it hidden, and the
        # next ingestion finishes the deletion. What it still replaces stays hidden too.
        replaces = next((d.replaces for d in records.unfinished if d.info.id == info.id), ())
        await self.store.put_documents(self.name, [tombstone(info, replaces)])
        await self.store.bump_version(self.name)
        await retire(self.store, self.name, [info.id, *replaces], [])
        await self.store.bump_version(self.name)
        return info

    async def forget_paths(self, paths: Iterable[str | Path]) -> list[DocumentInfo]:
        """Take these file paths off the corpus (files deleted from disk): a document that
        other files still hold loses only the path; one left with no path is removed,
        chunks and all. Paths the corpus does not know are ignored.

        Returns:
            The documents removed.
        """
        wanted = {str(absolute_path(p)) for p in paths}
        visible = (await self._current()).records.visible.values()
        holding = [info for info in visible if wanted & set(info.paths)]
        _, removed = await detach_paths(self, holding, wanted)
        return removed

    # -- reading --------------------------------------------------------------------------

    async def documents(self) -> list[DocumentInfo]:
        """Every complete document, by path."""
        snapshot = await self._current()
        return sorted(snapshot.records.visible.values(), key=lambda d: (d.path, d.id))

    async def document(self, document_id: str) -> DocumentInfo:
        """The document with this id, or the only one whose id starts with it."""
        complete = (await self._current()).records.visible
        if document_id in complete:
            return complete[document_id]
        matches = [info for id, info in complete.items() if id.startswith(document_id)]
        if len(matches) == 1 and document_id:
            return matches[0]
        problem = "no document" if not matches else f"{len(matches)} documents match"
        raise UserError(
            f"{problem} with id {document_id!r} in corpus {self.name!r}",
            hint=f"List them with `maestro docs list --corpus {self.name}`.",
        )

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """The chunks with these ids, in order; unknown ids are left out."""
        visible = (await self._current()).records.visible
        return [_attributed(c, visible) for c in await self.store.get_chunks(self.name, ids)]

    async def search(
        self,
        query: str,
        *,
        k: int = 8,
        filters: SearchFilter | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        """The ``k`` best chunks for ``query``, best first.

        Args:
            query: What to look for.
            k: How many chunks.
            filters: Restrict to documents, a page range, or metadata values.
            mode: ``dense`` (embedding similarity), ``lexical`` (BM25) or ``hybrid`` (both,
                fused as :attr:`hybrid` says).

        Raises:
            EmbeddingMismatch: Dense or hybrid search with another embedder than the
                corpus was built with.
        """
        if k <= 0 or not query.strip():
            return []
        snapshot = await self._current()
        exclude = snapshot.records.hidden
        depth = max(k, self.hybrid.candidates) if mode == "hybrid" else k
        dense: list[tuple[str, float]] = []
        lexical: list[tuple[str, float]] = []
        if mode in ("dense", "hybrid"):
            vector = await self._embed_query(query)
            found = await self.store.query(
                self.name, vector, k=depth, filters=filters, exclude_documents=exclude
            )
            # Chunks of no visible document (left by a store written before deletions were
            # crash-safe) never surface; a chunk id is "<document id>:<index>".
            visible = snapshot.records.visible
            dense = [(id, score) for id, score in found if id.rpartition(":")[0] in visible]
        if mode in ("lexical", "hybrid"):
            index = await self._lexical(snapshot)
            lexical = index.search(query, k=depth, filters=filters, exclude_documents=exclude)
        if mode == "dense":
            ranked = dense
        elif mode == "lexical":
            ranked = lexical
        elif self.hybrid.fusion == "rrf":
            weight = self.hybrid.lexical_weight
            ranked = reciprocal_rank_fusion(
                [dense, lexical], k=self.hybrid.rrf_k, weights=[2 * (1 - weight), 2 * weight]
            )
        else:
            ranked = convex_fusion(dense, lexical, lexical_weight=self.hybrid.lexical_weight)
        top = ranked[:k]
        stored = await self.store.get_chunks(self.name, [id for id, _ in top])
        chunks = {c.id: _attributed(c, snapshot.records.visible) for c in stored}
        hits = [(chunks[id], score) for id, score in top if id in chunks]
        return [
            SearchHit(chunk=chunk, score=score, rank=rank)
            for rank, (chunk, score) in enumerate(hits, start=1)
        ]

    # -- internals ------------------------------------------------------------------------

    def check_embedder(self) -> None:
        """Raise ``EmbeddingMismatch`` unless the embedder is the one the corpus was built
        with."""
        if self.embedder.name != self.config.embedder:
            raise EmbeddingMismatch(self.name, self.config.embedder, self.embedder.name)

    def index_text(self, chunk: Chunk) -> str:
        """The text embedded and indexed for ``chunk``: its title first when the corpus
        was configured so (titles carry entity and topic words chunks often lack)."""
        if self.config.title_in_index and chunk.title:
            return f"{chunk.title}\n{chunk.text}"
        return chunk.text

    async def embed_documents(self, chunks: Sequence[Chunk]) -> Vectors:
        """Vectors for chunks, checked against the corpus's embedder."""
        self.check_embedder()
        return await self.embedder.embed([self.index_text(c) for c in chunks])

    async def _embed_query(self, query: str) -> Vectors:
        self.check_embedder()
        vectors = await self.embedder.embed([query], input_type="query")
        first: Vectors = vectors[0]
        return first

    async def _current(self) -> _Snapshot:
        """The snapshot for the store's current version (reloaded after any write)."""
        version = await self.store.version(self.name)
        snapshot = self._snapshot
        if snapshot is not None and snapshot.version == version:
            return snapshot
        async with self._lock:
            if self._snapshot is not None and self._snapshot.version == version:
                return self._snapshot
            # Read the version before the data: data is then at least as new as the stamp,
            # and a write that lands in between changes the stamp, so the next call reloads.
            stored = await self.store.documents(self.name)
            self._snapshot = _Snapshot(version=version, records=Records.of(stored))
            return self._snapshot

    async def _lexical(self, snapshot: _Snapshot) -> LexicalIndex:
        if snapshot.lexical is not None:
            return snapshot.lexical
        async with self._lock:
            if snapshot.lexical is None:
                snapshot.lexical = await self._load_or_build_lexical(snapshot)
            return snapshot.lexical

    async def _load_or_build_lexical(self, snapshot: _Snapshot) -> LexicalIndex:
        cached = self._cache_dir / snapshot.version if self._cache_dir else None
        if cached is not None and cached.is_dir():
            try:
                return await asyncio.to_thread(LexicalIndex.load, cached)
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache is rebuilt below
        entries: list[LexicalEntry] = []
        async for batch in self.store.scan_chunks(self.name):
            for chunk in batch:
                info = snapshot.records.visible.get(chunk.document_id)
                if info is None:
                    continue  # chunks of hidden documents stay invisible
                entries.append(
                    LexicalEntry(
                        chunk.id,
                        chunk.document_id,
                        chunk.page,
                        self.index_text(chunk),
                        info.metadata,
                    )
                )
        index = await asyncio.to_thread(LexicalIndex.build, entries)
        if cached is not None:
            await asyncio.to_thread(self._save_lexical, index, cached)
        return index

    @staticmethod
    def _save_lexical(index: LexicalIndex, directory: Path) -> None:
        try:
            index.save(directory)
            # Only the latest version is worth keeping.
            for sibling in directory.parent.iterdir():
                if sibling != directory and not sibling.name.startswith("."):
                    shutil.rmtree(sibling, ignore_errors=True)
        except OSError:
            pass  # the cache is an optimisation; search works without it


def _attributed(chunk: Chunk, visible: Mapping[str, DocumentInfo]) -> Chunk:
    """``chunk`` with its document's current path and title. A chunk keeps those of the
    file it was first ingested from; when that file changes while another file still holds
    the content, the document's record moves on to that file and the chunk must follow."""
    info = visible.get(chunk.document_id)
    if info is None or (chunk.path, chunk.title) == (info.path, info.title):
        return chunk
    return chunk.model_copy(update={"path": info.path, "title": info.title})


async def list_corpora(
    settings: Settings | None = None,
    *,
    vector_store: VectorStore | None = None,
    store: VectorStore | None = None,
) -> list[str]:
    """Names of the corpora in the vector store ``settings`` (or ``vector_store``) points
    at; ``store`` is the old name of ``vector_store``."""
    store = vector_store if vector_store is not None else store
    if store is not None:
        return await store.corpora()
    own = store_from_settings(settings or Settings.from_env())
    try:
        return await own.corpora()
    finally:
        await own.close()
