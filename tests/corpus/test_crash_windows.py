"""A power cut at every write of a replacement or a removal: readers never see two versions
of a file or chunks of a deleted document, and the next ingestion converges.

The store is the real :class:`ChromaStore` on a real embedded Chroma; only its client is
wrapped, so that the Nth write to any collection raises instead of happening. Each test
first counts the writes of an uninterrupted run, then cuts the power before each of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from maestro_lite.corpus import Corpus
from maestro_lite.documents import ParsedFile, build_document, document_id
from maestro_lite.documents.model import Document
from maestro_lite.retrieval import SearchMode
from maestro_lite.settings import Settings
from maestro_lite.store import ChromaStore
from maestro_lite.testing import HashingEmbedder

MODES: tuple[SearchMode, ...] = ("dense", "lexical", "hybrid")
OLD = "Old version: the Lisbon plant opens in March."
NEW = "New version: the Zurich office opens in May."
OTHER = "Another file: the Porto depot opens in June."


class PowerCut(Exception):
    """Raised instead of the write the fuse does not allow."""


class Fuse:
    """Lets ``writes`` writes through (all of them when ``None``), then cuts the power."""

    def __init__(self, writes: int | None = None) -> None:
        self.left = writes
        self.log: list[str] = []

    def spend(self, what: str) -> None:
        if self.left is not None:
            if self.left == 0:
                raise PowerCut(what)
            self.left -= 1
        self.log.append(what)


class _FusedCollection:
    def __init__(self, inner: Any, fuse: Fuse) -> None:
        self._inner = inner
        self._fuse = fuse

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in ("add", "upsert", "update", "delete", "modify"):
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            self._fuse.spend(f"{self._inner.name}.{name}")
            return attr(*args, **kwargs)

        return write


class _FusedClient:
    def __init__(self, inner: Any, fuse: Fuse) -> None:
        self._inner = inner
        self._fuse = fuse

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_collection(self, *args: Any, **kwargs: Any) -> _FusedCollection:
        return _FusedCollection(self._inner.get_collection(*args, **kwargs), self._fuse)


def fused_store(settings: Settings, fuse: Fuse) -> ChromaStore:
    client = chromadb.PersistentClient(
        path=str(settings.chroma_dir), settings=ChromaSettings(anonymized_telemetry=False)
    )
    store = ChromaStore(_FusedClient(client, fuse), where=str(settings.chroma_dir), embedded=True)
    _OPENED.append(store)
    return store


_OPENED: list[Corpus | ChromaStore] = []


@pytest.fixture(autouse=True)
async def _close_opened() -> AsyncIterator[None]:
    """Every corpus and store a test opened (crashed ones too) gives its files back."""
    yield
    while _OPENED:
        await _OPENED.pop().close()


async def _open(settings: Settings, name: str, store: ChromaStore | None = None) -> Corpus:
    corpus = await Corpus.open(
        name, settings=settings, embedder=HashingEmbedder(), vector_store=store
    )
    _OPENED.append(corpus)
    return corpus


async def _chunk_ids(corpus: Corpus) -> list[str]:
    return sorted([c.id async for batch in corpus.store.scan_chunks(corpus.name) for c in batch])


async def _seen_by_readers(corpus: Corpus) -> tuple[set[str], dict[str, set[str]]]:
    """The documents listed, and per search mode the documents whose chunks are returned."""
    listed = {d.id for d in await corpus.documents()}
    found = {
        mode: {h.chunk.document_id for h in await corpus.search("opens", k=20, mode=mode)}
        for mode in MODES
    }
    return listed, found


async def _count_writes(
    settings: Settings, name: str, action: Callable[[Corpus], Awaitable[object]]
) -> int:
    """How many writes ``action`` makes when nothing fails."""
    fuse = Fuse()
    await action(await _open(settings, name, fused_store(settings, fuse)))
    return len(fuse.log)


async def _assert_converged(corpus: Corpus, expected: set[str]) -> None:
    """Exactly ``expected`` is stored: finished records, their chunks, nothing else."""
    assert {d.id for d in await corpus.documents()} == expected
    records = await corpus.store.documents(corpus.name)
    assert sorted(r.info.id for r in records) == sorted(expected)
    assert all(r.complete and not r.deleting and not r.replaces for r in records)
    chunks = sorted(f"{d.id}:{i}" for d in await corpus.documents() for i in range(d.chunks))
    assert await _chunk_ids(corpus) == chunks  # no orphans, no duplicates
    listed, found = await _seen_by_readers(corpus)
    assert all(documents == listed for documents in found.values())


@pytest.mark.parametrize("content", ["new", "another file's"])
async def test_a_crash_at_any_write_of_a_replacement_shows_one_version_and_converges(
    settings: Settings, tmp_path: Path, content: str
) -> None:
    """notes.txt changes to new text, or to the text of another file of the corpus (then
    its old version must go although nothing new is written)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    notes, other = folder / "notes.txt", folder / "other.txt"
    new_text = NEW if content == "new" else OTHER
    new_id = document_id(new_text.encode())

    async def prepared(name: str) -> tuple[str, str]:
        notes.write_text(OLD)
        other.write_text(OTHER)
        report = await (await _open(settings, name)).ingest([folder])
        notes.write_text(new_text)
        by_name = {Path(d.path).name: d.id for d in report.ingested}
        return by_name["notes.txt"], by_name["other.txt"]

    await prepared("count")
    writes = await _count_writes(settings, "count", lambda c: c.ingest([folder]))
    assert writes >= 5  # records, chunks, the switch, deletion, clean-up, version stamps

    for cut in range(writes):
        name = f"cut{cut}"
        old_id, other_id = await prepared(name)
        broken = await _open(settings, name, fused_store(settings, Fuse(cut)))
        with pytest.raises(PowerCut):
            await broken.ingest([folder])

        # A reader sees the old or the new version of notes.txt, never both, and no search
        # mode returns a chunk of a document it does not list.
        reader = await _open(settings, name)
        listed, found = await _seen_by_readers(reader)
        assert listed in ({old_id, other_id}, {new_id, other_id}), cut
        assert all(documents == listed for documents in found.values()), (cut, found)

        rerun = await (await _open(settings, name)).ingest([folder])
        assert rerun.ok, cut
        await _assert_converged(reader, {new_id, other_id})
        for mode in MODES:
            hits = await reader.search("Lisbon plant March", k=20, mode=mode)
            assert old_id not in {h.chunk.document_id for h in hits}, (cut, mode)
        settled = await (await _open(settings, name)).ingest([folder])
        assert settled.recovered == 0 and len(settled.unchanged) == 2, cut


