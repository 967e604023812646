"""The research pipeline's hops mode: retrieval driven by the entity the previous hop found."""

from __future__ import annotations

from typing import Any

import pytest

from maestro_lite import Budget, Maestro, SearchHit, UserError, find_marked
from maestro_lite.testing import ModelCall
from pipelines import Research
from pipelines._hops import bridge_messages, clean_entity, hops_plan
from pipelines.jobs import ResearchJob

from .conftest import MemoryRetriever, all_met, chunk, cite, routed

QUESTION = "Which company makes the part that failed the thermal test?"
REPORT = "In the thermal test, the part that failed was the Zephyr."
# Found by the entity, not by the question's words.
SUPPLIERS = "Kovalent Electronics makes the Zephyr board X2 in Penang."
ENTITY = "Zephyr board X2"


@pytest.fixture
def corpus() -> MemoryRetriever:
    return MemoryRetriever(
        [chunk("report", "Thermal report", REPORT), chunk("suppliers", "Suppliers", SUPPLIERS)]
    )


def final_answer(call: ModelCall) -> dict[str, Any]:
    return {
        "answer": "Kovalent Electronics makes the failed Zephyr board.",
        "claims": [
            {"text": "The Zephyr failed.", "evidence": cite(call, "failed was the Zephyr")},
            {"text": "Kovalent makes it.", "evidence": cite(call, "Kovalent Electronics makes")},
        ],
    }


async def test_the_hop_entity_drives_the_answer_steps_search(corpus: MemoryRetriever) -> None:
    model = routed(Bridge=lambda call: {"entity": f' "{ENTITY}." '}, StepAnswer=final_answer)
    research = Research(Maestro(model), budget="low", k=1, sub_question_use="hops", requirements=[])
    report = await research.run(QUESTION, corpus=corpus)

    # The hop saw what the question found (the report), not the supplier profile.
    hop = model.calls[0]
    assert hop.schema_title == "Bridge"
    assert find_marked(hop.last_user, "evidence") == [f"[Thermal report]\n{REPORT}"]
    # The answer step searched with the question, then with the entity the hop named.
    assert corpus.queries == [QUESTION, QUESTION, ENTITY]
    answer = model.calls[1]
    assert "Penang" in answer.last_user and "failed was the Zephyr" in answer.last_user
    assert f"Leads from a first search, to check against the evidence: {ENTITY}." in (
        answer.last_user
    )
    assert [c.schema_title for c in model.calls] == ["Bridge", "StepAnswer"]
    assert report.status == "passed", report.requirements
    assert report.usage.requests == 2  # the hop is the run's call, counted in its usage
    assert [(f.step_id, f.answer) for f in report.findings] == [("hop1", ENTITY)]
    assert {c.document_id for c in report.citations} == {"report", "suppliers"}


async def test_hops_stop_when_no_new_entity_is_named(corpus: MemoryRetriever) -> None:
    named = iter([ENTITY, ENTITY.upper()])  # the second hop repeats the first, case aside
    model = routed(
        Bridge=lambda call: {"entity": next(named)},
        StepAnswer=final_answer,
        Verdicts=all_met,
    )
    research = Research(Maestro(model), budget="low", k=1, sub_question_use="hops", max_hops=3)
    report = await research.run(QUESTION, corpus=corpus)

    assert [c.schema_title for c in model.calls] == ["Bridge", "Bridge", "StepAnswer", "Verdicts"]
    # The second hop searched with the entity found and was told it was found.
    assert corpus.queries[1] == f"{QUESTION} {ENTITY}"
    assert f"Already found: {ENTITY}" in model.calls[1].last_user
    assert [f.step_id for f in report.findings] == ["hop1"]
    assert report.plan is not None and report.plan.steps[0].queries == [QUESTION, ENTITY]


async def test_no_entity_answers_from_the_question_alone(corpus: MemoryRetriever) -> None:
    model = routed(Bridge=lambda call: {"entity": "  "}, StepAnswer=final_answer)
    research = Research(Maestro(model), budget="low", sub_question_use="hops", requirements=[])
    report = await research.run(QUESTION, corpus=corpus)

    assert report.plan is not None
    assert report.plan.steps[0].queries == [QUESTION]
    assert report.plan.steps[0].instruction == QUESTION  # no leads to check
    assert report.findings == []


async def test_a_budget_without_room_skips_the_hop_and_says_so(corpus: MemoryRetriever) -> None:
    model = routed(StepAnswer=final_answer)
    research = Research(
        Maestro(model),
        budget=Budget(max_rounds=1, max_requests=1),
        sub_question_use="hops",
        requirements=[],
    )
    report = await research.run(QUESTION, corpus=corpus)

    assert [c.schema_title for c in model.calls] == ["StepAnswer"]
    assert report.notes == ["hop 1: skipped, the budget leaves no room for it"]


async def test_a_corpus_name_needs_a_store() -> None:
    research = Research(Maestro(routed()), sub_question_use="hops")
    with pytest.raises(UserError, match="no store"):
        await research.run(QUESTION, corpus="contracts")
    with pytest.raises(ValueError, match="max_hops"):
        Research(Maestro(routed()), max_hops=4)


def test_an_entity_becomes_a_short_query() -> None:
    assert clean_entity(' "Neil Peart."\n') == "Neil Peart"
    assert clean_entity("x" * 200) == "x" * 80
    assert clean_entity(" . ") == ""


def test_hop_evidence_is_marked_as_data_and_cut() -> None:
    long = chunk("long", "Long\nTitle", "word " * 2_000)
    hits = [
        SearchHit(chunk=c, score=1.0, rank=i)
        for i, c in enumerate([chunk("a", "A", REPORT), long], start=1)
    ]
    (system, user) = bridge_messages(QUESTION, hits, ["Zephyr"])
    assert "never instructions" in system.content
    assert "Already found: Zephyr" in user.content
    (block,) = find_marked(user.content, "evidence")
    assert block == f"[A]\n{REPORT}"  # the long chunk did not fit the hop's evidence
    _, alone = bridge_messages(QUESTION, hits[1:], [])
    (only,) = find_marked(alone.content, "evidence")
    assert only.startswith("[Long Title]\n") and len(only) <= 4_000


def test_the_answer_plan_names_leads_only_when_there_are_some() -> None:
    plan = hops_plan("Q?", ["A", "B", "A"], k=2, expected_output="short")
    (step,) = plan.steps
    assert step.queries == ["Q?", "A", "B"]
    assert (step.k, step.expected_output) == (2, "short")
    assert "Leads from a first search, to check against the evidence: A; B." in (step.instruction)


def test_a_research_job_can_ask_for_hops() -> None:
    job = ResearchJob(question="Q?", sub_question_use="hops")
    assert Research.from_job(Maestro(routed()), job).sub_question_use == "hops"
