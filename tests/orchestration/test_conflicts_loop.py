"""Sources that disagree: the step is told before it answers; an answer that gives the side
that prevails has the other side told for it; an answer that gives the side that lost fails
the validator's check, and a fix round carries the failure and passes."""

from __future__ import annotations

from typing import Any

from maestro_lite.models import ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.plan import Plan, Step

from .conftest import MemoryRetriever, cite, make_chunk
from .test_orchestrator import routed

MEMO = (
    "Memorandum, July 10, 2025. The executive team approved the new date. "
    "October 14, 2025 is now the official launch date for the Skylark S3 drone."
)
ARTICLE = (
    "AgriTech Field Report, July 24, 2025. "
    "The Skylark S3 drone will now launch on September 9, 2025, a spokesperson said."
)
QUESTION = "When will the Skylark S3 drone launch?"
PLAN = Plan(steps=[Step(id="answer", instruction=QUESTION, queries=[QUESTION], k=4)])


def _corpus() -> MemoryRetriever:
    return MemoryRetriever(
        [make_chunk("memo", "Launch memo", MEMO), make_chunk("news", "AgriTech article", ARTICLE)]
    )


def _never_judged(call: ModelCall) -> dict[str, Any]:
    raise AssertionError("no requirement asks for the judge")


def _plan(call: ModelCall) -> dict[str, Any]:
    raise AssertionError("the plan is given")


async def test_an_answer_with_the_prevailing_side_only_has_the_other_side_told() -> None:
    prompts: list[str] = []

    def step(call: ModelCall) -> dict[str, Any]:
        prompts.append(call.last_user)
        return {  # the small model's habit: one side only
            "answer": "The Skylark S3 launches on October 14, 2025.",
            "claims": [{"text": "October 14, 2025", "evidence": cite(call, "October 14, 2025")}],
        }

    model = routed(_plan, step, _never_judged)
    result = await Maestro(model).run(QUESTION, corpus=_corpus(), plan=PLAN)

    # Told before answering: each side, by evidence id, and which prevails.
    assert "the sources disagree" in prompts[0]
    assert "'October 14, 2025'" in prompts[0] and "'September 9, 2025'" in prompts[0]
    assert "Launch memo [c" in prompts[0] and "prevails: marked official" in prompts[0]
    # One call: the framework tells the side the model left out, citing both sentences.
    assert len(prompts) == 1 and [r.decision.action for r in result.rounds] == ["finish"]
    assert result.status == "passed", [r for r in result.requirements if not r.passed]
    step_result = result.steps["answer"]
    (added,) = step_result.added
    assert added == (
        "Sources disagree: Launch memo gives October 14, 2025, and it prevails (marked "
        "official); AgriTech article gives September 9, 2025 instead."
    )
    assert step_result.answer.endswith(added)
    told = step_result.claims[-1]
    assert told.text == added
    assert {c.document_id for c in told.citations} == {"memo", "news"}
    assert all(c.quote in MEMO + ARTICLE for c in told.citations)


async def test_an_answer_with_the_side_that_lost_is_fixed_with_the_failure_in_its_prompt() -> None:
    prompts: list[str] = []

    def step(call: ModelCall) -> dict[str, Any]:
        prompts.append(call.last_user)
        reported = cite(call, "September 9")
        if len(prompts) == 1:  # the superseded date only: not completed, sent back
            return {
                "answer": "The Skylark S3 launches on September 9, 2025.",
                "claims": [{"text": "September 9, 2025", "evidence": reported}],
            }
        return {
            "answer": "October 14, 2025, the official date in the launch memo; the AgriTech "
            "article reported September 9, 2025.",
            "claims": [
                {"text": "Official: October 14, 2025", "evidence": cite(call, "October 14, 2025")},
                {"text": "Reported: September 9, 2025", "evidence": reported},
            ],
        }

    model = routed(_plan, step, _never_judged)
    result = await Maestro(model).run(QUESTION, corpus=_corpus(), plan=PLAN)

    first = {r.id: r for r in result.rounds[0].report.results}
    assert not first["answer.conflicts"].passed
    assert "does not state 'October 14, 2025'" in first["answer.conflicts"].reason
    assert [r.decision.action for r in result.rounds] == ["fix", "finish"]
    assert "failed these checks" in prompts[1] and "does not state 'October 14" in prompts[1]
    # The fixed answer passes, with both sides cited, and nothing added to it.
    assert result.status == "passed", [r for r in result.requirements if not r.passed]
    assert {c.document_id for c in result.citations} == {"memo", "news"}
    assert result.steps["answer"].added == []
    (conflict,) = result.steps["answer"].conflicts
    assert conflict.sides[conflict.prevails or 0].document_id == "memo"


async def test_sources_that_agree_add_no_note_and_no_check() -> None:
    corpus = MemoryRetriever(
        [
            make_chunk("memo", "Launch memo", MEMO),
            make_chunk("news", "Article", "The Skylark S3 drone will launch on October 14, 2025."),
        ]
    )

    def step(call: ModelCall) -> dict[str, Any]:
        assert "disagree" not in call.last_user
        return {
            "answer": "October 14, 2025.",
            "claims": [{"text": "October 14, 2025", "evidence": cite(call, "October 14")}],
        }

    result = await Maestro(routed(_plan, step, _never_judged)).run(
        QUESTION, corpus=corpus, plan=PLAN
    )
    assert result.status == "passed"
    assert not [r for r in result.requirements if r.id.endswith(".conflicts")]
