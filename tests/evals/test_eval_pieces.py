"""The pieces the retrieval evals stand on: metrics, data readers, the embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evals.common import percentile, ranked_documents
from evals.datasets import (
    DataMissing,
    load_hotpotqa,
    load_musique,
    load_scifact,
    paragraph_document,
    sec10q_pdfs,
    split_of,
)
from evals.embedding_cache import CachedEmbedder
from evals.ingest_throughput import NothingToMeasure
from evals.ingest_throughput import run as ingest_throughput
from evals.metrics import ndcg_at, recall_at
from maestro_lite.corpus import Corpus
from maestro_lite.documents import ParsedFile, build_document
from maestro_lite.settings import Settings
from maestro_lite.testing import HashingEmbedder
from tests.pdfs import write_pdf


def test_ndcg_and_recall_match_hand_computed_values() -> None:
    relevant = {"a": 1, "b": 1}
    assert ndcg_at(["a", "b", "x"], relevant, 10) == pytest.approx(1.0)
    # a at rank 2 only: (1/log2(3)) / (1 + 1/log2(3))
    assert ndcg_at(["x", "a"], relevant, 10) == pytest.approx(0.6309 / 1.6309, abs=1e-4)
    assert ndcg_at(["x", "a"], relevant, 1) == 0.0
    assert recall_at(["x", "a", "b"], relevant, 2) == 0.5
    assert recall_at(["b"], {"b"}, 5) == 1.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 0.95) == 95.0


def test_split_is_stable_and_about_a_third() -> None:
    ids = [str(i) for i in range(3000)]
    dev = [i for i in ids if split_of(i) == "dev"]
    assert 0.28 < len(dev) / len(ids) < 0.39
    assert [split_of(i) for i in ids] == [split_of(i) for i in ids]


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataMissing, match=str(tmp_path)):
        load_scifact(tmp_path)


def test_readers_on_the_shared_data(data_dir: Path) -> None:
    scifact = load_scifact(data_dir)
    assert len(scifact.documents) == 5183 and len(scifact.queries) == 809
    first = scifact.documents[0]
    # Sentences joined with spaces, not glued together as literal_eval would.
    assert "disabilities. A line scan" in first.text
    assert first.title.startswith("Microstructural development")
    hotpot, musique = load_hotpotqa(data_dir), load_musique(data_dir)
    assert len(hotpot) == len(musique) == 100
    assert all(len(q.paragraphs) == 10 and q.supporting for q in hotpot)
    assert all(len(q.paragraphs) == 20 and q.supporting for q in musique)
    assert len(sec10q_pdfs(data_dir)) == 20


async def test_cached_embedder_embeds_each_text_once(tmp_path: Path) -> None:
    inner = HashingEmbedder(16)
    cached = CachedEmbedder(inner, tmp_path)
    assert cached.name == "hashing:16"
    first = await cached.embed(["a b", "c", "a b"])
    assert inner.calls == [2]
    reopened = CachedEmbedder(inner, tmp_path)  # from disk, in a new instance
    again = await reopened.embed(["c", "a b", "new"])
    assert inner.calls == [2, 1]
    assert np.array_equal(again[:2], first[[1, 0]])
    query = await reopened.embed(["c"], input_type="query")  # cached apart from documents
    assert inner.calls == [2, 1, 1] and np.array_equal(query[0], first[1])


async def test_ranked_documents_deduplicates_chunks(corpus: Corpus) -> None:
    names = ["alpha", "bravo", "charlie", "delta", "echo"]
    documents = [
        build_document(
            ParsedFile(pages=["\n\n".join(f"Topic {name} sentence {j}. " * 40 for j in range(4))]),
            id=name,
            path=f"mem:{name}",
            media_type="text/plain",
        )
        for name in names
    ]
    await corpus.ingest_documents(documents)
    # Each document has several chunks that all match; the ranking still names 4 documents.
    ranked = await ranked_documents(corpus, "delta topic sentence", mode="lexical", depth=4)
    assert len(ranked) == 4 == len(set(ranked)) and ranked[0] == "delta"
    paragraph = paragraph_document("Title", "Text")
    assert paragraph.id == paragraph_document("Title", "Text").id != paragraph_document("T", "x").id


async def test_ingest_throughput_without_any_chunk_is_a_clear_error(tmp_path: Path) -> None:
    docs = tmp_path / "data" / "sec10q" / "docs"
    write_pdf(docs / "scan.pdf", ["", ""])  # no text layer: recorded, nothing to embed
    (docs / "empty.pdf").write_bytes(b"")
    settings = Settings(home=tmp_path / "home", data_dir=tmp_path / "data", embedder="hashing")
    with pytest.raises(NothingToMeasure) as caught:
        await ingest_throughput(settings, sample=10)
    message = str(caught.value)
    assert "no chunks to measure: the 2 filing(s) gave 1 failure(s) and 1 without text" in message
    assert "empty.pdf: empty" in message
    assert str(docs) in (caught.value.hint or "")


async def test_ingest_throughput_measures_a_small_set(tmp_path: Path) -> None:
    docs = tmp_path / "data" / "sec10q" / "docs"
    for n in range(3):
        write_pdf(docs / f"q{n}.pdf", [f"Filing {n} page {p}: revenue rose." for p in range(4)])
    settings = Settings(home=tmp_path / "home", data_dir=tmp_path / "data", embedder="hashing")
    result = await ingest_throughput(settings, sample=6)
    assert (result.files, result.failed, result.pages) == (3, 0, 12)
    assert result.chunks == 12 and result.raw_sample == 6
    assert result.chunks_per_second > 0 and result.raw_embed_chunks_per_second > 0
