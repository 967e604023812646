"""Built-in citation checks catch fabricated citations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maestro_lite.budget import Budget
from maestro_lite.documents import Chunk
from maestro_lite.models import ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.result import Citation
from maestro_lite.validator import check_citations

from .conftest import V1, MemoryRetriever, make_chunk
from .test_orchestrator import answer_notice, judge_mentions, notice_plan, routed

CHUNK = make_chunk("v1", "Agreement 2023", V1)


def _citation(quote: str, chunk_id: str = "v1:0") -> Citation:
    start = V1.find(quote) if quote in V1 else 30
    return Citation(
        evidence_id="c1.s2",
        chunk_id=chunk_id,
        document_id="v1",
        title="A",
        path="v1.txt",
        page=1,
        start=start,
        end=start + len(quote),
        quote=quote,
    )


def test_a_true_quote_passes() -> None:
    quote = "Either party may terminate this Agreement on 90 days written notice."
    assert check_citations([_citation(quote)], retrieved={"v1:0"}, sources={"v1:0": CHUNK}) == []


def test_a_quote_that_is_not_in_the_source_is_caught() -> None:
    fake = _citation("Either party may terminate this Agreement on 30 days written notice.")
    problems = check_citations([fake], retrieved={"v1:0"}, sources={"v1:0": CHUNK})
    assert len(problems) == 1 and "is not the source text" in problems[0]


def test_a_citation_of_a_chunk_never_retrieved_is_caught() -> None:
    quote = "This Agreement is governed by the laws of New York."
    problems = check_citations(
        [_citation(quote, chunk_id="other:3")], retrieved={"v1:0"}, sources={"v1:0": CHUNK}
    )
    assert "never retrieved" in problems[0]


def test_whitespace_differences_are_not_fabrication() -> None:
    spaced = CHUNK.model_copy(update={"text": CHUNK.text.replace(" 90 days", "\n90  days")})
    cit = _citation("Either party may terminate this Agreement on 90 days written notice.")
    start = spaced.text.find("Either")
    end = spaced.text.find("notice.") + len("notice.")
    cit = cit.model_copy(update={"start": start, "end": end})
    assert check_citations([cit], retrieved={"v1:0"}, sources={"v1:0": spaced}) == []


async def test_an_id_the_model_was_never_shown_is_rejected_and_reasked(
    contracts: MemoryRetriever,
) -> None:
    fabricated = 0

    def step(call: ModelCall) -> dict[str, Any]:
        nonlocal fabricated
        if fabricated == 0:
            fabricated += 1
            return {"answer": "90 days", "claims": [{"text": "x", "evidence": ["c7.s1"]}]}
        return answer_notice(call)

    result = await Maestro(routed(notice_plan, step, judge_mentions()), concurrency=1).run(
        "notice?", corpus=contracts
    )
    first = result.steps["s1"]
    assert [a.outcome for a in first.attempts] == ["invalid", "ok"]
    # The re-ask told the model which ids exist.
    error = first.attempts[0].error or ""
    assert "claims.0.evidence.0: Input should be" in error and "'c1.s1'" in error
    assert all(c.chunk_id in {"v1:0", "v2:0"} for c in result.citations)
    assert result.status == "passed"


class ChangedSource(MemoryRetriever):
    """The store's copy differs from what retrieval returned (re-ingested mid-run)."""

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        return [
            c.model_copy(update={"text": c.text.replace("days", "weeks")})
            for c in await super().get_chunks(ids)
        ]


async def test_a_citation_that_no_longer_matches_the_store_fails_the_run() -> None:
    retriever = ChangedSource(list((await _contracts()).chunks))
    result = await Maestro(routed(notice_plan, answer_notice, judge_mentions())).run(
        "notice?", corpus=retriever, budget=Budget(max_rounds=1)
    )
    failed = {r.id: r for r in result.requirements if not r.passed}
    assert "s1.citations" in failed
    assert "is not the source text" in failed["s1.citations"].reason
    assert result.status == "unmet"


async def _contracts() -> MemoryRetriever:
    from .conftest import V2

    return MemoryRetriever([CHUNK, make_chunk("v2", "Agreement 2025", V2)])
