"""Plan structure and validation."""

from __future__ import annotations

import pytest

from maestro_lite import PlanError
from maestro_lite.plan import Plan, Step, plan_problems
from maestro_lite.retrieval import SearchFilter


def _s(sid: str, *deps: str, queries: tuple[str, ...] = ("q",)) -> Step:
    return Step(id=sid, instruction=f"do {sid}", depends_on=list(deps), queries=list(queries))


def test_a_valid_plan_orders_steps_and_finds_the_final_one() -> None:
    plan = Plan(steps=[_s("c", "a", "b"), _s("a"), _s("b", "a")])
    assert [s.id for s in plan.topological()] == ["a", "b", "c"]
    assert plan.final.id == "c"
    assert plan.dependants(["a"]) == {"b", "c"}
    assert plan.dependants(["c"]) == set()


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([_s("a", "b"), _s("b", "a")], "form a dependency cycle"),
        ([_s("a"), _s("b", "zz")], "depends on unknown step 'zz'"),
        ([_s("a"), _s("a")], "is used twice"),
        ([_s("a"), _s("b")], "exactly one final step"),
        ([_s("a", "a")], "depends on itself"),
    ],
)
def test_structural_problems_are_refused(steps: list[Step], problem: str) -> None:
    with pytest.raises(PlanError) as info:
        Plan(steps=steps)
    assert any(problem in p for p in info.value.problems)


def test_a_copy_with_other_steps_is_checked_and_indexed_anew() -> None:
    # A plan caches what it derives from its steps; a copy with other steps must not reuse it.
    plan = Plan(steps=[_s("c", "a", "b"), _s("a"), _s("b", "a")])
    assert plan.final.id == "c" and plan.step("a").id == "a"
    other = plan.model_copy(update={"steps": [_s("x"), _s("y", "x")]})
    assert other.final.id == "y"
    assert [s.id for s in other.topological()] == ["x", "y"]
    with pytest.raises(KeyError):
        other.step("a")
    cyclic = plan.model_copy(update={"steps": [_s("a", "b"), _s("b", "a")]})
    with pytest.raises(PlanError, match="form a dependency cycle"):
        Plan.model_validate(cyclic)  # as when the copy is passed to a run or an event


def test_corpus_and_budget_problems() -> None:
    steps = [
        Step(id="a", instruction="x", queries=["q"], filters=SearchFilter(document_ids=["ghost"])),
        Step(
            id="b",
            instruction="y",
            depends_on=["a"],
            filters=SearchFilter(page_from=5, page_to=2),
            queries=["q"],
        ),
        Step(id="c", instruction="z", depends_on=["b"]),
    ]
    problems = plan_problems(steps, document_ids=["real"], max_steps=2)
    assert any("3 steps; the budget allows 2" in p for p in problems)
    assert any("unknown document(s) ['ghost']" in p for p in problems)
    assert any("page_from after page_to" in p for p in problems)


def test_a_step_with_nothing_to_work_from_is_refused() -> None:
    problems = plan_problems([Step(id="a", instruction="x")])
    assert problems and "neither retrieval queries nor dependencies" in problems[0]


def test_single_step_plan() -> None:
    plan = Plan.single("What is the notice period?")
    assert plan.final.queries == ["What is the notice period?"]
