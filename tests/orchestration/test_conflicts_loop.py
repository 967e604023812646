"""Sources that disagree: the step is told before it answers, the validator checks the answer
states each side, and a fix round carries the failure and passes."""

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


async def test_an_answer_that_hides_one_side_is_fixed_with_the_failure_in_its_prompt() -> None:
    prompts: list[str] = []

    def step(call: ModelCall) -> dict[str, Any]:
        prompts.append(call.last_user)
        official = cite(call, "October 14, 2025")
        if len(prompts) == 1:  # the small model's habit: one side only
            return {
                "answer": "The Skylark S3 launches on October 14, 2025.",
                "claims": [{"text": "October 14, 2025", "evidence": official}],
            }
        return {
            "answer": "October 14, 2025, the official date in the launch memo; the AgriTech "
            "article reported September 9, 2025.",
            "claims": [
                {"text": "Official: October 14, 2025", "evidence": official},
                {"text": "Reported: September 9, 2025", "evidence": cite(call, "September 9")},
            ],
        }

    model = routed(_plan, step, _never_judged)
    result = await Maestro(model).run(QUESTION, corpus=_corpus(), plan=PLAN)

    # Told before answering: each side, by evidence id, and which prevails.
    assert "the sources disagree" in prompts[0]
    assert "'October 14, 2025'" in prompts[0] and "'September 9, 2025'" in prompts[0]
    assert "Launch memo [c" in prompts[0] and "prevails: marked official" in prompts[0]
    # The first answer failed the built-in check, and the fix round was told why.
    first = {r.id: r for r in result.rounds[0].report.results}
    assert not first["answer.conflicts"].passed
    assert "does not state 'September 9, 2025'" in first["answer.conflicts"].reason
    assert [r.decision.action for r in result.rounds] == ["fix", "finish"]
    assert "failed these checks" in prompts[1] and "does not state 'September 9" in prompts[1]
    # The fixed answer passes, with both sides cited.
    assert result.status == "passed", [r for r in result.requirements if not r.passed]
    assert {c.document_id for c in result.citations} == {"memo", "news"}
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
