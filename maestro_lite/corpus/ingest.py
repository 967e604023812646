"""Ingestion: files in, chunks with vectors out, crash-safe and idempotent.

The pipeline has two stages joined by a bounded queue, so parsing the next file (in the
guarded child process) overlaps with embedding the current one (in a torch thread):

1. *prepare*: read the file, hash it (an unchanged file stops here), parse it, chunk it.
   A file whose content is already stored (under another path) is not parsed: its path
   is to be added to that document.
2. *write*: for a batch of prepared documents, record them as incomplete, embed and store
   their chunks, then *switch*: in one record write, mark them complete, add the paths of
   files with stored content to their documents, and take each file's path off its older
   version. An older version left with no path is listed in the ``replaces`` of the record
   that took its last path; bump the corpus version, delete those versions, bump it again.

Files with the same content share one document, which lists every path (``paths``) and
stays while any of them still holds that content: a change to one file only detaches its
path. A document becomes visible only when its record is marked complete, after all its
chunks are stored, and the version it replaces disappears (or loses the path) in that same
record write (see ``_records``). A crash leaves at most hidden records (and their chunks),
which readers ignore and the next ingestion deletes before it starts; that run then
ingests again what was not finished.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..documents._worker import ParseWorker
from ..documents.chunking import Chunker
from ..documents.loaders import (
    Loader,
    LoaderRegistry,
    ParsedFile,
    build_document,
    document_id,
    read_file,
)
from ..documents.model import Chunk, Document, DocumentInfo, MetadataValue
from ..embeddings.base import Vectors
from ..errors import DocumentError
from ..store.base import StoredDocument, VectorStore
from ..untrusted import one_line
from ._records import finish_interrupted, retire, tombstone


class IngestTarget(Protocol):
    """What ingestion needs of a corpus (:class:`~maestro_lite.corpus.Corpus` is one): its
    name and store, how to read, chunk and embed files, and how long a file may parse."""

    @property
    def name(self) -> str: ...

    @property
    def store(self) -> VectorStore: ...

    @property
    def loaders(self) -> LoaderRegistry: ...

    @property
    def chunker(self) -> Chunker: ...

    @property
    def parse_timeout(self) -> float: ...

    def check_embedder(self) -> None:
        """Raise ``EmbeddingMismatch`` unless the embedder is the corpus's own."""
        ...

    async def embed_documents(self, chunks: Sequence[Chunk]) -> Vectors:
        """Vectors for ``chunks``."""
        ...


T = TypeVar("T")

__all__ = [
    "IngestEvent",
    "IngestFailure",
    "IngestProgress",
    "IngestReport",
    "IngestSkipped",
    "IngestTimings",
    "absolute_keys",
    "collect_files",
    "detach_paths",
    "directories",
]


class IngestFailure(BaseModel):
    """A file that could not be ingested, and why."""

    model_config = ConfigDict(frozen=True)

    path: str
    reason: str
    """``empty``, ``encrypted``, ``malformed``, ``unsupported``, ``timeout``..."""
    detail: str
    hint: str | None = None


class IngestSkipped(BaseModel):
    """A file or folder found inside a folder and deliberately not ingested, and why."""

    model_config = ConfigDict(frozen=True)

    path: str
    reason: Literal["hidden", "unsupported"]
    """``hidden``: its name starts with a dot, or an underscore (``_src``, ``__pycache__``;
    a folder's whole content is skipped); ``unsupported``: no loader reads its suffix."""
    detail: str


class IngestTimings(BaseModel):
    """Busy seconds per stage. Stages overlap, so they add up to more than ``total``."""

    model_config = ConfigDict(frozen=True)

    total: float = 0.0
    read: float = 0.0
    parse: float = 0.0
    chunk: float = 0.0
    embed: float = 0.0
    store: float = 0.0


