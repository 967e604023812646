"""The comparison pipeline: declared plan per document and aspect, aligned cited result."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from maestro_lite import Budget, DocumentInfo, Maestro, UserError
from maestro_lite.testing import ModelCall
from pipelines import Compare, Comparison, comparison_plan
from pipelines._budget import fit_budget

from ..orchestration.conftest import V1, V2
from .conftest import MemoryRetriever, chunk, cite, routed, step_of

ASPECTS = ["termination notice", "governing law"]


@pytest.fixture
def corpus() -> MemoryRetriever:
    return MemoryRetriever(
        [chunk("v1", "Agreement 2023", V1, page=3), chunk("v2", "Agreement 2025", V2, page=4)]
    )


def info(doc: str, title: str) -> DocumentInfo:
    return DocumentInfo(id=doc, title=title, path=f"/docs/{doc}.pdf", pages=4, chars=1, chunks=1)


def test_the_plan_reads_each_document_on_each_aspect_then_compares() -> None:
    docs = [info("v1", "Agreement 2023"), info("v2", "Agreement 2025")]
    plan = comparison_plan("How did it change?", docs, ASPECTS, k=2)

    assert [s.id for s in plan.steps] == ["d1.a1", "d2.a1", "a1", "d1.a2", "d2.a2", "a2", "summary"]
    reads = [s for s in plan.steps if s.kind == "answer"]
    assert [s.document_ids for s in reads] == [["v1"], ["v2"], ["v1"], ["v2"]]
    assert {s.k for s in reads} == {2}
    assert reads[0].queries == ["termination notice"]
    assert plan.step("a2").depends_on == ["d1.a2", "d2.a2"]
    assert plan.step("a2").kind == "compare" and not plan.step("a2").queries
    assert plan.final.id == "summary" and plan.final.depends_on == ["a1", "a2"]
    # One aspect: its comparison is the final step.
    single = comparison_plan("How did it change?", docs, ["governing law"])
    assert [s.id for s in single.steps] == ["d1.a1", "d2.a1", "a1"]
    assert single.final.id == "a1"
    with pytest.raises(UserError, match="at least one aspect"):
        comparison_plan("x", docs, [])
    with pytest.raises(UserError, match="at least two documents, got 1"):
        comparison_plan("x", docs[:1], ["governing law"])


def test_presets_are_raised_to_what_the_plan_needs() -> None:
    docs = [info(f"d{i}", f"Doc {i}") for i in range(4)]
    plan = comparison_plan("compare", docs, ["a", "b", "c"])  # 12 reads + 3 + 1 = 16 steps
    low = fit_budget("low", plan)
    assert low.max_requests is not None and low.max_requests >= 16
    assert low.max_rounds == 1 and low.max_steps >= 16
    medium = fit_budget("medium", plan, judged=True)
    assert medium.max_requests is not None and medium.max_requests >= 17 + 2 * 8
    explicit = Budget(max_requests=5)
    assert fit_budget(explicit, plan) is explicit


# What each comparison must state: both documents' values (checked in Python).
CHANGES = {
    "termination": "The two versions differ: 90 days before, 60 days now.",
    "law": "The two versions differ: New York law before, Delaware law now.",
}


def answer(call: ModelCall) -> dict[str, Any]:
    step = step_of(call)
    if step.startswith("What does"):
        needle = "days" if "termination" in step else "governed"
        return {
            "answer": "It states the term.",
            "claims": [{"text": f"The clause on {needle}.", "evidence": cite(call, needle)}],
        }
    if step.startswith("Compare"):
        needle = "days" if "termination" in step else "governed"
        return {
            "answer": CHANGES["termination" if "termination" in step else "law"],
            "claims": [{"text": "Both versions state it.", "evidence": cite(call, needle)}],
        }
    return {
        "answer": "Notice fell from 90 to 60 days and the governing law moved to Delaware.",
        "claims": [
            {"text": "Notice fell from 90 days.", "evidence": cite(call, "90 days")},
            {"text": "Notice fell to 60 days.", "evidence": cite(call, "60 days")},
            {"text": "Delaware law governs.", "evidence": cite(call, "Delaware")},
        ],
    }


async def test_the_comparison_is_aligned_and_every_position_cites_its_document(
    corpus: MemoryRetriever, tmp_path: Path
) -> None:
    model = routed(StepAnswer=answer)
    comparison = await Compare(Maestro(model)).run(
        "How did the agreement change?",
        corpus=corpus,
        documents=["v1.txt", "v2"],  # a file name and an id
        aspects=ASPECTS,
    )

    assert comparison.status == "passed", comparison.requirements
    assert comparison.aspects_source == "user"
    assert [a.aspect for a in comparison.aspects] == ASPECTS
    for aspect in comparison.aspects:
        assert [p.document_id for p in aspect.positions] == ["v1", "v2"]
        for position in aspect.positions:
            cited = {c.document_id for cl in position.claims for c in cl.citations}
            assert cited == {position.document_id}
        assert aspect.changes.startswith("The two versions differ") and aspect.claims
    law = comparison.aspects[1].positions[1].claims[0].citations[0]
    assert (law.page, law.quote) == (4, "This Agreement is governed by the laws of Delaware.")
    assert "Delaware" in comparison.summary and comparison.summary_claims
    # Each per-document step searched only its own document.
    assert corpus.queries.count("termination notice") == 2
    assert comparison.usage.requests == 7

    markdown = comparison.to_markdown()
    assert "| document | what it says |" in markdown
    assert "## governing law" in markdown
    assert re.search(r"\| Agreement 2025 \| The clause on governed\. \[\d+\] \|", markdown)
    assert "**What changed:** The two versions differ: 90 days before" in markdown
    assert 'Agreement 2025, page 4: "This Agreement is governed by the laws of Delaware."' in (
        markdown
    )
    md, data = comparison.write(tmp_path)
    assert Comparison.model_validate_json(data.read_text()) == comparison
    assert md.read_text() == markdown


async def test_the_model_proposes_aspects_when_none_are_given(corpus: MemoryRetriever) -> None:
    def aspects(call: ModelCall) -> dict[str, Any]:
        assert "Agreement 2023" in call.last_user and "Agreement 2025" in call.last_user
        return {"aspects": ["governing law", " governing law ", "termination notice"]}

    model = routed(_Aspects=aspects, StepAnswer=answer)
    comparison = await Compare(Maestro(model)).run(
        "How did the agreement change?", corpus=corpus, documents=["v1", "v2"]
    )

    assert comparison.aspects_source == "model"
    assert [a.aspect for a in comparison.aspects] == ["governing law", "termination notice"]
    assert comparison.usage.requests == 1 + 7  # the proposal is counted


async def test_unknown_documents_are_a_clear_error(corpus: MemoryRetriever) -> None:
    with pytest.raises(UserError, match="no document in the corpus match 'v9'"):
        await Compare(Maestro(routed())).run(
            "x", corpus=corpus, documents=["v1", "v9"], aspects=["law"]
        )


async def test_the_aspect_proposal_counts_against_the_runs_budget(
    corpus: MemoryRetriever,
) -> None:
    model = routed(
        _Aspects=lambda call: {"aspects": ["termination notice", "governing law"]},
        StepAnswer=answer,
    )
    # The proposal and the seven steps need eight calls; the budget allows seven.
    comparison = await Compare(Maestro(model), budget=Budget(max_rounds=1, max_requests=7)).run(
        "How did the agreement change?", corpus=corpus, documents=["v1", "v2"]
    )
    assert len(model.calls) == comparison.usage.requests == 7
    assert comparison.budget_exhausted == "max_requests=7"
    assert comparison.summary == ""  # the last step found no call left


async def test_one_document_is_not_a_comparison(corpus: MemoryRetriever) -> None:
    model = routed()
    with pytest.raises(UserError, match="at least two documents, got 1"):
        await Compare(Maestro(model)).run("x", corpus=corpus, documents=["v1"], aspects=["law"])
    assert model.calls == []


async def test_a_comparison_is_told_what_changed_and_held_to_both_values(
    corpus: MemoryRetriever,
) -> None:
    prompts: list[str] = []

    def lazy(call: ModelCall) -> dict[str, Any]:
        if step_of(call).startswith("Compare"):
            prompts.append(call.last_user)
            return {  # the small model's habit: one side only
                "answer": "The notice period is now 60 days.",
                "claims": [{"text": "60 days.", "evidence": cite(call, "60 days")}],
            }
        return answer(call)

    comparison = await Compare(Maestro(routed(StepAnswer=lazy))).run(
        "How did the agreement change?",
        corpus=corpus,
        documents=["v1", "v2"],
        aspects=["termination notice"],
    )

    # Told before answering: the aligned clause, each side by id and value.
    assert (
        "changed: Agreement 2023 [e1] says '90 days' where Agreement 2025 [e2] says '60 days'"
        in (prompts[0])
    )
    failed = {r.id: r.reason for r in comparison.requirements if not r.passed}
    assert list(failed) == ["a1.changes"]
    assert "does not state 90 days (Agreement 2023 [e1])" in failed["a1.changes"]
    assert comparison.status == "unmet"
