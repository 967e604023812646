"""One meaning per name: the vector store, the corpora, the run and schedule stores. The old
``store=`` of each still works, as an alias of the new name."""

from __future__ import annotations

from pathlib import Path

from maestro_lite import Corpora, Corpus, Settings, SQLiteScheduleStore, Worker, list_corpora
from maestro_lite.store import ChromaStore
from maestro_lite.testing import FunctionModel, HashingEmbedder


async def test_the_vector_store_is_named_vector_store_and_store_is_its_alias(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path, embedder="hashing")
    vectors = ChromaStore.from_settings(settings)
    try:
        corpora = Corpora(settings, embedder=HashingEmbedder(), vector_store=vectors)
        assert corpora.vector_store is corpora.store is vectors
        assert Corpora(settings, store=vectors).vector_store is vectors
        made = await Corpus.open("c", settings=settings, embedder=HashingEmbedder(), store=vectors)
        await made.close()
        assert await list_corpora(vector_store=vectors) == await list_corpora(store=vectors)
        assert "c" in await list_corpora(vector_store=vectors)
        assert (await corpora.corpus("c")).name == "c"
        await corpora.aclose()
    finally:
        await vectors.close()


async def test_the_worker_s_schedule_store_and_its_old_name(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, embedder="hashing")
    model = FunctionModel(lambda call: "unused", name="none")
    with SQLiteScheduleStore(tmp_path / "s.sqlite3") as schedules:
        for worker in (
            Worker(model, settings=settings, schedule_store=schedules),
            Worker(model, settings=settings, store=schedules),
        ):
            async with worker:
                assert worker.schedule_store is worker.store is schedules