class IngestReport(BaseModel):
    """What an ingestion did, file by file."""

    corpus: str
    ingested: list[DocumentInfo] = Field(default_factory=list)
    """New documents."""
    updated: list[DocumentInfo] = Field(default_factory=list)
    """New versions of files already in the corpus; their old versions no longer list the
    file's path (and were removed when no other file holds them). A file whose new content
    is already in the corpus under another path is listed with that document's record (and
    its own path): nothing was embedded for it."""
    unchanged: list[str] = Field(default_factory=list)
    """Paths whose content is already in the corpus (maybe under another path, or earlier
    in the same run): nothing was embedded, and the path is recorded on that document."""
    no_text: list[DocumentInfo] = Field(default_factory=list)
    """Documents without a text layer (scans): recorded, nothing embedded."""
    failed: list[IngestFailure] = Field(default_factory=list)
    skipped: list[IngestSkipped] = Field(default_factory=list)
    """Files and folders found in directories and not ingested: hidden ones, and files no
    loader reads."""
    gone: list[str] = Field(default_factory=list)
    """Paths in the corpus, under a folder this ingestion searched, whose files no longer
    exist. Their documents still answer questions unless ``pruned``."""
    pruned: bool = False
    """Whether ``gone`` paths were taken off their documents (and documents left with no
    path removed, chunks and all)."""
    recovered: int = 0
    """Hidden documents an interrupted ingestion or removal left (half-written, or
    replaced or removed but not yet deleted), deleted first."""
    pages: int = 0
    chunks: int = 0
    timings: IngestTimings = Field(default_factory=IngestTimings)

    @property
    def ok(self) -> bool:
        """Whether no file failed."""
        return not self.failed

    def summary(self) -> str:
        """One line: counts per outcome."""
        parts = [
            f"{len(self.ingested)} ingested",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
            f"{len(self.no_text)} without text",
            f"{len(self.failed)} failed",
        ]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.gone:
            parts.append(f"{len(self.gone)} gone from disk ({'pruned' if self.pruned else 'kept'})")
        return f"{', '.join(parts)}; {self.chunks} chunks from {self.pages} pages"


@dataclass(frozen=True)
class IngestEvent:
    """Where an ingestion stands; passed to the progress callback."""

    files_total: int
    files_done: int
    chunks_done: int
    path: str | None = None
    """The file just finished, if any."""


IngestProgress = Callable[[IngestEvent], None]


_HIDDEN = (".", "_")
"""Name prefixes a folder search skips: dot files and folders (``.git``), and private
ones (``_src`` holding the sources of generated documents, ``__pycache__``)."""


def collect_files(
    paths: Iterable[str | Path], registry: LoaderRegistry
) -> tuple[list[Path], list[IngestSkipped]]:
    """Expand directories (recursively) into the files to ingest.

    Returns:
        The files, each once, as absolute paths in a stable order; and what was found in
        directories and left out: hidden files and folders (names starting with a dot, such
        as ``.git``, or an underscore, such as ``_src`` or ``__pycache__``) and files no
        loader reads. A file named directly is always kept: if no loader reads it, it fails
        visibly.
    """
    files: list[Path] = []
    skipped: list[IngestSkipped] = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.is_dir():
            files.append(path)
            continue
        for root, dirs, names in os.walk(path):
            for name in sorted(d for d in dirs if d.startswith(_HIDDEN)):
                skipped.append(_skip(Path(root, name), "hidden", "hidden folder, not searched"))
            dirs[:] = sorted(d for d in dirs if not d.startswith(_HIDDEN))
            for name in sorted(names):
                found = Path(root, name)
                if name.startswith(_HIDDEN):
                    skipped.append(_skip(found, "hidden", "hidden file"))
                elif registry.supports(found):
                    files.append(found)
                else:
                    detail = f"no loader reads {found.suffix or 'files without a suffix'}"
                    skipped.append(_skip(found, "unsupported", detail))
    return list(dict.fromkeys(absolute_path(f) for f in files)), skipped


def directories(paths: Iterable[str | Path]) -> list[Path]:
    """The directories among ``paths``, as absolute paths (the folders an ingestion
    searches, whose deleted files it looks for)."""
    return [absolute_path(p) for p in paths if Path(p).expanduser().is_dir()]


def _skip(path: Path, reason: Literal["hidden", "unsupported"], detail: str) -> IngestSkipped:
    return IngestSkipped(path=str(absolute_path(path)), reason=reason, detail=detail)


def absolute_path(path: str | Path) -> Path:
    # abspath, not resolve: a symlinked folder keeps the path the user knows.
    return Path(os.path.abspath(os.path.expanduser(path)))


def absolute_keys(passwords: Mapping[str, str] | Mapping[Path, str]) -> dict[Path, str]:
    """Passwords keyed by absolute path, the form :func:`collect_files` returns."""
    return {absolute_path(path): password for path, password in passwords.items()}


