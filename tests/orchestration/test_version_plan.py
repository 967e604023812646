"""A task that names document versions by year gets its per-version plan without a planner
call: one step per version, filtered to it, then a comparison that is told what changed."""

from __future__ import annotations

from typing import Any

from maestro_lite.documents import DocumentInfo
from maestro_lite.events import PlanCreated
from maestro_lite.models import ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.version_plan import version_plan

from .conftest import MemoryRetriever, cite, step_of
from .test_orchestrator import judge_mentions, notice_plan, routed

QUESTION = "How did the termination notice period change between the 2023 and 2025 agreements?"


def _doc(doc: str, title: str, path: str) -> DocumentInfo:
    return DocumentInfo(id=doc, title=title, path=path, pages=3, chars=1, chunks=1)


LEASES = [
    _doc("a", "Office Lease", "/docs/office_lease_2019.pdf"),
    _doc("b", "Office Lease (renewed)", "/docs/office_lease_2024.pdf"),
]


def test_one_step_per_named_version_then_a_comparison() -> None:
    plan = version_plan("What happened to the security deposit from 2019 to 2024?", LEASES)
    assert plan is not None
    assert [(s.id, s.kind, s.document_ids) for s in plan.steps] == [
        ("v2019", "answer", ["a"]),
        ("v2024", "answer", ["b"]),
        ("compare", "compare", []),
    ]
    # The subject, without the years, the asking, or what every document is called.
    assert plan.steps[0].queries == ["security deposit"]
    assert plan.steps[1].instruction == (
        "What does the 2024 version state about the security deposit?"
    )
    assert plan.final.depends_on == ["v2019", "v2024"]


def test_anything_else_is_left_to_the_planner() -> None:
    assert version_plan("What is the security deposit?", LEASES) is None  # no version named
    assert version_plan("What did the 2019 lease require?", LEASES) is None  # one version
    twins = [*LEASES, _doc("c", "Office Lease annex", "/docs/annex_2024.pdf")]
    assert version_plan("Deposit in 2019 and 2024?", twins) is None  # 2024 names two
    assert version_plan("Deposit in 2019 and 2024?", LEASES, max_steps=2) is None


def _step(call: ModelCall) -> dict[str, Any]:
    step = step_of(call)
    if step.startswith("Compare"):
        return {
            "answer": "The notice period fell from 90 days (2023) to 60 days (2025).",
            "claims": [
                {"text": "2023: 90 days", "evidence": cite(call, "90 days")},
                {"text": "2025: 60 days", "evidence": cite(call, "60 days")},
            ],
        }
    needle = "90 days" if "2023" in step else "60 days"
    return {"answer": needle, "claims": [{"text": needle, "evidence": cite(call, needle)}]}


def _never(call: ModelCall) -> dict[str, Any]:
    raise AssertionError("the plan needs no planner call")


async def test_the_run_skips_the_planner_and_passes(contracts: MemoryRetriever) -> None:
    model = routed(_never, _step, judge_mentions("90 days", "60 days"))
    result = await Maestro(model).run(
        QUESTION, corpus=contracts, requirements=["state both notice periods"]
    )
    (created,) = [e for e in result.events if isinstance(e, PlanCreated)]
    assert created.source == "versions"
    assert result.status == "passed", [r for r in result.requirements if not r.passed]
    assert [c.schema_title for c in model.calls].count("PlanDraft") == 0
    assert len(model.calls) == 4  # two versions, the comparison, the judge
    assert result.steps["compare"].changes  # told what changed, and checked


async def test_it_can_be_turned_off(contracts: MemoryRetriever) -> None:
    model = routed(notice_plan, _step, judge_mentions("90 days", "60 days"))
    result = await Maestro(model, plan_versions=False).run(QUESTION, corpus=contracts)
    (created,) = [e for e in result.events if isinstance(e, PlanCreated)]
    assert created.source == "planner"
