"""The eval harness: resumable per-item cache, scoped retrieval, the BENCHMARKS.md table."""

from __future__ import annotations

from pathlib import Path

from evals.harness import ItemCache, ScopedRetriever, append_benchmarks, markdown_table
from maestro_lite import SearchFilter

from ..pipelines.conftest import MemoryRetriever, chunk


def test_item_results_survive_a_restart_and_config_changes_start_over(tmp_path: Path) -> None:
    config = {"model": "m", "k": 4}
    cache = ItemCache(tmp_path, "demo", config)
    cache.add("q1", {"f1": 0.5})
    with cache.path.open("a") as handle:
        handle.write('{"key": "q2", "f1"')  # cut short by an interruption

    again = ItemCache(tmp_path, "demo", config)
    assert again.get("q1") == {"key": "q1", "f1": 0.5}
    assert again.get("q2") is None

    other = ItemCache(tmp_path, "demo", {"model": "m", "k": 5})
    assert other.path != cache.path and other.get("q1") is None
    fresh = ItemCache(tmp_path, "demo", config, fresh=True)
    assert fresh.get("q1") is None and not fresh.path.exists()


async def test_a_scoped_retriever_sees_only_its_documents() -> None:
    inner = MemoryRetriever(
        [chunk("a", "A", "alpha words"), chunk("b", "B", "beta words"), chunk("c", "C", "words")]
    )
    scoped = ScopedRetriever(inner, ["a", "b"])
    assert [d.id for d in await scoped.documents()] == ["a", "b"]
    hits = await scoped.search("words", k=5)
    assert {h.chunk.document_id for h in hits} == {"a", "b"}
    narrowed = await scoped.search("words", filters=SearchFilter(document_ids=["b", "c"]))
    assert [h.chunk.document_id for h in narrowed] == ["b"]
    assert await scoped.search("words", filters=SearchFilter(document_ids=["c"])) == []


def test_results_are_appended_to_benchmarks_with_their_provenance(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nearlier results\n")
    table = markdown_table(
        ["system", "F1", "note"], [["pipeline", 0.51234, None], ["x|y", 1, "ok"]]
    )
    assert table == [
        "| system | F1 | note |",
        "|---|---|---|",
        "| pipeline | 0.512 | - |",
        "| x/y | 1 | ok |",
    ]
    append_benchmarks(
        "Demo eval",
        table,
        model="local:qwen2.5-coder-1.5b",
        data="demo data",
        command="python -m evals.demo --limit 3",
        notes=["a note"],
        seconds=90,
        path=path,
    )
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\nearlier results\n")
    assert "## Demo eval (" in text
    assert "- model: `local:qwen2.5-coder-1.5b`" in text
    assert "- command: `python -m evals.demo --limit 3`" in text
    assert "- wall time: 1.5 min" in text
    assert "| pipeline | 0.512 | - |" in text and text.rstrip().endswith("- a note")