@dataclass
class _Prepared:
    """A file ready to be written: a new document (``info``), or a file whose content is
    already stored or being stored (``info`` is ``None``, a *claim*): then the file's path
    is added to document ``id``, and taken off the file's old versions."""

    id: str
    path: str
    info: DocumentInfo | None = None
    chunks: list[Chunk] = field(default_factory=list)


@dataclass(frozen=True)
class _Switch:
    """The record write that makes a batch visible, and what it did."""

    records: list[StoredDocument]
    """Complete records, in one write: the batch's new documents, and stored documents
    that gained or lost paths (with ``replaces`` for the documents that lost their last)."""
    retired: list[str]
    """Ids of documents left with no path, hidden by ``records``: to delete."""
    new: list[DocumentInfo]
    """The batch's new documents, as recorded."""
    claims: list[_Prepared]
    """The claims applied."""
    moved: set[str]
    """Paths taken off an older version."""


def _with_paths(info: DocumentInfo, paths: list[str]) -> DocumentInfo:
    """``info`` recorded under ``paths``, the first one its primary path. A title taken
    from the old primary path's file name (text files have no other) follows it."""
    update: dict[str, Any] = {"paths": paths, "path": paths[0]}
    if paths[0] != info.path and info.title == one_line(Path(info.path).stem):
        update["title"] = one_line(Path(paths[0]).stem)
    return info.model_copy(update=update)


