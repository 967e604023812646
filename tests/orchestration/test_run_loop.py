"""What the round loop returns and records: the best round, unjudged requirements, plans it
refuses before recording a run, and reports with many requirements."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from maestro_lite import ModelAPIError, PlanError
from maestro_lite.budget import Budget
from maestro_lite.models import ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.plan import Plan, Step
from maestro_lite.requirements import CheckContext, CheckOutcome, Requirement
from maestro_lite.retrieval import SearchFilter
from maestro_lite.runs import SQLiteRunStore

from ..runs.conftest import REVISED_PLAN
from .conftest import MemoryRetriever, cite, step_of
from .test_orchestrator import (
    NoticeTerms,
    answer_notice,
    answer_terms,
    judge_mentions,
    notice_plan,
    routed,
)


async def test_a_replanned_round_without_output_does_not_beat_an_earlier_answer(
    contracts: MemoryRetriever,
) -> None:
    """Round 3 (replanned) has more steps, so more checks pass in number, but its synthesis
    fails: the run returns round 1's real answer, not an empty one."""

    def plan(call: ModelCall) -> Any:
        return REVISED_PLAN if "A previous plan ran" in call.last_user else notice_plan(call)

    def step(call: ModelCall) -> Any:
        instruction = step_of(call)
        if "Governing law" in instruction:
            needle = "New York" if "2023" in instruction else "Delaware"
            return {"answer": needle, "claims": [{"text": needle, "evidence": cite(call, needle)}]}
        if "Summarise" in instruction:
            raise ModelAPIError("bad request", model="routed", status_code=400)
        return answer_notice(call, vague_synthesis=True)

    model = routed(plan, step, judge_mentions("90 days", "60 days"))
    result = await Maestro(model).run(
        "notice?", corpus=contracts, requirements=["state both notice periods"]
    )
    assert [r.decision.action for r in result.rounds] == ["fix", "replan", "finish"]
    last = result.rounds[-1].report.results
    first = result.rounds[0].report.results
    assert sum(r.passed for r in last) > sum(r.passed for r in first)  # the old trap
    assert result.status == "unmet"
    assert result.output == "The notice period changed."
    assert result.plan == result.rounds[0].plan
    assert [r.id for r in result.unmet] == ["r1"]


def judge_all(verdict: str = "met") -> Any:
    """A judge that gives ``verdict`` to every requirement it is asked about."""

    def judge(call: ModelCall) -> dict[str, Any]:
        listing = call.last_user.split("Requirements:\n", 1)[1]
        ids = [line.split(":", 1)[0] for line in listing.splitlines() if line.strip()]
        return {i: {"reason": f"checked {i}", "verdict": verdict} for i in ids}

    return judge


async def test_step_requirements_left_unjudged_by_the_budget_are_reported_unmet(
    contracts: MemoryRetriever,
) -> None:
    model = routed(notice_plan, answer_notice, judge_all())
    # plan + 3 steps + the final judgement + the judgement of s1 = 6 calls; s2, s3 unjudged.
    result = await Maestro(model, concurrency=1).run(
        "notice?",
        corpus=contracts,
        requirements=[
            "state both notice periods",
            Requirement.judge("cite the agreement it is about", scope="steps"),
        ],
        budget=Budget(max_requests=6, max_rounds=1),
    )
    assert len(model.calls) == 6 and result.budget_exhausted == "max_requests=6"
    by_id = {r.id: r for r in result.requirements}
    assert by_id["r1"].passed and by_id["s1.r2"].passed
    for unjudged in ("s2.r2", "s3.r2"):
        assert not by_id[unjudged].passed and by_id[unjudged].score == 0.0
        assert by_id[unjudged].reason == "not judged: the budget is spent"
        assert by_id[unjudged].step_id == unjudged.split(".")[0]
    assert result.status == "unmet"