SHARED = "Shared text: the Oslo lab opens in April."
NEWER = "Newer version: the Bergen port opens in July."


@pytest.mark.parametrize("change", ["first", "both", "copy"])
async def test_a_crash_at_any_write_with_shared_content_loses_no_file_and_converges(
    settings: Settings, tmp_path: Path, change: str
) -> None:
    """a.txt and b.txt hold the same text (one document, two paths). ``first``: a.txt
    changes (only its path leaves the document); ``both``: both change (the document
    goes); ``copy``: b.txt is new, a copy of a.txt (the document gains its path)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    a, b, other = folder / "a.txt", folder / "b.txt", folder / "other.txt"
    ids = {text: document_id(text.encode()) for text in (SHARED, NEW, NEWER, OTHER)}
    after = {
        "first": {a: NEW, b: SHARED, other: OTHER},
        "both": {a: NEW, b: NEWER, other: OTHER},
        "copy": {a: SHARED, b: SHARED, other: OTHER},
    }[change]
    expected: dict[str, list[str]] = {}
    for path, text in after.items():
        expected.setdefault(ids[text], []).append(str(path))

    async def prepared(name: str) -> dict[Path, str]:
        """The corpus before the change, and the document id each file had in it."""
        a.write_text(SHARED)
        other.write_text(OTHER)
        b.unlink(missing_ok=True)
        if change != "copy":
            b.write_text(SHARED)
        await (await _open(settings, name)).ingest([folder])
        before = {path: ids[path.read_text()] for path in (a, b, other) if path.exists()}
        for path, text in after.items():
            path.write_text(text)
        return before

    await prepared("count")
    writes = await _count_writes(settings, "count", lambda c: c.ingest([folder]))
    assert writes >= (1 if change == "copy" else 4)

    for cut in range(writes):
        name = f"cut{cut}"
        before = await prepared(name)
        broken = await _open(settings, name, fused_store(settings, Fuse(cut)))
        with pytest.raises(PowerCut):
            await broken.ingest([folder])

        # Every file that was in the corpus still is, once, with its old or new text; so
        # b.txt's text never disappears while a.txt alone changes.
        reader = await _open(settings, name)
        documents = await reader.documents()
        for path, old_id in before.items():
            holding = [d.id for d in documents if str(path) in d.paths]
            assert holding in ([old_id], [ids[after[path]]]), (cut, path, holding)
        listed, found = await _seen_by_readers(reader)
        assert all(documents == listed for documents in found.values()), (cut, found)

        rerun = await (await _open(settings, name)).ingest([folder])
        assert rerun.ok, cut
        await _assert_converged(reader, set(expected))
        assert {d.id: d.paths for d in await reader.documents()} == expected, cut
        for mode in MODES:  # each hit is attributed to a file holding its text
            for hit in await reader.search("opens", k=20, mode=mode):
                assert hit.chunk.path in expected[hit.chunk.document_id], (cut, mode)
        settled = await (await _open(settings, name)).ingest([folder])
        assert settled.recovered == 0 and len(settled.unchanged) == 3, cut


async def test_a_crash_at_any_write_of_a_removal_hides_it_whole_and_converges(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text(OLD)
    (folder / "other.txt").write_text(OTHER)

    async def prepared(name: str) -> tuple[Corpus, str, str]:
        corpus = await _open(settings, name)
        report = await corpus.ingest([folder])
        by_name = {Path(d.path).name: d.id for d in report.ingested}
        return corpus, by_name["notes.txt"], by_name["other.txt"]

    _, target, _ = await prepared("count")
    writes = await _count_writes(settings, "count", lambda c: c.remove(target))
    assert writes >= 4  # mark, version stamp, chunks, record, version stamp

    for cut in range(writes):
        name = f"cut{cut}"
        _, target, kept = await prepared(name)
        broken = await _open(settings, name, fused_store(settings, Fuse(cut)))
        with pytest.raises(PowerCut):
            await broken.remove(target)

        reader = await _open(settings, name)
        listed, found = await _seen_by_readers(reader)
        assert listed in ({target, kept}, {kept}), cut  # whole, or gone
        for mode, documents in found.items():
            assert documents == listed, (cut, mode)

        if target in listed:  # the cut came before anything was written: remove again
            await reader.remove(target)
        rerun = await (await _open(settings, name)).ingest([folder / "other.txt"])
        assert rerun.unchanged == [str(folder / "other.txt")], cut
        await _assert_converged(reader, {kept})


async def test_chunks_without_a_record_never_surface(settings: Settings) -> None:
    """A store damaged by an older maestro-lite (chunks whose record is gone) still gives
    no search mode a chunk of a document the corpus does not list."""
    corpus = await _open(settings, "c")
    kept = (await corpus.ingest_documents([_memory_document("kept", OTHER)])).ingested[0]
    ghost = await _open(settings, "ghost")
    await ghost.ingest_documents([_memory_document("ghost", OLD)])
    orphans = await ghost.get_chunks(["ghost:0"])
    vectors = await corpus.embed_documents(orphans)
    await corpus.store.put_chunks("c", orphans, vectors)  # chunks, no record

    for mode in MODES:
        hits = await corpus.search("Lisbon plant opens", k=10, mode=mode)
        assert [h.chunk.document_id for h in hits] == [kept.id], mode


def _memory_document(id: str, text: str) -> Document:
    return build_document(
        ParsedFile(pages=[text]), id=id, path=f"memory://{id}", media_type="text/plain"
    )