@dataclass
class _Clock:
    spent: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, stage: str, started: float) -> None:
        with self.lock:  # stages finish in worker threads
            self.spent[stage] = self.spent.get(stage, 0.0) + time.perf_counter() - started

    async def run(self, stage: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` in a worker thread, timed inside the thread (not the wait for one)."""

        def timed() -> T:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(stage, started)

        return await asyncio.to_thread(timed)


_BATCH_CHUNKS = 256
"""Chunks per embedding call: big enough to keep the model busy, small enough for steady
progress."""
_QUEUE_DOCUMENTS = 64
"""How far preparation may run ahead of writing, in documents (bounds memory)."""
_LINGER_SECONDS = 0.05
"""How long a batch below ``_BATCH_CHUNKS`` waits for one more prepared document."""


async def _next(
    queue: asyncio.Queue[_Prepared | None], producer: asyncio.Task[None], *, linger: float | None
) -> _Prepared | Literal["linger"] | None:
    """The next prepared document; ``None`` when there are no more (the producer finished,
    or failed: awaiting it then re-raises); ``"linger"`` when ``linger`` seconds passed."""
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    # Also wake up if the producer dies, instead of waiting forever for its next item.
    await asyncio.wait({getter, producer}, timeout=linger, return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    # The wait can end (timeout, or the producer finishing) in the same loop iteration in
    # which an item was queued, before the read ran: the queue, not the tasks, says what is
    # left. Without this, the last document of a batch could be dropped silently.
    if not queue.empty():
        return queue.get_nowait()
    return None if producer.done() else "linger"


class Ingestion:
    """One ingestion run into one corpus (use :meth:`Corpus.ingest`)."""

    def __init__(
        self,
        corpus: IngestTarget,
        *,
        passwords: Mapping[Path, str],
        password: str | None,
        metadata: Mapping[str, MetadataValue],
        progress: IngestProgress | None,
    ) -> None:
        self.corpus = corpus
        self.passwords = passwords
        self.password = password
        self.metadata = dict(metadata)
        self.progress = progress
        self.report = IngestReport(corpus=corpus.name)
        self._clock = _Clock()
        self._files_total = 0
        self._files_done = 0
        self._chunks_done = 0
        self._complete: dict[str, DocumentInfo] = {}
        self._by_path: dict[str, set[str]] = {}
        self._seen: set[str] = set()
        """Ids prepared in this run (maybe not written yet)."""
        self._claims: list[_Prepared] = []
        """Files found holding stored content, not yet recorded. They are applied at the
        first switch that can (their document is written), even before their own batch,
        so a switch never deletes a document a file was just found to hold."""

    async def _start(self) -> None:
        self.report.recovered, records = await finish_interrupted(
            self.corpus.store, self.corpus.name
        )
        for info in records.visible.values():
            self._remember(info)

    def _remember(self, info: DocumentInfo) -> None:
        self._forget(info.id)
        self._complete[info.id] = info
        for path in info.paths:
            self._by_path.setdefault(path, set()).add(info.id)

    def _forget(self, id: str) -> None:
        info = self._complete.pop(id, None)
        if info is not None:
            for path in info.paths:
                self._by_path.get(path, set()).discard(id)

    def _previous(self, path: str, doc_id: str) -> list[str]:
        """Ids of the stored versions of ``path`` other than ``doc_id``."""
        return sorted(id for id in self._by_path.get(path, ()) if id != doc_id)

    def _tick(self, path: str | None) -> None:
        if path is not None:
            self._files_done += 1
        if self.progress is not None:
            self.progress(IngestEvent(self._files_total, self._files_done, self._chunks_done, path))

    async def run_files(
        self,
        files: Sequence[Path],
        skipped: list[IngestSkipped],
        *,
        folders: Sequence[Path] = (),
        prune: bool = False,
    ) -> IngestReport:
        """Ingest ``files``; then find the paths under ``folders`` that are gone from disk,
        and with ``prune`` take them off the corpus."""
        self.report.skipped = skipped
        self._files_total = len(files)
        worker = ParseWorker(timeout=self.corpus.parse_timeout)
        try:
            report = await self._run(self._prepare_files(files, worker))
        finally:
            await asyncio.to_thread(worker.close)
        if folders:
            await self._gone(folders, prune=prune)
        return report

    async def _gone(self, folders: Sequence[Path], *, prune: bool) -> None:
        """Report (and with ``prune`` remove) the corpus's paths under ``folders`` whose
        files were deleted: a folder ingested again after a file left it would otherwise
        go on answering from the file."""

        def gone(path: str) -> bool:
            under = any(Path(path).is_relative_to(folder) for folder in folders)
            return under and not os.path.lexists(path)

        found = await asyncio.to_thread(
            lambda: {p for info in self._complete.values() for p in info.paths if gone(p)}
        )
        self.report.gone = sorted(found)
        if not found or not prune:
            return
        detached, removed = await detach_paths(self.corpus, self._complete.values(), found)
        for info in removed:
            self._forget(info.id)
        for info in detached:
            self._remember(info)
        self.report.pruned = True

    async def run_documents(self, documents: Iterable[Document]) -> IngestReport:
        """Ingest documents already in memory."""
        documents = list(documents)
        self._files_total = len(documents)
        return await self._run(self._prepare_documents(documents))

    async def _run(self, prepared: AsyncIterator[_Prepared | None]) -> IngestReport:
        started = time.perf_counter()
        self.corpus.check_embedder()  # before any parsing, not at the first write
        await self._start()
        queue: asyncio.Queue[_Prepared | None] = asyncio.Queue(maxsize=_QUEUE_DOCUMENTS)

        async def produce() -> None:
            async for item in prepared:
                if item is not None:
                    await queue.put(item)
            await queue.put(None)

        producer = asyncio.create_task(produce())
        try:
            await self._consume(queue, producer)
            await producer  # re-raises a failure in preparation
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        spent = self._clock.spent
        self.report.timings = IngestTimings(
            total=time.perf_counter() - started, **{k: round(v, 3) for k, v in spent.items()}
        )
        return self.report

    async def _consume(
        self, queue: asyncio.Queue[_Prepared | None], producer: asyncio.Task[None]
    ) -> None:
        while True:
            first = await _next(queue, producer, linger=None)
            if first is None or first == "linger":
                return
            batch, size = [first], len(first.chunks)
            while size < _BATCH_CHUNKS:
                # A short linger lets a fast producer (small documents from memory) fill
                # the batch; a slow one (seconds per PDF) is not waited for, so the embedder
                # never idles while a complete document is ready.
                item = await _next(queue, producer, linger=_LINGER_SECONDS)
                if item == "linger":
                    break
                if item is None:
                    await self._write(batch)
                    return
                batch.append(item)
                size += len(item.chunks)
            await self._write(batch)

    async def _prepare_files(
        self, files: Sequence[Path], worker: ParseWorker
    ) -> AsyncIterator[_Prepared | None]:
        for path in files:
            yield await self._prepare_file(path, worker)

    async def _prepare_file(self, path: Path, worker: ParseWorker) -> _Prepared | None:
        try:
            data = await self._clock.run("read", read_file, path)
            doc_id = document_id(data)
            if self._stored(doc_id):
                return self._same_content(doc_id, str(path))
            loader = self.corpus.loaders.for_path(path)
            password = self.passwords.get(path, self.password)
            parse = worker.parse if loader.isolated else _in_process(loader)
            parsed = await self._clock.run(
                "parse", parse, loader, data, path=path, password=password
            )
            document = build_document(
                parsed, id=doc_id, path=path, media_type=loader.media_type, metadata=self.metadata
            )
            return await self._prepare(document, notes=parsed.notes, size=len(data))
        except DocumentError as exc:
            self._fail(str(path), exc.reason, exc.detail, exc.hint)
        except Exception as exc:
            self._fail_unexpectedly(str(path), exc)
        return None

    async def _prepare_documents(
        self, documents: Sequence[Document]
    ) -> AsyncIterator[_Prepared | None]:
        for document in documents:
            if self._stored(document.id):
                yield self._same_content(document.id, document.path)
                continue
            if self.metadata:
                document = document.model_copy(
                    update={"metadata": {**document.metadata, **self.metadata}}
                )
            try:
                yield await self._prepare(document, notes=[], size=0)
            except Exception as exc:
                self._fail_unexpectedly(document.path, exc)
                yield None

    def _fail(self, path: str, reason: str, detail: str, hint: str | None) -> None:
        self.report.failed.append(IngestFailure(path=path, reason=reason, detail=detail, hint=hint))
        self._tick(path)

    def _fail_unexpectedly(self, path: str, exc: Exception) -> None:
        # A loader or the chunker broke on this one file: report it, and go on with the rest.
        self._fail(
            path,
            "error",
            f"{type(exc).__name__}: {exc}",
            "Unexpected error in the loader or chunker for this file; the other files were "
            "ingested. Report it with the file if you can.",
        )

    def _stored(self, doc_id: str) -> bool:
        """Whether this content is in the corpus, or prepared earlier in this run."""
        return doc_id in self._complete or doc_id in self._seen

    def _same_content(self, doc_id: str, path: str) -> _Prepared | None:
        """``path`` holds content already stored: unchanged (``None``) when the document
        lists ``path`` and no other version of it is stored, else a claim to write."""
        known = self._complete.get(doc_id)
        # Only this file's own item changes what is stored under its path, so this holds
        # until the claim is applied.
        if known is not None and path in known.paths and not self._previous(path, doc_id):
            self.report.unchanged.append(path)
            self._tick(path)
            return None
        claim = _Prepared(id=doc_id, path=path)
        self._claims.append(claim)
        return claim

    async def _prepare(self, document: Document, *, notes: list[str], size: int) -> _Prepared:
        has_text = any(page.text.strip() for page in document.pages)
        chunks: list[Chunk] = []
        if has_text:
            chunks = await self._clock.run("chunk", self.corpus.chunker.chunk, document)
        info = DocumentInfo(
            id=document.id,
            title=document.title,
            path=document.path,
            pages=len(document.pages),
            chars=sum(len(p.text) for p in document.pages),
            chunks=len(chunks),
            status="ok" if chunks else "no_text",
            metadata=document.metadata,
            media_type=document.media_type,
            size=size,
            ingested_at=datetime.now(UTC),
            notes=notes,
        )
        # Only now: content whose preparation failed must not make a later copy "unchanged".
        self._seen.add(document.id)
        return _Prepared(document.id, document.path, info, chunks)

    async def _write(self, batch: list[_Prepared]) -> None:
        store, name = self.corpus.store, self.corpus.name
        new = [item.info for item in batch if item.info is not None]
        chunks = [c for item in batch for c in item.chunks]
        t = time.perf_counter()
        await store.put_documents(name, [StoredDocument(info=i, complete=False) for i in new])
        self._clock.add("store", t)
        if chunks:
            t = time.perf_counter()
            vectors = await self.corpus.embed_documents(chunks)
            self._clock.add("embed", t)
            t = time.perf_counter()
            await store.put_chunks(name, chunks, vectors)
            self._clock.add("store", t)
        t = time.perf_counter()
        # The switch. The batch's claims (files holding stored content) are applied here
        # too; their items need nothing more.
        switch = self._switch(new)
        if switch.records:  # not when the batch is only claims of documents still to come
            await store.put_documents(name, switch.records)
            await store.bump_version(name)
        if switch.retired:
            replacing = [d for d in switch.records if d.replaces]
            await retire(store, name, switch.retired, replacing)
            await store.bump_version(name)
        self._clock.add("store", t)
        self._report(switch)

    def _switch(self, new: Sequence[DocumentInfo]) -> _Switch:
        """The switch for a batch whose ``new`` documents' chunks are stored, applied to
        this run's view of the corpus at once.

        No ``await`` between taking the claims and updating the view: preparation runs
        meanwhile, and must either have its claim in this switch or see the documents it
        retires as gone (and parse the file again).
        """
        written = {info.id: info for info in new}
        claims: list[_Prepared] = []
        pending: list[_Prepared] = []
        for claim in self._claims:
            ready = claim.id in self._complete or claim.id in written
            (claims if ready else pending).append(claim)
        self._claims = pending
        records = dict(written)  # id -> the record as this switch writes it

        def current(doc: str) -> DocumentInfo:
            return records[doc] if doc in records else self._complete[doc]

        holders = {info.path: info.id for info in new}
        for claim in claims:  # paths are added first: a document a file holds never goes
            holders[claim.path] = claim.id
            info = current(claim.id)
            if claim.path not in info.paths:
                records[claim.id] = _with_paths(info, [*info.paths, claim.path])
        replaces: dict[str, list[str]] = {}
        moved: set[str] = set()
        for path, holder in holders.items():
            for old in self._previous(path, holder):
                moved.add(path)
                rest = [p for p in current(old).paths if p != path]
                if rest:
                    records[old] = _with_paths(current(old), rest)
                else:
                    records.pop(old, None)
                    replaces.setdefault(holder, []).append(old)
                    records.setdefault(holder, current(holder))
        retired = sorted(old for olds in replaces.values() for old in olds)
        for old in retired:
            self._forget(old)
        for info in records.values():
            self._remember(info)
        stored = [
            StoredDocument(info=info, complete=True, replaces=tuple(sorted(replaces.get(id, ()))))
            for id, info in records.items()
        ]
        return _Switch(stored, retired, [records[i.id] for i in new], claims, moved)

    def _report(self, switch: _Switch) -> None:
        for info in switch.new:
            if info.status == "no_text":
                self.report.no_text.append(info)
            elif info.path in switch.moved:
                self.report.updated.append(info)
            else:
                self.report.ingested.append(info)
            self.report.pages += info.pages
            self.report.chunks += info.chunks
            self._chunks_done += info.chunks
            self._tick(info.path)
        for claim in switch.claims:
            if claim.path in switch.moved:
                same = self._complete[claim.id]
                self.report.updated.append(same.model_copy(update={"path": claim.path}))
            else:
                self.report.unchanged.append(claim.path)
            self._tick(claim.path)


async def detach_paths(
    corpus: IngestTarget, documents: Iterable[DocumentInfo], paths: set[str]
) -> tuple[list[DocumentInfo], list[DocumentInfo]]:
    """Take ``paths`` off the ``documents`` that list them, and remove the documents left
    with no path (chunks and all), crash-safely: one record write hides the removed ones
    and detaches the paths (see ``_records``); only then are chunks deleted.

    Returns:
        The documents that kept other paths (as now recorded), and those removed.
    """
    detached: list[DocumentInfo] = []
    removed: list[DocumentInfo] = []
    for info in list(documents):
        rest = [p for p in info.paths if p not in paths]
        if not rest:
            removed.append(info)
        elif len(rest) < len(info.paths):
            detached.append(_with_paths(info, rest))
    if not detached and not removed:
        return [], []
    store, name = corpus.store, corpus.name
    records = [StoredDocument(info=info, complete=True) for info in detached]
    await store.put_documents(name, [*records, *(tombstone(info) for info in removed)])
    await store.bump_version(name)
    if removed:
        await retire(store, name, [info.id for info in removed], [])
        await store.bump_version(name)
    return detached, removed


def _in_process(loader: Loader) -> Callable[..., ParsedFile]:
    """``ParseWorker.parse``'s signature for a loader that runs in this process."""

    def parse(_: Loader, data: bytes, *, path: Path, password: str | None = None) -> ParsedFile:
        return loader.parse(data, path=path, password=password)

    return parse