async def test_an_invalid_declared_plan_is_refused_before_the_run_is_recorded(
    contracts: MemoryRetriever,
) -> None:
    store = SQLiteRunStore()
    plan = Plan(
        steps=[
            Step(id="a", instruction="x", queries=["q"], filters=SearchFilter(document_ids=["v1"])),
            Step(id="b", instruction="y", queries=["q"], filters=SearchFilter(document_ids=["no"])),
            Step(
                id="c",
                instruction="z",
                queries=["q"],
                filters=SearchFilter(document_ids=["v2"], page_from=2, page_to=4),
            ),
            Step(id="d", kind="synthesize", instruction="all", depends_on=["a", "b", "c"]),
        ]
    )
    model = routed(notice_plan, answer_notice, judge_all())
    maestro = Maestro(model, run_store=store)
    with pytest.raises(PlanError) as info:
        await maestro.run("x", corpus=contracts, plan=plan, budget=Budget(max_steps=3))
    problems = info.value.problems
    assert any("the plan has 4 steps; the budget allows 3" in p for p in problems)
    assert any("step 'b' filters on unknown document(s) ['no']" in p for p in problems)
    assert any("reads pages 2-4 of 'Agreement 2025', which has 1 page(s)" in p for p in problems)
    assert "Budget(max_steps=...)" in (info.value.hint or "")
    assert store.list() == [] and model.calls == []  # nothing recorded, nothing paid

    # A valid plan is recorded and runs.
    only = Step(id="a", instruction="Notice period in the 2023 version", queries=["notice"])
    result = await maestro.run("x", corpus=contracts, plan=Plan(steps=[only]))
    assert result.status == "passed"
    assert [r.run_id for r in store.list()] == [result.run_id]


class StrictTerms(BaseModel):
    old_notice_days: int
    new_notice_days: int
    governing_law: str  # the evidence the final step gets does not state it


async def test_a_dozen_requirements_of_every_kind_are_each_reported_with_score_and_reason(
    contracts: MemoryRetriever,
) -> None:
    verdicts = {"r1": "met", "r2": "met", "r3": "mostly met", "r4": "partly met", "r5": "not met"}
    judge_calls: list[str] = []

    def judge(call: ModelCall) -> dict[str, Any]:
        judge_calls.append(call.last_user)
        return {i: {"reason": f"{i} looked at", "verdict": v} for i, v in verdicts.items()}

    def mentions_both(ctx: CheckContext) -> bool:
        """the output has both notice periods"""
        return ctx.output.old_notice_days == 90 and ctx.output.new_notice_days == 60

    def cites_enough(ctx: CheckContext) -> CheckOutcome:
        return CheckOutcome(score=min(1.0, len(ctx.citations) / 4), reason="cited sentences")

    requirements: list[Any] = [
        "state both notice periods",  # r1..r5: judged, in one call
        "name the agreement each period comes from",
        "say which period is longer",
        Requirement.judge("be neutral in tone", threshold=0.4),
        "explain why the period changed",
        mentions_both,  # r6: a callable
        Requirement.check(cites_enough, "cite at least four sentences", threshold=0.5),
        Requirement.conforms_to(NoticeTerms),  # r8, r9: schemas
        Requirement.conforms_to(StrictTerms),
        "answer in under 120 words",  # r10, r11: length limits, checked exactly
        Requirement.max_words(3),
        Requirement.cite_every_claim(),  # r12
    ]
    model = routed(notice_plan, answer_terms, judge)
    result = await Maestro(model).run(
        "notice terms",
        corpus=contracts,
        requirements=requirements,
        output_type=NoticeTerms,
        budget=Budget(max_rounds=1),
    )
    reported = {r.id: r for r in result.requirements if r.kind != "builtin"}
    assert sorted(reported, key=lambda i: int(i[1:])) == [f"r{n}" for n in range(1, 13)]
    for r in reported.values():
        assert 0.0 <= r.score <= 1.0 and r.reason, r
    assert [reported[f"r{n}"].kind for n in range(1, 13)] == (
        ["judge"] * 5 + ["check", "check", "schema", "schema", "check", "check", "check"]
    )
    passed = {i for i, r in reported.items() if r.passed}
    assert passed == {"r1", "r2", "r3", "r4", "r6", "r7", "r8", "r10", "r11", "r12"}
    assert reported["r3"].score == 0.75 and reported["r4"].score == 0.4
    assert reported["r5"].reason == "not met: r5 looked at"
    assert "validation error" in reported["r9"].reason
    assert reported["r6"].reason == "the check returned True"
    # Length limits count the words of the output as text (here its JSON, one "word").
    assert reported["r11"].reason == "1 words (limit 3)"
    assert reported["r10"].reason == "1 words (limit 120)"
    assert len(judge_calls) == 1  # every judged requirement in one call, nothing else
    listing = judge_calls[0].split("Requirements:\n", 1)[1].splitlines()
    assert [line.split(":", 1)[0] for line in listing] == ["r1", "r2", "r3", "r4", "r5"]
    assert result.status == "unmet"
