"""Ingestion: reports, idempotency, replacement, encryption, scans, crash recovery."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from maestro_lite.corpus import Corpus, IngestEvent
from maestro_lite.documents import Chunker, Document, LoaderRegistry, ParsedFile, build_document
from maestro_lite.documents.model import Chunk, DocumentInfo
from maestro_lite.embeddings import InputType, Vectors
from maestro_lite.errors import CorpusNotFound, UserError
from maestro_lite.settings import Settings
from maestro_lite.store import ChromaStore, StoredDocument, VectorStore
from maestro_lite.testing import HashingEmbedder
from tests.documents.hostile_loaders import RaisingLoader
from tests.pdfs import write_pdf


async def _stored_chunk_ids(corpus: Corpus) -> list[str]:
    return sorted([c.id async for batch in corpus.store.scan_chunks(corpus.name) for c in batch])


def _library(root: Path) -> Path:
    """A folder with a PDF, a text file, a Markdown file and a file no loader reads."""
    write_pdf(root / "report.pdf", ["Quarterly revenue rose 12 percent.", "Margins held at 41."])
    (root / "notes.txt").write_text("Meeting notes: ship the Lisbon plant in March.")
    (root / "sub").mkdir()
    (root / "sub" / "guide.md").write_text("# Setup Guide\n\nInstall the package, then run it.")
    (root / "sub" / "data.bin").write_bytes(b"\x00\x01")
    (root / ".hidden.txt").write_text("never read")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD.txt").write_text("never read either")
    (root / "_src").mkdir()  # the sources of generated documents
    (root / "_src" / "report.md").write_text("# Quarterly report\n\nThe source, not read.")
    (root / "sub" / "_draft.md").write_text("private, not read")
    return root


async def test_ingest_a_folder_and_report_each_file(corpus: Corpus, tmp_path: Path) -> None:
    root = _library(tmp_path / "lib")
    events: list[IngestEvent] = []
    report = await corpus.ingest([root], progress=events.append)

    assert sorted(Path(d.path).name for d in report.ingested) == [
        "guide.md",
        "notes.txt",
        "report.pdf",
    ]
    assert [(s.path, s.reason) for s in report.skipped] == [
        (str(root / ".git"), "hidden"),
        (str(root / "_src"), "hidden"),
        (str(root / ".hidden.txt"), "hidden"),
        (str(root / "sub" / "_draft.md"), "hidden"),
        (str(root / "sub" / "data.bin"), "unsupported"),
    ]
    assert [s.detail for s in report.skipped] == [
        "hidden folder, not searched",
        "hidden folder, not searched",
        "hidden file",
        "hidden file",
        "no loader reads .bin",
    ]
    assert not report.failed and not report.updated and not report.unchanged
    assert report.pages == 4 and report.chunks == len(await _stored_chunk_ids(corpus))
    assert report.summary().startswith("3 ingested, 0 updated, 0 unchanged")
    assert "5 skipped" in report.summary()

    listed = await corpus.documents()
    assert [d.title for d in listed] == ["notes", "report", "Setup Guide"]
    pdf = next(d for d in listed if d.title == "report")
    assert pdf.pages == 2 and pdf.media_type == "application/pdf" and pdf.status == "ok"
    assert pdf.size == (root / "report.pdf").stat().st_size and pdf.ingested_at is not None

    assert events[-1].files_done == events[-1].files_total == 3
    assert [e.files_done for e in events] == sorted(e.files_done for e in events)
    assert events[-1].chunks_done == report.chunks

    named = await corpus.ingest([root / ".hidden.txt"])  # named directly: read after all
    assert [Path(d.path).name for d in named.ingested] == [".hidden.txt"]


async def test_reingesting_is_idempotent_and_changes_replace(
    corpus: Corpus, tmp_path: Path
) -> None:
    root = _library(tmp_path / "lib")
    await corpus.ingest([root])
    before = await _stored_chunk_ids(corpus)

    again = await corpus.ingest([root])
    assert len(again.unchanged) == 3 and not again.ingested and again.chunks == 0
    assert await _stored_chunk_ids(corpus) == before

    notes = root / "notes.txt"
    old_id = next(d.id for d in await corpus.documents() if d.title == "notes")
    notes.write_text("Meeting notes, revised: the Lisbon plant opens in May.\n\n" + "More. " * 400)
    changed = await corpus.ingest([root])
    assert [Path(d.path).name for d in changed.updated] == ["notes.txt"]
    assert len(changed.unchanged) == 2
    new = changed.updated[0]
    assert new.id != old_id and new.chunks > 1

    documents = await corpus.documents()
    assert [d.id for d in documents if d.path == str(notes)] == [new.id]
    assert await corpus.get_chunks([f"{old_id}:0"]) == []
    hits = await corpus.search("Lisbon plant", k=3, mode="lexical")
    assert {h.chunk.document_id for h in hits} == {new.id}


async def test_files_deleted_from_a_folder_are_reported_then_pruned(
    corpus: Corpus, tmp_path: Path
) -> None:
    root = _library(tmp_path / "lib")
    (root / "copy.txt").write_text((root / "notes.txt").read_text())  # same content: one doc
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("Ingested by name, outside the folder, then deleted.")
    await corpus.ingest([root, elsewhere])
    notes_id = next(d.id for d in await corpus.documents() if str(root / "notes.txt") in d.paths)
    report_id = next(d.id for d in await corpus.documents() if d.title == "report")
    (root / "report.pdf").unlink()
    (root / "notes.txt").unlink()  # its content stays in copy.txt
    elsewhere.unlink()  # not under a folder this ingestion searches: not looked for

    kept = await corpus.ingest([root])
    assert kept.gone == [str(root / "notes.txt"), str(root / "report.pdf")]
    assert not kept.pruned and "2 gone from disk (kept)" in kept.summary()
    assert report_id in {d.id for d in await corpus.documents()}  # nothing removed yet
    assert await corpus.search("Quarterly revenue", k=1, mode="lexical")

    pruned = await corpus.ingest([root], prune=True)
    assert pruned.gone == kept.gone and pruned.pruned and len(pruned.unchanged) == 2
    documents = {d.id: d for d in await corpus.documents()}
    assert report_id not in documents
    assert not [i for i in await _stored_chunk_ids(corpus) if i.startswith(report_id)]
    assert not await corpus.search("Quarterly revenue", k=5, mode="lexical")
    assert documents[notes_id].paths == [str(root / "copy.txt")]  # detached, not removed
    assert str(elsewhere) in {p for d in documents.values() for p in d.paths}

    again = await corpus.ingest([root], prune=True)
    assert again.gone == [] and not again.pruned and len(again.unchanged) == 2


async def test_documents_can_be_removed_by_id_prefix(corpus: Corpus, tmp_path: Path) -> None:
    await corpus.ingest([_library(tmp_path / "lib")])
    target = next(d for d in await corpus.documents() if d.title == "report")
    removed = await corpus.remove(target.id[:6])
    assert removed.id == target.id
    assert target.id not in {d.id for d in await corpus.documents()}
    assert not [i for i in await _stored_chunk_ids(corpus) if i.startswith(target.id)]
    assert not await corpus.search("quarterly revenue", k=5, mode="lexical")
    with pytest.raises(UserError, match="no document"):
        await corpus.remove(target.id)
    with pytest.raises(UserError, match="documents match"):
        await corpus.remove("")


async def test_passwords_default_and_per_file(corpus: Corpus, tmp_path: Path) -> None:
    a = write_pdf(tmp_path / "a.pdf", ["Alpha secret"], password="one")
    b = write_pdf(tmp_path / "b.pdf", ["Bravo secret"], password="two", algorithm="AES-256")
    c = write_pdf(tmp_path / "c.pdf", ["Charlie secret"], password="three")
    report = await corpus.ingest([a, b, c], password="one", passwords={str(b): "two"})
    assert sorted(Path(d.path).name for d in report.ingested) == ["a.pdf", "b.pdf"]
    assert [(Path(f.path).name, f.reason) for f in report.failed] == [("c.pdf", "encrypted")]
    assert "wrong password" in report.failed[0].detail
    hits = await corpus.search("Bravo secret", k=1, mode="lexical")  # AES, in the parse process
    assert [Path(h.chunk.path).name for h in hits] == ["b.pdf"]


async def test_scans_are_recorded_without_text_and_never_embedded(
    corpus: Corpus, tmp_path: Path
) -> None:
    scan = write_pdf(tmp_path / "scan.pdf", ["", ""])
    report = await corpus.ingest([scan])
    assert [d.path for d in report.no_text] == [str(scan)] and not report.ingested
    (info,) = await corpus.documents()
    assert info.status == "no_text" and info.chunks == 0 and info.pages == 2
    assert await _stored_chunk_ids(corpus) == []
    assert (await corpus.ingest([scan])).unchanged == [str(scan)]


async def test_in_memory_documents_and_metadata(corpus: Corpus) -> None:
    documents = [
        build_document(
            ParsedFile(pages=[text]), id=f"mem{i}", path=f"memory://{i}", media_type="text/plain"
        )
        for i, text in enumerate(["Volcanoes erupt lava.", "Glaciers carve valleys."])
    ]
    report = await corpus.ingest_documents(documents, metadata={"source": "memory"})
    assert len(report.ingested) == 2
    assert all(d.metadata == {"source": "memory"} for d in await corpus.documents())
    assert (await corpus.ingest_documents(documents)).unchanged == ["memory://0", "memory://1"]


async def test_opening_a_missing_corpus_without_create(settings: Settings) -> None:
    with pytest.raises(CorpusNotFound) as caught:
        await Corpus.open("absent", settings=settings, embedder=HashingEmbedder(), create=False)
    assert caught.value.corpus == "absent"


class _FailingEmbedder(HashingEmbedder):
    """Embeds ``allowed`` batches, then raises: an ingestion that dies halfway."""

    def __init__(self, allowed: int) -> None:
        super().__init__(name="hashing:256")
        self.allowed = allowed

    async def embed(self, texts: Sequence[str], *, input_type: InputType = "document") -> Vectors:
        if input_type == "document":
            if self.allowed == 0:
                raise RuntimeError("embedder died")
            self.allowed -= 1
        return await super().embed(texts, input_type=input_type)


class _CrashAfterChunks:
    """A store that dies right after writing chunks, before a document is marked complete:
    the worst moment for a crash."""

    def __init__(self, inner: VectorStore, *, survive: int) -> None:
        self.inner = inner
        self.survive = survive

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def put_documents(self, corpus: str, documents: Sequence[StoredDocument]) -> None:
        if any(d.complete for d in documents):
            if self.survive == 0:
                raise RuntimeError("power cut")
            self.survive -= 1
        await self.inner.put_documents(corpus, documents)


def _big_files(root: Path, count: int) -> list[Path]:
    root.mkdir()
    paths = []
    for i in range(count):
        path = root / f"doc{i}.txt"
        # About 300 chunks: more than one embedding batch (256), so each file is written
        # in a batch of its own whatever the timing, and the crash hits the second file.
        path.write_text("\n\n".join(f"Document {i} paragraph {j}. " * 30 for j in range(300)))
        paths.append(path)
    return paths


@pytest.mark.parametrize("crash", ["embedder", "store"])
async def test_a_crash_mid_ingest_leaves_no_half_document_and_a_rerun_completes(
    settings: Settings, tmp_path: Path, crash: str
) -> None:
    files = _big_files(tmp_path / "docs", 3)
    store: VectorStore = ChromaStore.from_settings(settings)
    embedder: HashingEmbedder = HashingEmbedder()
    if crash == "embedder":
        embedder = _FailingEmbedder(allowed=1)
    else:
        store = _CrashAfterChunks(store, survive=1)  # type: ignore[assignment]
    broken = await Corpus.open("c", settings=settings, embedder=embedder, vector_store=store)
    with pytest.raises(RuntimeError):
        await broken.ingest(files)

    corpus = await Corpus.open("c", settings=settings, embedder=HashingEmbedder())
    visible = await corpus.documents()
    assert len(visible) == 1  # the first document made it; the interrupted one is invisible
    records = await corpus.store.documents("c")
    assert [r.complete for r in records].count(False) == 1
    if crash == "store":  # its chunks are in the store, yet no search may return them
        leftover = [i for i in await _stored_chunk_ids(corpus) if not i.startswith(visible[0].id)]
        assert leftover
        for mode in ("dense", "lexical", "hybrid"):
            hits = await corpus.search("Document paragraph", k=50, mode=mode)
            assert {h.chunk.document_id for h in hits} == {visible[0].id}, mode

    rerun = await corpus.ingest(files)
    assert rerun.recovered == 1
    assert len(rerun.unchanged) == 1 and len(rerun.ingested) == 2
    assert all(r.complete for r in await corpus.store.documents("c"))
    documents = await corpus.documents()
    assert len(documents) == 3
    expected = sorted(f"{d.id}:{i}" for d in documents for i in range(d.chunks))
    assert await _stored_chunk_ids(corpus) == expected  # no duplicates, no orphans


async def test_a_file_changed_to_another_files_content_drops_its_old_version(
    corpus: Corpus, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    a, b = root / "a.txt", root / "b.txt"
    a.write_text("Alpha old text about the Lisbon plant.")
    b.write_text("Bravo text about the Zurich office.")
    first = await corpus.ingest([root])
    b_id = next(d.id for d in first.ingested if d.path == str(b))

    a.write_text(b.read_text())  # same bytes as b: the content hash is b's document id
    report = await corpus.ingest([root])
    assert [(d.path, d.id) for d in report.updated] == [(str(a), b_id)]
    assert report.unchanged == [str(b)] and report.chunks == 0
    assert [(d.path, d.id) for d in await corpus.documents()] == [(str(b), b_id)]
    assert await _stored_chunk_ids(corpus) == [f"{b_id}:0"]
    for mode in ("dense", "lexical", "hybrid"):
        hits = await corpus.search("Alpha text about the Lisbon plant", k=5, mode=mode)
        assert {h.chunk.document_id for h in hits} == {b_id}, mode  # a's old text is gone
    assert all(d.path != str(a) for d in await corpus.documents())


async def test_a_file_changed_to_a_new_files_content_in_the_same_batch(
    corpus: Corpus, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    z = root / "z.txt"
    z.write_text("Zulu old text about the Lisbon plant.")
    old_z = (await corpus.ingest([root])).ingested[0].id
    c = root / "c.txt"  # read before z.txt
    c.write_text("Charlie text about the Porto depot.")
    z.write_text(c.read_text())  # z changes to the content of c, new to the corpus

    report = await corpus.ingest([root])
    assert [d.path for d in report.ingested] == [str(c)]
    (only,) = await corpus.documents()
    assert [(d.path, d.id) for d in report.updated] == [(str(z), only.id)]
    assert only.path == str(c) and only.id != old_z
    assert await _stored_chunk_ids(corpus) == [f"{only.id}:0"]


class _FragileChunker(Chunker):
    """A chunker with a bug that only documents mentioning "fragile" trigger."""

    def chunk(self, document: Document) -> list[Chunk]:
        if "fragile" in document.text:
            raise ValueError("chunk boundary past the end of the page")
        return super().chunk(document)


async def test_an_unexpected_error_fails_only_its_file(settings: Settings, tmp_path: Path) -> None:
    loaders = LoaderRegistry()
    loaders.register(RaisingLoader())
    corpus = await Corpus.open(
        "c",
        settings=settings,
        embedder=HashingEmbedder(),
        loaders=loaders,
        chunker=_FragileChunker(),
    )
    root = tmp_path / "lib"
    root.mkdir()
    (root / "a.boom").write_bytes(b"boom")
    (root / "b.boom").write_text("A loader that works for this one.")
    (root / "c.txt").write_text("This fragile text breaks the chunker.")
    (root / "d.txt").write_text("Plain notes after the failures.")
    memory = build_document(
        ParsedFile(pages=["A fragile note in memory."]),
        id="m",
        path="memory://m",
        media_type="text/plain",
    )

    report = await corpus.ingest([root])
    in_memory = await corpus.ingest_documents([memory])

    assert sorted(Path(d.path).name for d in report.ingested) == ["b.boom", "d.txt"]
    failed = {Path(f.path).name: f for f in report.failed}
    assert sorted(failed) == ["a.boom", "c.txt"]
    assert failed["a.boom"].reason == "error"
    assert failed["a.boom"].detail == "KeyError: '/Root'"
    assert failed["c.txt"].detail == "ValueError: chunk boundary past the end of the page"
    assert all(f.hint for f in report.failed)
    assert [(f.path, f.reason) for f in in_memory.failed] == [("memory://m", "error")]
    assert len(await corpus.documents()) == 2


SHARED = "Shared text: the Oslo lab opens in April."


def _twins(root: Path) -> tuple[Path, Path]:
    """Two files with the same bytes, so one document (its id is their content hash)."""
    root.mkdir()
    a, b = root / "a.txt", root / "b.txt"
    a.write_text(SHARED)
    b.write_text(SHARED)
    return a, b


async def _ingested_twins(corpus: Corpus, root: Path) -> tuple[Path, Path, DocumentInfo]:
    """:func:`_twins`, ingested: the two files and their document."""
    a, b = _twins(root)
    return a, b, (await corpus.ingest([root])).ingested[0]


async def _hits(corpus: Corpus, query: str) -> dict[str, set[tuple[str, str]]]:
    """Per search mode, the ``(document id, chunk path)`` of every hit."""
    return {
        mode: {
            (h.chunk.document_id, h.chunk.path) for h in await corpus.search(query, k=10, mode=mode)
        }
        for mode in ("dense", "lexical", "hybrid")
    }


async def test_identical_files_are_one_document_listing_both_paths(
    corpus: Corpus, tmp_path: Path
) -> None:
    a, b = _twins(tmp_path / "lib")
    report = await corpus.ingest([tmp_path / "lib"])
    (shared,) = report.ingested
    assert report.unchanged == [str(b)] and report.chunks == 1
    assert [(d.id, d.path, d.paths) for d in await corpus.documents()] == [
        (shared.id, str(a), [str(a), str(b)])
    ]
    again = await corpus.ingest([b])  # recorded already: nothing to write
    assert again.unchanged == [str(b)]
    assert (await corpus.documents())[0].paths == [str(a), str(b)]


async def test_changing_one_of_two_identical_files_keeps_the_others_text(
    corpus: Corpus, tmp_path: Path
) -> None:
    a, b, shared = await _ingested_twins(corpus, tmp_path / "lib")
    a.write_text("New text: the Zurich office opens in May.")

    report = await corpus.ingest([tmp_path / "lib"])
    (new,) = report.updated
    assert new.path == str(a) and report.unchanged == [str(b)]
    documents = {d.id: d for d in await corpus.documents()}
    assert sorted(documents) == sorted([shared.id, new.id])
    # b's text stays, now under b's own path (and the file name title follows it).
    kept = documents[shared.id]
    assert (kept.path, kept.paths, kept.title) == (str(b), [str(b)], "b")
    assert documents[new.id].paths == [str(a)]
    for mode, found in (await _hits(corpus, "Oslo lab April")).items():
        assert (shared.id, str(b)) in found, mode
        assert all(path != str(a) for id, path in found if id == shared.id), mode
    (chunk,) = await corpus.get_chunks([f"{shared.id}:0"])
    assert (chunk.path, chunk.title) == (str(b), "b")
    assert (await corpus.ingest([tmp_path / "lib"])).unchanged == [str(a), str(b)]

    b.write_text("Newer text: the Porto depot opens in June.")  # now no file holds it
    both = await corpus.ingest([tmp_path / "lib"])
    assert [d.path for d in both.updated] == [str(b)]
    assert shared.id not in {d.id for d in await corpus.documents()}
    assert not [i for i in await _stored_chunk_ids(corpus) if i.startswith(shared.id)]
    for mode, found in (await _hits(corpus, "Oslo lab April")).items():
        assert shared.id not in {id for id, _ in found}, mode


async def test_changing_both_identical_files_in_one_run_drops_their_old_document(
    corpus: Corpus, tmp_path: Path
) -> None:
    a, b, shared = await _ingested_twins(corpus, tmp_path / "lib")
    a.write_text("New text: the Zurich office opens in May.")
    b.write_text("Newer text: the Porto depot opens in June.")

    report = await corpus.ingest([tmp_path / "lib"])
    assert sorted(d.path for d in report.updated) == [str(a), str(b)]
    documents = await corpus.documents()
    assert [d.paths for d in documents] == [[str(a)], [str(b)]]
    assert shared.id not in {d.id for d in documents}
    expected = sorted(f"{d.id}:{i}" for d in documents for i in range(d.chunks))
    assert await _stored_chunk_ids(corpus) == expected


async def test_a_deleted_twin_or_a_removal_keeps_shared_content_right(
    corpus: Corpus, tmp_path: Path
) -> None:
    a, b, shared = await _ingested_twins(corpus, tmp_path / "lib")
    a.unlink()
    report = await corpus.ingest([tmp_path / "lib"])
    assert report.unchanged == [str(b)] and not report.failed
    (kept,) = await corpus.documents()
    assert kept.id == shared.id and str(b) in kept.paths
    for mode, found in (await _hits(corpus, "Oslo lab April")).items():
        assert shared.id in {id for id, _ in found}, mode

    # Removing the document removes it for every path; ingesting brings it back.
    await corpus.remove(shared.id)
    assert await corpus.documents() == []
    assert await _stored_chunk_ids(corpus) == []
    back = await corpus.ingest([tmp_path / "lib"])
    assert [(d.id, d.paths) for d in back.ingested] == [(shared.id, [str(b)])]


@pytest.mark.parametrize("size", ["small", "large"])
async def test_a_copy_found_in_the_run_that_changes_the_original_keeps_the_content(
    corpus: Corpus, tmp_path: Path, size: str
) -> None:
    """a.txt changes while q.txt, new, holds a's old content. Large: a.txt's new version
    is a batch of its own, written while q.txt is being read."""
    root = tmp_path / "lib"
    root.mkdir()
    a, q = root / "a.txt", root / "q.txt"
    a.write_text(SHARED)
    old = (await corpus.ingest([root])).ingested[0]
    text = "New text: the Zurich office opens in May."
    a.write_text("\n\n".join([text] * 400) if size == "large" else text)
    q.write_text(SHARED)

    report = await corpus.ingest([root])
    assert report.ok and [d.path for d in report.updated] == [str(a)]
    documents = {d.id: d.paths for d in await corpus.documents()}
    assert documents.get(old.id) == [str(q)]
    assert len(documents) == 2
    expected = sorted(f"{d.id}:{i}" for d in await corpus.documents() for i in range(d.chunks))
    assert await _stored_chunk_ids(corpus) == expected


async def test_records_without_paths_read_as_their_path(settings: Settings, tmp_path: Path) -> None:
    """A corpus written before documents listed their paths keeps working, and learns the
    paths of identical files on the next ingestion."""
    a, b = _twins(tmp_path / "lib")
    corpus = await Corpus.open("old", settings=settings, embedder=HashingEmbedder())
    shared = (await corpus.ingest([a])).ingested[0]
    store = corpus.store
    assert isinstance(store, ChromaStore)
    docs = store._client.get_collection("maestro.old.docs", embedding_function=None)
    record = json.loads(docs.get(ids=[shared.id], include=["documents"])["documents"][0])
    del record["paths"]
    docs.update(ids=[shared.id], embeddings=[[1.0]], documents=[json.dumps(record)])
    await store.bump_version("old")

    assert [d.paths for d in await corpus.documents()] == [[str(a)]]
    assert (await corpus.ingest([a, b])).unchanged == [str(a), str(b)]
    assert [d.paths for d in await corpus.documents()] == [[str(a), str(b)]]
    a.write_text("New text: the Zurich office opens in May.")
    await corpus.ingest([a, b])
    assert {d.id: d.paths for d in await corpus.documents()}[shared.id] == [str(b)]
