"""The Chroma adapter, embedded and against a real `chroma run` server on loopback."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from maestro_lite.corpus import Corpus
from maestro_lite.documents.model import Chunk, DocumentInfo
from maestro_lite.errors import StoreError, UserError
from maestro_lite.retrieval import SearchFilter
from maestro_lite.settings import Settings
from maestro_lite.store import ChromaStore, CorpusConfig, StoredDocument, check_corpus_name
from maestro_lite.store.chroma import where_clause
from maestro_lite.testing import HashingEmbedder
from tests.retrieval_fixtures import free_port

CONFIG = CorpusConfig(
    embedder="hashing:8", chunk_tokens=100, overlap_tokens=10, created_at=datetime.now(UTC)
)


def _chunk(doc: str, index: int, page: int, **metadata: str | int) -> Chunk:
    text = f"{doc} chunk {index}"
    return Chunk(
        id=f"{doc}:{index}",
        document_id=doc,
        index=index,
        text=text,
        page=page,
        start=0,
        end=len(text),
        doc_start=10 * index,
        doc_end=10 * index + len(text),
        title=f"Title {doc}",
        path=f"/docs/{doc}.txt",
        metadata=metadata,
    )


def test_where_clause() -> None:
    assert where_clause(None) is None
    assert where_clause(SearchFilter(page_from=2)) == {"page": {"$gte": 2}}
    clause = where_clause(
        SearchFilter(document_ids=["a"], page_to=3, metadata={"year": 2023, "kind": "10-Q"}),
        exclude_documents=["z"],
    )
    assert clause == {
        "$and": [
            {"document_id": {"$in": ["a"]}},
            {"page": {"$lte": 3}},
            {"meta.kind": {"$eq": "10-Q"}},
            {"meta.year": {"$eq": 2023}},
            {"document_id": {"$nin": ["z"]}},
        ]
    }


def test_corpus_names_are_checked() -> None:
    for good in ("default", "a", "sec.10-q_2023"):
        assert check_corpus_name(good) == good
    for bad in ("", "-x", "x-", "a..b", "has space", "x" * 65, "é"):
        with pytest.raises(UserError):
            check_corpus_name(bad)


async def test_store_round_trip(tmp_path: Path) -> None:
    store = ChromaStore.persistent(tmp_path / "chroma")
    assert await store.corpora() == []
    assert await store.corpus_config("c") is None
    await store.create_corpus("c", CONFIG)
    assert await store.corpora() == ["c"]
    assert await store.corpus_config("c") == CONFIG

    chunks = [_chunk("a", 0, 1, kind="memo"), _chunk("a", 1, 2, kind="memo"), _chunk("b", 0, 1)]
    vectors = np.eye(3, 8, dtype=np.float32)
    await store.put_chunks("c", chunks, vectors)
    assert await store.get_chunks("c", ["b:0", "nope", "a:1"]) == [chunks[2], chunks[1]]

    hits = await store.query("c", vectors[1], k=2)
    assert hits[0][0] == "a:1" and hits[0][1] == pytest.approx(1.0)
    filtered = await store.query("c", vectors[1], k=5, filters=SearchFilter(page_to=1))
    assert {id for id, _ in filtered} == {"a:0", "b:0"}
    by_meta = await store.query(
        "c", vectors[0], k=5, filters=SearchFilter(metadata={"kind": "memo"})
    )
    assert {id for id, _ in by_meta} == {"a:0", "a:1"}
    excluded = await store.query("c", vectors[0], k=5, exclude_documents=["a"])
    assert [id for id, _ in excluded] == ["b:0"]
    assert await store.query("c", vectors[0], k=5, filters=SearchFilter(document_ids=[])) == []

    scanned = [c async for batch in store.scan_chunks("c", batch_size=2) for c in batch]
    assert sorted(c.id for c in scanned) == ["a:0", "a:1", "b:0"]

    info = DocumentInfo(id="a", title="A", path="/docs/a.txt", pages=2, chars=20, chunks=2)
    await store.put_documents("c", [StoredDocument(info=info, complete=False)])
    assert await store.documents("c") == [StoredDocument(info=info, complete=False)]

    before = await store.version("c")
    assert await store.bump_version("c") != before
    assert await store.version("c") != before
    assert await store.corpus_config("c") == CONFIG  # bumping keeps the config

    flagged = StoredDocument(info=info, complete=True, deleting=True, replaces=("x", "y"))
    await store.put_documents("c", [flagged])
    assert await store.documents("c") == [flagged]
    cleared = StoredDocument(info=info, complete=True)
    await store.put_documents("c", [cleared])  # an upsert replaces every flag
    assert await store.documents("c") == [cleared]

    await store.delete_documents("c", ["a", "never-stored"])
    assert await store.documents("c") == []
    assert [c.id for c in await store.get_chunks("c", ["a:0", "a:1", "b:0"])] == ["b:0"]

    await store.drop_corpus("c")
    assert await store.corpora() == []


async def test_the_same_corpus_code_works_against_a_chroma_server(
    chroma_server: str, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home", chroma_url=chroma_server)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.txt").write_text("The moon's gravity raises ocean tides twice a day.")
    (docs / "bread.md").write_text("# Baking\n\nYeast makes bread dough rise in a warm kitchen.")

    async with await Corpus.open("served", settings=settings, embedder=HashingEmbedder()) as corpus:
        report = await corpus.ingest([docs])
        assert len(report.ingested) == 2 and not report.failed
        for mode in ("dense", "lexical", "hybrid"):
            hits = await corpus.search("why do ocean tides happen", k=1, mode=mode)
            assert hits[0].chunk.path.endswith("tides.txt"), mode

    # Nothing was written locally: the data lives in the server.
    assert not settings.chroma_dir.exists()
    async with await Corpus.open(
        "served", settings=settings, embedder=HashingEmbedder(), create=False
    ) as again:
        assert {d.title for d in await again.documents()} == {"tides", "Baking"}
        assert (await again.ingest([docs])).unchanged == sorted(str(p) for p in docs.iterdir())


def test_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError) as caught:
        ChromaStore.connect(f"http://127.0.0.1:{free_port()}")
    assert caught.value.hint is not None and "chroma run" in caught.value.hint


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd (Linux)")
async def test_closing_a_corpus_releases_its_store_files(tmp_path: Path) -> None:
    # A worker or a notebook opens many corpora over its life: each closed one must give its
    # SQLite connections and index files back, or the process runs out of descriptors.
    note = tmp_path / "note.txt"
    note.write_text("The notice period is 60 days. " * 20)

    async def open_use_close(home: Path) -> None:
        settings = Settings(home=home, embedder="hashing")
        corpus = await Corpus.open("notes", settings=settings, embedder=HashingEmbedder())
        await corpus.ingest([note])
        assert await corpus.search("notice period", k=1)
        await corpus.close()

    await open_use_close(tmp_path / "warm-up")  # libraries load and keep what they keep
    before = _open_files()
    for n in range(8):
        await open_use_close(tmp_path / f"home{n}")
    assert _open_files() - before <= 4  # one store kept ~15 files open for good before


async def test_a_store_passed_in_stays_open_when_its_corpus_closes(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, embedder="hashing")
    store = ChromaStore.from_settings(settings)
    first = await Corpus.open(
        "a", settings=settings, embedder=HashingEmbedder(), vector_store=store
    )
    await first.close()
    # The caller's store still works: another corpus on it opens, writes and reads.
    second = await Corpus.open(
        "b", settings=settings, embedder=HashingEmbedder(), vector_store=store
    )
    note = tmp_path / "note.txt"
    note.write_text("The cap is USD 2,500,000.")
    assert len((await second.ingest([note])).ingested) == 1
    assert await second.search("cap", k=1)
    await second.close()
    await store.close()
