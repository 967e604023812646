"""The planner: what its drafts can say (page ranges, expected outputs), and repairs that
need no model call."""

from __future__ import annotations

from typing import Any

from maestro_lite.events import PlanRejected
from maestro_lite.models import ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.plan import Step
from maestro_lite.planner import _rename_collisions, _with_final

from .conftest import V2, MemoryRetriever, make_chunk, step_of
from .test_orchestrator import answer_notice, judge_mentions, notice_plan, routed


def _s(sid: str, *deps: str) -> Step:
    return Step(id=sid, instruction=sid, depends_on=list(deps), queries=["q"])


def test_new_steps_reusing_a_kept_id_are_renamed_with_their_references() -> None:
    kept = {"s1": _s("s1")}
    new = [_s("s1"), _s("s2", "s1")]  # the model redefined s1 and means its own
    renamed = _rename_collisions(new, kept)
    assert [s.id for s in renamed] == ["s3", "s2"]
    assert renamed[1].depends_on == ["s3"]


def test_references_to_kept_steps_stay_when_there_is_no_collision() -> None:
    kept = {"s1": _s("s1")}
    new = [_s("s4", "s1")]
    assert _rename_collisions(new, kept) == new


def test_several_final_steps_get_a_synthesis() -> None:
    steps = _with_final([_s("a"), _s("b")])
    assert steps[-1].kind == "synthesize" and steps[-1].depends_on == ["a", "b"]


# A 2023 agreement of three pages: only page 2 has the notice clause.
LONG = [
    make_chunk("v1", "Agreement 2023", "Supply Agreement 2023. Definitions and parties.", 0, 1),
    make_chunk(
        "v1",
        "Agreement 2023",
        "Either party may terminate this Agreement on 90 days written notice.",
        1,
        2,
    ),
    make_chunk("v1", "Agreement 2023", "This Agreement is governed by the laws of New York.", 2, 3),
    make_chunk("v2", "Agreement 2025", V2),
]


async def test_a_planned_page_range_past_the_end_goes_back_and_is_repaired() -> None:
    drafts: list[str] = []

    def plan(call: ModelCall) -> dict[str, Any]:
        drafts.append(call.last_user)
        draft = notice_plan(call)
        first = draft["steps"][0]
        first["page_from"], first["page_to"] = (2, 9) if len(drafts) == 1 else (2, 3)
        first["expected_output"] = "the notice period in days"
        return draft

    prompts: dict[str, str] = {}

    def step(call: ModelCall) -> dict[str, Any]:
        prompts[step_of(call)] = call.last_user
        return answer_notice(call)

    retriever = MemoryRetriever(LONG)
    result = await Maestro(routed(plan, step, judge_mentions())).run("notice?", corpus=retriever)
    rejected = [e for e in result.events if isinstance(e, PlanRejected)]
    assert len(rejected) == 1 and len(drafts) == 2
    problem = "reads pages 2-9 of 'Agreement 2023', which has 3 page(s)"
    assert problem in rejected[0].problems and problem in drafts[1]  # sent back with why
    assert "D1: Agreement 2023 (3 page(s)" in drafts[0]  # the planner is told page counts

    assert result.plan is not None
    s1 = result.plan.step("s1")
    assert s1.filters is not None
    assert (s1.filters.document_ids, s1.filters.page_from, s1.filters.page_to) == (["v1"], 2, 3)
    assert s1.expected_output == "the notice period in days"
    # The step's model is told what to produce; retrieval kept to the pages asked for.
    assert "It must produce: the notice period in days" in prompts[s1.instruction]
    assert {h.chunk.page for h in result.steps["s1"].retrieved} == {2, 3}
    assert result.status == "passed"
