"""Maestro over a real corpus (Chroma + BM25), opened by name through Corpora."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maestro_lite import CorpusNotFound, Maestro, Settings
from maestro_lite.corpora import Corpora
from maestro_lite.corpus import Corpus
from maestro_lite.models import ModelCall
from maestro_lite.testing import HashingEmbedder

from .conftest import V1, V2, cite, step_of
from .test_orchestrator import judge_mentions, notice_plan, routed


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "agreement_2023.txt").write_text(V1)
    (tmp_path / "docs" / "agreement_2025.txt").write_text(V2)
    settings = Settings(home=tmp_path / "home")
    embedder = HashingEmbedder()
    corpus = await Corpus.open("contracts", settings=settings, embedder=embedder)
    report = await corpus.ingest([tmp_path / "docs"])
    assert len(report.ingested) == 2
    await corpus.close()
    corpora = Corpora(settings, embedder=embedder)
    yield corpora
    await corpora.aclose()


def answer(call: ModelCall) -> dict[str, Any]:
    step = step_of(call)
    if "2023" in step:
        return {"answer": "90 days", "claims": [{"text": "90", "evidence": cite(call, "90")}]}
    if "2025" in step:
        return {"answer": "60 days", "claims": [{"text": "60", "evidence": cite(call, "60")}]}
    return {
        "answer": "90 days became 60 days.",
        "claims": [{"text": "changed", "evidence": cite(call, "90") + cite(call, "60")}],
    }


async def test_a_named_corpus_is_searched_with_document_filters(store: Corpora) -> None:
    model = routed(notice_plan, answer, judge_mentions("90 days", "60 days"))
    result = await Maestro(model, corpora=store).run(
        "How did the notice period change?",
        corpus="contracts",
        requirements=["state both notice periods"],
    )
    assert result.status == "passed", result.requirements
    # The planner's D1/D2 handles became document filters: each step saw one document.
    titles = {
        s: {h.chunk.title for h in r.retrieved} for s, r in result.steps.items() if r.retrieved
    }
    assert titles["s1"] != titles["s2"] and all(len(t) == 1 for t in titles.values())
    assert {c.path.rsplit("/", 1)[-1] for c in result.citations} == {
        "agreement_2023.txt",
        "agreement_2025.txt",
    }
    sources = {c.path: Path(c.path).read_text() for c in result.citations}  # noqa: ASYNC240
    for c in result.citations:  # exact spans of the ingested files
        assert sources[c.path][c.start : c.end] == c.quote


async def test_an_unknown_corpus_name_is_a_clear_error(store: Corpora) -> None:
    with pytest.raises(CorpusNotFound, match="contracts"):
        await Maestro(routed(notice_plan, answer, judge_mentions()), corpora=store).run(
            "x", corpus="nope"
        )
