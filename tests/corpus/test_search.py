"""Search: the three modes, filters, embedding mismatch, and consistency across processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro_lite.corpus import Corpus, HybridSearch
from maestro_lite.errors import EmbeddingMismatch
from maestro_lite.retrieval import Retriever, SearchFilter, SearchMode
from maestro_lite.settings import Settings
from maestro_lite.testing import HashingEmbedder
from tests.pdfs import write_pdf

MODES: tuple[SearchMode, ...] = ("dense", "lexical", "hybrid")

TOPICS = {
    "tides.txt": "The moon's gravity pulls the oceans and raises two tides every day.",
    "bread.txt": "Yeast ferments sugar, and the gas makes bread dough rise before baking.",
    "chess.txt": "A chess opening such as the Sicilian Defence fights for the centre squares.",
}


def _write_topics(root: Path) -> Path:
    root.mkdir(exist_ok=True)
    for name, text in TOPICS.items():
        (root / name).write_text(text)
    pages = [f"Page {n} discusses volcano eruption number {n} and lava flows." for n in range(1, 6)]
    return write_pdf(root / "pdf" / "volcano.pdf", pages)


async def _fill(corpus: Corpus, root: Path) -> None:
    """Three one-line notes (metadata kind=note) and a 5-page PDF (kind=report)."""
    pdf = _write_topics(root)
    await corpus.ingest([root / name for name in TOPICS], metadata={"kind": "note"})
    await corpus.ingest([pdf], metadata={"kind": "report"})


@pytest.mark.parametrize("mode", MODES)
async def test_each_mode_finds_the_right_document(
    corpus: Corpus, tmp_path: Path, mode: SearchMode
) -> None:
    await _fill(corpus, tmp_path / "docs")
    for query, expected in [
        ("how does the moon cause ocean tides", "tides.txt"),
        ("yeast bread dough", "bread.txt"),
        ("Sicilian Defence chess opening", "chess.txt"),
    ]:
        hits = await corpus.search(query, k=3, mode=mode)
        assert hits[0].chunk.path.endswith(expected), (mode, query)
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert hits[0].chunk.text == TOPICS[expected]  # the exact span, not title + text


@pytest.mark.parametrize("mode", MODES)
async def test_filters_restrict_every_mode(
    corpus: Corpus, tmp_path: Path, mode: SearchMode
) -> None:
    await _fill(corpus, tmp_path / "docs")
    documents = {d.title: d.id for d in await corpus.documents()}
    notes_ids = {documents[name.removesuffix(".txt")] for name in TOPICS}
    # Words of the PDF and of every note: without a filter each mode, BM25 included, finds
    # chunks on both sides of every filter below, so an empty result would be a failure.
    query = "volcano eruption lava tides bread chess"
    unfiltered = await corpus.search(query, k=20, mode=mode)
    assert {h.chunk.document_id for h in unfiltered} == {documents["volcano"], *notes_ids}

    pages = await corpus.search(
        query, k=10, mode=mode, filters=SearchFilter(page_from=2, page_to=3)
    )
    assert {h.chunk.page for h in pages} == {2, 3}
    assert {h.chunk.document_id for h in pages} == {documents["volcano"]}

    notes = await corpus.search(
        query, k=10, mode=mode, filters=SearchFilter(metadata={"kind": "note"})
    )
    assert {h.chunk.document_id for h in notes} == notes_ids
    assert all(h.chunk.metadata == {"kind": "note"} for h in notes)

    only = await corpus.search(
        query, k=10, mode=mode, filters=SearchFilter(document_ids=[documents["tides"]])
    )
    assert {h.chunk.document_id for h in only} == {documents["tides"]}
    assert await corpus.search(query, k=10, mode=mode, filters=SearchFilter(document_ids=[])) == []


async def test_lexical_search_only_returns_matching_chunks(corpus: Corpus, tmp_path: Path) -> None:
    await _fill(corpus, tmp_path / "docs")
    assert await corpus.search("zeppelin", k=5, mode="lexical") == []
    assert await corpus.search("   ", k=5) == []
    assert len(await corpus.search("zeppelin", k=2, mode="dense")) == 2


@pytest.mark.parametrize("how", ["HybridSearch", "Settings", "MAESTRO_FUSION"])
async def test_rrf_fusion_is_selectable(
    settings: Settings, tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hybrid = None
    if how == "HybridSearch":
        hybrid = HybridSearch(fusion="rrf")
    elif how == "Settings":
        settings = Settings(home=settings.home, fusion="rrf")
    else:
        monkeypatch.setenv("MAESTRO_FUSION", "rrf")
        settings = Settings(home=settings.home)
    corpus = await Corpus.open("rrf", settings=settings, embedder=HashingEmbedder(), hybrid=hybrid)
    assert corpus.hybrid.fusion == "rrf"
    await _fill(corpus, tmp_path / "docs")
    hits = await corpus.search("yeast bread dough", k=3)
    assert hits[0].chunk.path.endswith("bread.txt")
    assert hits[0].score == pytest.approx(2 / 61)  # first in both lists: 1/61 + 1/61


async def test_convex_fusion_is_the_default(settings: Settings, tmp_path: Path) -> None:
    corpus = await Corpus.open("convex", settings=settings, embedder=HashingEmbedder())
    assert corpus.hybrid.fusion == "convex" and settings.fusion == "convex"
    await _fill(corpus, tmp_path / "docs")
    hits = await corpus.search("yeast bread dough", k=3)
    assert hits[0].chunk.path.endswith("bread.txt")
    assert hits[0].score == pytest.approx(1.0)  # the best of both normalised lists


async def test_querying_with_another_embedder_is_an_error(
    corpus: Corpus, settings: Settings, tmp_path: Path
) -> None:
    await _fill(corpus, tmp_path / "docs")
    other = await Corpus.open("test", settings=settings, embedder=HashingEmbedder(64))
    for mode in ("dense", "hybrid"):
        with pytest.raises(EmbeddingMismatch) as caught:
            await other.search("tides", mode=mode)  # type: ignore[arg-type]
        assert (caught.value.stored, caught.value.requested) == ("hashing:256", "hashing:64")
    with pytest.raises(EmbeddingMismatch):
        await other.ingest([write_pdf(tmp_path / "new.pdf", ["fresh text"])])
    # Words need no embedder: lexical search and listing still work.
    assert (await other.search("tides", mode="lexical"))[0].chunk.path.endswith("tides.txt")
    assert len(await other.documents()) == 4


async def test_a_writer_elsewhere_is_seen_by_an_open_reader(
    settings: Settings, tmp_path: Path
) -> None:
    reader = await Corpus.open("shared", settings=settings, embedder=HashingEmbedder())
    writer = await Corpus.open("shared", settings=settings, embedder=HashingEmbedder())
    await _fill(writer, tmp_path / "docs")
    assert (await reader.search("yeast", k=1, mode="lexical"))[0].chunk.path.endswith("bread.txt")

    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "comet.txt").write_text("A comet's tail points away from the sun.")
    await writer.ingest([tmp_path / "more"])
    hits = await reader.search("comet tail sun", k=1, mode="lexical")  # BM25 rebuilt, not stale
    assert hits[0].chunk.path.endswith("comet.txt")

    bread = next(d for d in await writer.documents() if d.title == "bread")
    await writer.remove(bread.id)
    assert bread.id not in {h.chunk.document_id for h in await reader.search("yeast", k=5)}


async def test_the_lexical_index_is_cached_on_disk_per_version(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = await Corpus.open("cached", settings=settings, embedder=HashingEmbedder())
    await _fill(corpus, tmp_path / "docs")
    await corpus.search("tides", mode="lexical")
    version = await corpus.store.version("cached")
    cached = [p for p in (settings.cache_dir / "lexical").glob("*/*") if p.is_dir()]
    assert [p.name for p in cached] == [version]

    fresh = await Corpus.open("cached", settings=settings, embedder=HashingEmbedder())
    assert (await fresh.search("tides", mode="lexical"))[0].chunk.path.endswith("tides.txt")

    (tmp_path / "docs" / "extra.txt").write_text("Extra words about tides and moons.")
    await corpus.ingest([tmp_path / "docs"])
    await fresh.search("tides", mode="lexical")
    cached = [p for p in (settings.cache_dir / "lexical").glob("*/*") if p.is_dir()]
    assert [p.name for p in cached] == [await corpus.store.version("cached")]  # old one gone


async def test_corpus_is_a_retriever(corpus: Corpus, tmp_path: Path) -> None:
    assert isinstance(corpus, Retriever)
    await _fill(corpus, tmp_path / "docs")
    hit = (await corpus.search("chess", k=1))[0]
    assert await corpus.get_chunks([hit.chunk.id, "missing:0"]) == [hit.chunk]


@pytest.mark.embeddings
async def test_minilm_corpus_search(settings: Settings, tmp_path: Path, minilm: object) -> None:
    corpus = await Corpus.open("minilm", settings=settings, embedder=minilm)  # type: ignore[arg-type]
    await _fill(corpus, tmp_path / "docs")
    # No word in common with the text: only a real embedding model gets this one.
    hits = await corpus.search("lunar pull on seawater", k=1, mode="dense")
    assert hits[0].chunk.path.endswith("tides.txt")
    assert corpus.config.embedder == "local:all-MiniLM-L6-v2"
