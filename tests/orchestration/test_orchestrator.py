"""The plan -> execute -> validate -> fix/replan loop, driven by deterministic models."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from pydantic import BaseModel, Field

from maestro_lite import ModelAPIError, RequirementsNotMet, UserError
from maestro_lite.budget import Budget
from maestro_lite.documents import Chunk
from maestro_lite.events import (
    FixStarted,
    PlanCreated,
    PlanRejected,
    Replanned,
    RunFinished,
    StepSkipped,
)
from maestro_lite.models import ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.plan import Plan, Step
from maestro_lite.requirements import Requirement
from maestro_lite.retrieval import SearchFilter
from maestro_lite.testing import FunctionModel

from .conftest import MemoryRetriever, cite, step_of

Handler = Callable[[ModelCall], Any]


_BY_SCHEMA = {"PlanDraft": "plan", "Verdicts": "judge"}


def routed(plan: Handler, step: Handler, judge: Handler) -> FunctionModel:
    """One model that plans, answers steps and judges, by the purpose of each call (``plan``,
    ``step:<id>``, ``judge`` or ``judge:<id>``, as the run records its attempts). A call
    that came over HTTP (``responder_from``) carries no purpose: its schema tells."""

    def route(call: ModelCall) -> Any:
        kind = _BY_SCHEMA.get(call.schema_title or "", "step")
        if call.purpose is not None:
            kind = call.purpose.partition(":")[0]
        match kind:
            case "plan":
                return plan(call)
            case "step":
                return step(call)
            case "judge":
                return judge(call)
            case _:
                pytest.fail(f"a call for an unknown purpose: {call.purpose!r}")

    return FunctionModel(route, name="routed")


def notice_plan(call: ModelCall) -> dict[str, Any]:
    return {
        "rationale": "Read each version's notice clause, then compare.",
        "steps": [
            {
                "id": "s1",
                "kind": "answer",
                "instruction": "Notice period in the 2023 version",
                "depends_on": [],
                "queries": ["terminate notice"],
                "documents": ["D1"],
            },
            {
                "id": "s2",
                "kind": "answer",
                "instruction": "Notice period in the 2025 version",
                "depends_on": [],
                "queries": ["terminate notice"],
                "documents": ["D2"],
            },
            {
                "id": "s3",
                "kind": "synthesize",
                "instruction": "Compare the notice periods",
                "depends_on": ["s1", "s2"],
                "queries": [],
                "documents": [],
            },
        ],
    }


def answer_notice(call: ModelCall, *, vague_synthesis: bool = False) -> dict[str, Any]:
    step = step_of(call)
    if "2023" in step:
        return {
            "answer": "90 days.",
            "claims": [{"text": "90 days notice", "evidence": cite(call, "90 days")}],
        }
    if "2025" in step:
        return {
            "answer": "60 days.",
            "claims": [{"text": "60 days notice", "evidence": cite(call, "60 days")}],
        }
    if vague_synthesis:
        return {
            "answer": "The notice period changed.",
            "claims": [{"text": "It changed", "evidence": cite(call, "days")[:1]}],
        }
    return {
        "answer": "Notice fell from 90 days (2023) to 60 days (2025).",
        "claims": [
            {"text": "2023: 90 days", "evidence": cite(call, "90 days")},
            {"text": "2025: 60 days", "evidence": cite(call, "60 days")},
        ],
    }


def judge_mentions(*needles: str) -> Handler:
    """A judge that passes r1 when the output mentions every needle."""

    def judge(call: ModelCall) -> dict[str, Any]:
        output = call.last_user.split("Output:\n", 1)[1].split("\n\nEvidence", 1)[0]
        ok = all(n in output for n in needles)
        return {"r1": {"reason": "checked the figures", "verdict": "met" if ok else "not met"}}

    return judge


async def test_a_failing_requirement_is_fixed_and_then_passes(
    contracts: MemoryRetriever,
) -> None:
    synth_calls = 0

    def step(call: ModelCall) -> dict[str, Any]:
        nonlocal synth_calls
        if "Compare" in step_of(call):
            synth_calls += 1
        return answer_notice(call, vague_synthesis=synth_calls == 1)

    model = routed(notice_plan, step, judge_mentions("90 days", "60 days"))
    result = await Maestro(model).run(
        "How did the notice period change?",
        corpus=contracts,
        requirements=["state both notice periods"],
    )
    assert result.status == "passed", result.requirements
    assert "90 days" in result.output and "60 days" in result.output
    assert [r.decision.action for r in result.rounds] == ["fix", "finish"]
    assert result.rounds[0].decision.step_ids == ["s3"]
    assert "state both notice periods" in result.rounds[0].decision.reason
    # Each call carries its purpose, as the run records its attempts.
    purposes = [c.purpose for c in model.calls]
    assert purposes[0] == "plan" and purposes.count("plan") == 1
    assert sorted(p for p in purposes if p and p.startswith("step:")) == [
        "step:s1",
        "step:s2",
        "step:s3",
        "step:s3",
    ]
    assert {p for p in purposes if p and p.startswith("judge")} <= {"judge", "judge:s3"}
    assert all(c.step_id == (c.purpose or "")[5:] for c in model.calls if c.step_id)
    # Only the final step was re-run, with the failure as feedback.
    step_calls = [c for c in model.calls if c.schema_title == "StepAnswer"]
    assert len(step_calls) == 4
    assert "failed these checks" in step_calls[-1].last_user
    assert "not met" in step_calls[-1].last_user
    # The failed answer is quoted, after the evidence, and the re-run samples a little.
    fix_prompt = step_calls[-1].last_user
    assert 'Your previous answer was: "The notice period changed."' in fix_prompt
    assert fix_prompt.index("Evidence (cite by id)") < fix_prompt.index("previous answer")
    assert step_calls[-1].settings.temperature == 0.4
    assert step_calls[0].settings.temperature is None
    assert any(isinstance(e, FixStarted) for e in result.events)
    # Citations are exact spans of the sources.
    quotes = {c.quote for c in result.citations}
    assert "Either party may terminate this Agreement on 90 days written notice." in quotes
    assert all(r.passed for r in result.requirements)
    assert result.usage.requests == len(model.calls)


async def test_when_fixing_is_not_enough_the_planner_revises_the_plan(
    contracts: MemoryRetriever,
) -> None:
    plans = 0

    def plan(call: ModelCall) -> dict[str, Any]:
        nonlocal plans
        plans += 1
        if plans == 1:
            return notice_plan(call)
        assert "A previous plan ran" in call.last_user  # the planner sees the failures
        assert "s1 (Notice period in the 2023 version): 90 days." in call.last_user
        return {
            "rationale": "Add governing law.",
            "steps": [
                {
                    "id": "s4",
                    "kind": "answer",
                    "instruction": "Governing law of the 2023 version",
                    "depends_on": [],
                    "queries": ["governed laws"],
                    "documents": ["D1"],
                },
                {
                    "id": "s5",
                    "kind": "answer",
                    "instruction": "Governing law of the 2025 version",
                    "depends_on": [],
                    "queries": ["governed laws"],
                    "documents": ["D2"],
                },
                {
                    "id": "s6",
                    "kind": "synthesize",
                    "instruction": "Summarise notice and law",
                    "depends_on": ["s1", "s2", "s4", "s5"],
                    "queries": [],
                    "documents": [],
                },
            ],
        }

    def step(call: ModelCall) -> dict[str, Any]:
        instruction = step_of(call)
        if "Governing law" in instruction:
            needle = "New York" if "2023" in instruction else "Delaware"
            return {"answer": needle, "claims": [{"text": needle, "evidence": cite(call, needle)}]}
        if "Summarise" in instruction:
            return {
                "answer": "Notice 90 -> 60 days; law New York -> Delaware.",
                "claims": [
                    {
                        "text": "notice shortened",
                        "evidence": cite(call, "90 days") + cite(call, "60 days"),
                    },
                    {
                        "text": "law changed",
                        "evidence": cite(call, "New York") + cite(call, "Delaware"),
                    },
                ],
            }
        return answer_notice(call)

    model = routed(plan, step, judge_mentions("Delaware"))
    result = await Maestro(model).run(
        "Compare the two versions",
        corpus=contracts,
        requirements=["cover the governing law of both versions"],
        budget="medium",
    )
    assert result.status == "passed"
    assert [r.decision.action for r in result.rounds] == ["fix", "replan", "finish"]
    assert "planner revises it" in result.rounds[1].decision.reason
    assert result.rounds[1].decision.step_ids == ["s1", "s2"]  # kept, not re-run
    assert [s.id for s in result.plan.steps] == ["s1", "s2", "s4", "s5", "s6"]
    assert result.steps["s1"].round == 1 and result.steps["s4"].round == 3
    replanned = [e for e in result.events if isinstance(e, Replanned)]
    assert replanned and replanned[0].kept == ["s1", "s2"]
    sources = [e.source for e in result.events if isinstance(e, PlanCreated)]
    assert sources == ["planner", "replan"]


async def test_independent_steps_really_run_at_the_same_time(
    contracts: MemoryRetriever,
) -> None:
    in_flight = 0
    peak = 0
    both = asyncio.Event()

    async def step(call: ModelCall) -> dict[str, Any]:
        nonlocal in_flight, peak
        if "Compare" in step_of(call):
            return answer_notice(call)
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 2:
            both.set()
        # Each independent step waits until the other is in flight too: this only finishes
        # if they overlap.
        await asyncio.wait_for(both.wait(), timeout=10)
        in_flight -= 1
        return answer_notice(call)

    model = routed(notice_plan, step, judge_mentions())
    result = await Maestro(model, concurrency=4).run("notice?", corpus=contracts)
    assert peak == 2
    assert result.status == "passed"


async def test_concurrency_limit_is_respected(contracts: MemoryRetriever) -> None:
    in_flight = 0
    peak = 0

    async def step(call: ModelCall) -> dict[str, Any]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        return answer_notice(call)

    await Maestro(routed(notice_plan, step, judge_mentions()), concurrency=1).run(
        "notice?", corpus=contracts
    )
    assert peak == 1


async def test_an_invalid_plan_goes_back_to_the_planner_and_is_repaired(
    contracts: MemoryRetriever,
) -> None:
    drafts = iter(
        [
            # a cycle
            {
                "rationale": "r",
                "steps": [
                    {
                        "id": "s1",
                        "kind": "answer",
                        "instruction": "a",
                        "depends_on": ["s2"],
                        "queries": ["q"],
                        "documents": [],
                    },
                    {
                        "id": "s2",
                        "kind": "synthesize",
                        "instruction": "b",
                        "depends_on": ["s1"],
                        "queries": [],
                        "documents": [],
                    },
                ],
            },
            # an unknown document handle: fails the schema (the enum) and is re-asked
            {
                "rationale": "r",
                "steps": [
                    {
                        "id": "s1",
                        "kind": "answer",
                        "instruction": "a",
                        "depends_on": [],
                        "queries": ["q"],
                        "documents": ["D9"],
                    }
                ],
            },
            # an unknown dependency
            {
                "rationale": "r",
                "steps": [
                    {
                        "id": "s1",
                        "kind": "answer",
                        "instruction": "a",
                        "depends_on": ["s0"],
                        "queries": ["q"],
                        "documents": [],
                    }
                ],
            },
            notice_plan(None),  # type: ignore[arg-type]
        ]
    )
    model = routed(lambda call: next(drafts), answer_notice, judge_mentions())
    result = await Maestro(model).run("notice?", corpus=contracts)
    rejected = [e for e in result.events if isinstance(e, PlanRejected)]
    assert [e.attempt for e in rejected] == [1, 2]
    assert "form a dependency cycle" in rejected[0].problems
    assert "unknown step 's0'" in rejected[1].problems
    plan_calls = [c for c in model.calls if c.schema_title == "PlanDraft"]
    assert len(plan_calls) == 4
    assert "form a dependency cycle" in plan_calls[1].last_user
    assert "D9" in plan_calls[2].messages[-2].content  # the schema re-ask
    assert result.plan is not None and [s.id for s in result.plan.steps] == ["s1", "s2", "s3"]
    assert result.status == "passed"


async def test_budget_exhaustion_returns_the_best_result_with_unmet_marked(
    contracts: MemoryRetriever,
) -> None:
    model = routed(
        notice_plan,
        lambda c: answer_notice(c, vague_synthesis=True),
        judge_mentions("90 days", "60 days"),
    )
    # plan + 3 steps + judge = 5 calls: a fix round (synthesis + judge) does not fit in 6.
    budget = Budget(max_requests=6, max_rounds=3)
    result = await Maestro(model).run(
        "notice?", corpus=contracts, requirements=["state both notice periods"], budget=budget
    )
    assert result.status == "unmet"
    assert result.output == "The notice period changed."
    assert [r.id for r in result.unmet] == ["r1"]
    assert "not met" in result.unmet[0].reason
    assert result.rounds[-1].decision.action == "finish"
    assert "only 1 remain" in result.rounds[-1].decision.reason
    assert result.usage.requests == 5 <= budget.max_requests  # type: ignore[operator]

    with pytest.raises(RequirementsNotMet) as info:
        await Maestro(model).run(
            "notice?",
            corpus=contracts,
            requirements=["state both notice periods"],
            budget=budget.model_copy(update={"raise_on_unmet": True}),
        )
    assert info.value.result.unmet[0].id == "r1"


async def test_a_limit_hit_mid_run_stops_calls_and_marks_the_rest(
    contracts: MemoryRetriever,
) -> None:
    model = routed(notice_plan, answer_notice, judge_mentions("90 days"))
    result = await Maestro(model, concurrency=1).run(
        "notice?",
        corpus=contracts,
        requirements=["mention 90 days"],
        budget=Budget(max_requests=3, max_rounds=3),
    )
    assert len(model.calls) == 3  # the planner and two steps; never a fourth call
    assert result.budget_exhausted == "max_requests=3"
    assert result.steps["s3"].status in ("failed", "skipped")
    assert result.status == "failed"
    finished = [e for e in result.events if isinstance(e, RunFinished)]
    assert finished and finished[0].status == "failed"


OLD_NOTICE = Step(
    id="old",
    instruction="Notice period in the 2023 version",
    queries=["notice"],
    filters=SearchFilter(document_ids=["v1"]),
)
"""A step that retrieves from the 2023 version only."""


async def test_a_declared_plan_skips_the_planner_and_failures_do_not_propagate(
    contracts: MemoryRetriever,
) -> None:
    def step(call: ModelCall) -> Any:
        if "2025" in step_of(call):
            raise ModelAPIError("bad request", model="routed", status_code=400)
        return answer_notice(call)

    plan = Plan(
        steps=[
            OLD_NOTICE,
            Step(
                id="new",
                instruction="Notice period in the 2025 version",
                queries=["notice"],
                filters=SearchFilter(document_ids=["v2"]),
            ),
            Step(id="both", kind="synthesize", instruction="Compare", depends_on=["old", "new"]),
        ]
    )
    model = routed(lambda c: pytest.fail("the planner must not run"), step, judge_mentions())
    result = await Maestro(model).run(
        "notice?", corpus=contracts, plan=plan, budget=Budget(max_rounds=1)
    )
    assert result.steps["old"].status == "done"
    assert result.steps["new"].status == "failed"
    assert "HTTP" in (result.steps["new"].error or "") or "bad request" in (
        result.steps["new"].error or ""
    )
    assert result.steps["both"].status == "skipped"
    skipped = [e for e in result.events if isinstance(e, StepSkipped)]
    assert "depends on new" in skipped[0].reason
    assert result.status == "failed"
    assert not any("Compare" in step_of(c) for c in model.calls)


class CountingRetriever(MemoryRetriever):
    """Records every chunk read back from the store by id."""

    def __init__(self, retriever: MemoryRetriever) -> None:
        super().__init__(retriever.chunks)
        self.reads: list[str] = []

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        self.reads += ids
        return await super().get_chunks(ids)


async def test_a_chain_of_steps_reads_a_cited_chunk_from_the_store_once(
    contracts: MemoryRetriever,
) -> None:
    corpus = CountingRetriever(contracts)
    plan = Plan(
        steps=[
            OLD_NOTICE,
            Step(id="restate", instruction="Restate the 2023 notice", depends_on=["old"]),
            Step(id="again", instruction="The 2023 notice once more", depends_on=["restate"]),
        ]
    )
    model = routed(
        lambda c: pytest.fail("the planner must not run"), answer_notice, judge_mentions()
    )
    result = await Maestro(model).run(
        "notice?", corpus=corpus, plan=plan, budget=Budget(max_rounds=1)
    )
    assert result.status == "passed", [r for r in result.requirements if not r.passed]
    # Each later step was offered the first step's cited sentence again, and cited it.
    assert all(result.steps[s].citations[0].chunk_id == "v1:0" for s in ("restate", "again"))
    # The validator reads the cited chunk back once; the steps never needed to.
    assert corpus.reads == ["v1:0"]


async def test_a_declared_plan_naming_an_unknown_document_is_refused(
    contracts: MemoryRetriever,
) -> None:
    from maestro_lite import PlanError

    plan = Plan(
        steps=[
            Step(
                id="a", instruction="x", queries=["q"], filters=SearchFilter(document_ids=["nope"])
            )
        ]
    )
    with pytest.raises(PlanError, match="unknown document"):
        await Maestro(routed(notice_plan, answer_notice, judge_mentions())).run(
            "x", corpus=contracts, plan=plan
        )


class NoticeTerms(BaseModel):
    old_notice_days: int | None = Field(description="Notice period of the 2023 version")
    new_notice_days: int | None = Field(description="Notice period of the 2025 version")
    governing_law: str | None = None


def answer_terms(call: ModelCall) -> dict[str, Any]:
    """Steps answered as :func:`answer_notice`; a final step typed as NoticeTerms with each
    field cited, the governing law missing with its reason."""
    if call.schema_title == "ExtractedNoticeTerms":
        return {
            "old_notice_days": {"value": 90, "evidence": cite(call, "90 days")},
            "new_notice_days": {"value": 60, "evidence": cite(call, "60 days")},
            "governing_law": {"value": None, "missing_reason": "not in the evidence"},
        }
    return answer_notice(call)


async def test_a_typed_output_cites_each_field_and_explains_missing_ones(
    contracts: MemoryRetriever,
) -> None:
    model = routed(notice_plan, answer_terms, judge_mentions())
    result = await Maestro(model).run("notice terms", corpus=contracts, output_type=NoticeTerms)
    assert result.output == NoticeTerms(old_notice_days=90, new_notice_days=60)
    final = result.steps["s3"]
    assert final.missing == {"governing_law": "not in the evidence"}
    assert {c.text for c in result.claims} == {"old_notice_days: 90", "new_notice_days: 60"}
    assert all(c.citations for c in result.claims)
    assert any(r.id == "output-schema" and r.passed for r in result.requirements)


async def test_the_judge_sees_output_and_evidence_but_not_the_plan(
    contracts: MemoryRetriever,
) -> None:
    judge_prompts: list[str] = []

    def judge(call: ModelCall) -> dict[str, Any]:
        judge_prompts.append(call.prompt)
        return {
            "r1": {"reason": "fine", "verdict": "met"},
            "r2": {"reason": "partly", "verdict": "partly met"},
        }

    result = await Maestro(routed(notice_plan, answer_notice, judge)).run(
        "notice?",
        corpus=contracts,
        requirements=[
            "state both periods",
            Requirement.judge("be polite", threshold=0.3),
            "answer in under 5 words",
        ],
        budget=Budget(max_rounds=1),
    )
    prompt = judge_prompts[0]
    assert "Notice fell from 90 days" in prompt  # the output
    assert "Either party may terminate this Agreement on 90 days" in prompt  # its evidence
    assert "Read each version's notice clause" not in prompt  # the planner's rationale
    assert "under 5 words" not in prompt  # word limits are checked in Python, not judged
    by_id = {r.id: r for r in result.requirements}
    assert by_id["r1"].passed and by_id["r1"].score == 1.0
    assert by_id["r2"].passed and by_id["r2"].score == 0.4
    assert by_id["r3"].kind == "check" and not by_id["r3"].passed
    assert re.search(r"\d+ words \(limit 5\)", by_id["r3"].reason)
    assert result.status == "unmet"


def test_run_sync_refuses_a_running_loop(contracts: MemoryRetriever) -> None:
    maestro = Maestro(routed(notice_plan, answer_notice, judge_mentions()))
    result = maestro.run_sync("notice?", corpus=contracts)
    assert result.status == "passed"

    async def inside() -> None:
        with pytest.raises(UserError, match=r"await maestro.run"):
            maestro.run_sync("notice?", corpus=contracts)

    asyncio.run(inside())


async def test_events_reach_subscribers_and_the_result(contracts: MemoryRetriever) -> None:
    seen: list[str] = []

    async def on_event(event: Any) -> None:
        seen.append(event.kind)

    result = await Maestro(
        routed(notice_plan, answer_notice, judge_mentions()), on_event=on_event
    ).run("notice?", corpus=contracts)
    assert seen == [e.kind for e in result.events]
    assert seen[0] == "run_started" and seen[-1] == "run_finished"
    for kind in (
        "plan_created",
        "step_started",
        "step_finished",
        "model_attempted",
        "validation_finished",
    ):
        assert kind in seen


async def test_misattributed_and_uncited_figures_are_caught_per_claim(
    contracts: MemoryRetriever,
) -> None:
    """What the 1.5B model did on the sample contracts: every figure somewhere in the step's
    evidence, but "60 days" attributed to the 2023 agreement while citing the 2025 one."""

    def step(call: ModelCall) -> dict[str, Any]:
        if "Compare" in step_of(call):
            return {
                "answer": "Notice changed from 60 days to 90 days.",
                "claims": [
                    {
                        "text": "The 2023 agreement gives 60 days.",
                        "evidence": cite(call, "60 days"),
                    },
                    {
                        "text": "The 2025 agreement gives 90 days.",
                        "evidence": cite(call, "60 days"),
                    },
                ],
            }
        return answer_notice(call)

    result = await Maestro(routed(notice_plan, step, judge_mentions())).run(
        "notice?", corpus=contracts, budget=Budget(max_rounds=1)
    )
    checks = {r.id: r for r in result.requirements}
    assert not checks["s3.attribution"].passed
    assert "names 2023 but cites no 2023 document" in checks["s3.attribution"].reason
    assert not checks["s3.figures"].passed  # "90 days" is stated but its claim cites 60
    assert "90" in checks["s3.figures"].reason
    assert checks["s1.attribution"].passed and checks["s1.figures"].passed
    assert result.status == "unmet"
