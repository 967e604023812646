"""The research pipeline: planner-written plan, cited report, default requirements, files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from maestro_lite import Budget, Event, Limiter, Maestro, Plan, ProviderLimits, ResponseCache, Step
from maestro_lite.testing import ModelCall
from pipelines import Research, ResearchReport, default_requirements, research_plan
from pipelines.research import CITED_FACTS

from .conftest import MemoryRetriever, all_met, chunk, cite, routed, step_of

QUESTION = "Which company makes the part that failed the thermal test, and where is it located?"
REPORT = (
    "In the test at 45 degrees Celsius, 7 of the 12 units failed. "
    "In all 7 failures, the motor controller board MCB-220 overheated."
)
SUPPLIERS = (
    "Kovalent Electronics makes the MCB-220 motor controller board. "
    "Kovalent Electronics is headquartered in Penang, Malaysia."
)
NOISE = "The launch of the Skylark S3 moved to October 14, 2025."


@pytest.fixture
def corpus() -> MemoryRetriever:
    return MemoryRetriever(
        [
            chunk("report", "Thermal report", REPORT, page=2),
            chunk("suppliers", "Supplier profiles", SUPPLIERS),
            chunk("memo", "Launch memo", NOISE),
        ]
    )


def plan_two_hops(call: ModelCall) -> dict[str, Any]:
    assert "D1: Thermal report" in call.last_user
    return {
        "rationale": "Find the part, then its maker and location.",
        "steps": [
            {
                "id": "s1",
                "kind": "answer",
                "instruction": "Which part failed the thermal test?",
                "depends_on": [],
                "queries": ["part failed overheated"],
                "documents": ["D1"],
            },
            {
                "id": "s2",
                "kind": "answer",
                "instruction": "Which company makes the MCB-220 board and where is it?",
                "depends_on": ["s1"],
                "queries": ["MCB-220 makes headquartered"],
                "documents": [],
            },
            {
                "id": "s3",
                "kind": "synthesize",
                "instruction": "Answer the question.",
                "depends_on": ["s1", "s2"],
                "queries": [],
                "documents": [],
            },
        ],
    }


def answer_steps(call: ModelCall) -> dict[str, Any]:
    step = step_of(call)
    if step.startswith("Which part"):
        return {
            "answer": "The MCB-220 motor controller board.",
            "claims": [
                {"text": "The MCB-220 board overheated.", "evidence": cite(call, "MCB-220")}
            ],
        }
    if step.startswith("Which company"):
        return {
            "answer": "Kovalent Electronics, in Penang, Malaysia.",
            "claims": [
                {"text": "Kovalent makes the board.", "evidence": cite(call, "makes the MCB-220")},
                {"text": "Kovalent is in Penang.", "evidence": cite(call, "Penang")},
            ],
        }
    return {
        "answer": "Kovalent Electronics makes the failed MCB-220 board; it is in Penang, Malaysia.",
        "claims": [
            {"text": "The MCB-220 board failed.", "evidence": cite(call, "overheated")},
            {"text": "Kovalent makes it.", "evidence": cite(call, "makes the MCB-220")},
            {"text": "Kovalent is in Penang.", "evidence": cite(call, "Penang")},
        ],
    }


async def test_a_planned_run_becomes_a_cited_report(
    corpus: MemoryRetriever, tmp_path: Path
) -> None:
    model = routed(PlanDraft=plan_two_hops, StepAnswer=answer_steps, Verdicts=all_met)
    research = Research(Maestro(model), budget="low", plan_mode="planner")
    report = await research.run(QUESTION, corpus=corpus)

    assert report.status == "passed", report.requirements
    assert "Penang" in report.answer
    assert [f.step_id for f in report.findings] == ["s1", "s2"]
    assert report.findings[1].answer == "Kovalent Electronics, in Penang, Malaysia."
    assert {d.document_id for d in report.consulted} >= {"report", "suppliers"}
    # Every claim of the answer cites an exact sentence of its source, with its page.
    assert len(report.claims) == 3 and all(c.citations for c in report.claims)
    board = report.claims[0].citations[0]
    assert (board.document_id, board.page) == ("report", 2)
    assert board.quote == "In all 7 failures, the motor controller board MCB-220 overheated."
    assert REPORT[board.start : board.end] == board.quote
    # The default requirements were checked: cited claims, completeness (contradictions are
    # the validator's built-in conflicts check, not the judge's).
    ids = {r.id for r in report.requirements}
    assert "complete" in ids and "contradictions" not in ids
    assert any(
        r.description == "every claim cites a source" and r.passed for r in report.requirements
    )
    judge_prompt = next(c for c in model.calls if c.schema_title == "Verdicts").last_user
    assert "contradict" not in judge_prompt and "every part of the question" in judge_prompt

    markdown = report.to_markdown()
    assert markdown.startswith("# Research report")
    assert f"**Question:** {QUESTION}" in markdown
    assert "### s2: Which company makes the MCB-220 board and where is it?" in markdown
    assert "(uncited)" not in markdown
    assert (
        '1. Thermal report, page 2: "In all 7 failures, the motor controller board MCB-220 '
        'overheated."' in markdown
    )
    assert "- Kovalent is in Penang. [" in markdown

    md_path, json_path = report.write(tmp_path / "out")
    assert md_path.read_text() == markdown
    again = ResearchReport.model_validate_json(json_path.read_text())
    assert again == report
    assert json.loads(json_path.read_text())["claims"][0]["citations"][0]["page"] == 2


async def test_unmet_requirements_are_reported_not_hidden(corpus: MemoryRetriever) -> None:
    def judge(call: ModelCall) -> dict[str, Any]:
        verdicts = all_met(call)
        verdicts["complete"] = {"reason": "it ignores the location", "verdict": "not met"}
        return verdicts

    model = routed(PlanDraft=plan_two_hops, StepAnswer=answer_steps, Verdicts=judge)
    research = Research(Maestro(model), budget="low", plan_mode="planner")
    report = await research.run(QUESTION, corpus=corpus)

    assert report.status == "unmet"
    failed = [r for r in report.requirements if not r.passed]
    assert [r.id for r in failed] == ["complete"]
    markdown = report.to_markdown()
    assert "**FAIL**" in markdown and "it ignores the location" in markdown
    assert "(1 of 2 requirements met)" in markdown


async def test_a_declared_plan_skips_the_planner_and_events_stream(
    corpus: MemoryRetriever,
) -> None:
    class Answer(BaseModel):
        company: str

    def extract(call: ModelCall) -> dict[str, Any]:
        return {
            "company": {"value": "Kovalent", "evidence": cite(call, "Kovalent Electronics makes")}
        }

    events: list[Event] = []
    model = routed(ExtractedAnswer=extract, Verdicts=all_met)
    plan = Plan(steps=[Step(id="who", instruction="Who makes the MCB-220?", queries=["MCB-220"])])
    report = await Research(Maestro(model), requirements=[], output_type=Answer, budget="low").run(
        QUESTION, corpus=corpus, plan=plan, on_event=events.append
    )

    assert report.data == {"company": "Kovalent"}
    assert report.findings == []  # the only step is the final one
    assert report.claims[0].citations[0].document_id == "suppliers"
    assert not any(c.schema_title == "PlanDraft" for c in model.calls)
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert "step_finished" in kinds


async def test_decompose_mode_chains_sub_questions_then_answers_the_whole(
    corpus: MemoryRetriever,
) -> None:
    def split(call: ModelCall) -> dict[str, Any]:
        assert QUESTION in call.last_user
        subs = [
            "Which part failed the thermal test?",
            "Which company makes the MCB-220 board and where is it?",
            "Which part failed the thermal test?",
        ]
        return {"sub_questions": subs}

    model = routed(_SubQuestions=split, StepAnswer=answer_steps, Verdicts=all_met)
    report = await Research(Maestro(model), budget="low").run(QUESTION, corpus=corpus)

    assert report.plan is not None
    assert [(s.id, s.depends_on) for s in report.plan.steps] == [
        ("q1", []),
        ("q2", ["q1"]),
        ("answer", ["q1", "q2"]),
    ]
    final = report.plan.final
    assert final.kind == "synthesize" and final.queries == [QUESTION]  # fresh evidence too
    assert report.plan.step("q2").queries == [report.plan.step("q2").instruction]
    # The second hop saw the first hop's answer.
    hop2 = next(c for c in model.calls if step_of(c).startswith("Which company"))
    assert "q1: The MCB-220 motor controller board." in hop2.last_user
    assert report.status == "passed", report.requirements
    assert report.usage.requests == len(model.calls) == 5  # split, 3 steps, judge
    assert not any(c.schema_title == "PlanDraft" for c in model.calls)


async def test_queries_mode_searches_with_the_sub_questions_and_answers_once(
    corpus: MemoryRetriever,
) -> None:
    subs = ["Which part failed the thermal test?", "Which company makes the MCB-220 board?"]
    model = routed(
        _SubQuestions=lambda call: {"sub_questions": subs},
        StepAnswer=answer_steps,
        Verdicts=all_met,
    )
    research = Research(Maestro(model), budget="low", k=1, sub_question_use="queries")
    report = await research.run(QUESTION, corpus=corpus)

    assert report.plan is not None
    assert [(s.id, s.kind) for s in report.plan.steps] == [("answer", "answer")]
    assert corpus.queries == [QUESTION, *subs]  # the question first, then each sub-question
    # One answer, shown what every query found: both hops' documents.
    (answer,) = [c for c in model.calls if c.schema_title == "StepAnswer"]
    assert "MCB-220 overheated" in answer.last_user and "Penang" in answer.last_user
    assert "Results of earlier steps" not in answer.last_user  # no sub-answers to lean on
    assert [c.schema_title for c in model.calls] == ["_SubQuestions", "StepAnswer", "Verdicts"]
    assert report.status == "passed", report.requirements


async def test_the_split_goes_through_the_limiter_and_the_response_cache() -> None:
    subs = ["Which part failed the thermal test?", "Which company makes the MCB-220 board?"]
    model = routed(_SubQuestions=lambda call: {"sub_questions": subs})
    limiter = Limiter(default=ProviderLimits(max_concurrent=1))
    maestro = Maestro(model, limiter=limiter, cache=ResponseCache())
    research = Research(maestro)
    first, _ = await research.decompose(QUESTION)
    again, _ = await research.decompose(QUESTION)
    assert first == again == subs
    assert len(model.calls) == 1  # the second split came from the orchestrator's cache
    assert limiter.stats(limiter.key_for(model)).granted == 1  # and the first took a permit


def test_default_requirements_are_fresh_objects() -> None:
    first, second = default_requirements(), default_requirements()
    assert [r.kind for r in first] == ["check", "judge"]
    assert first is not second and first[1] == second[1]


def test_a_question_that_does_not_split_is_one_step() -> None:
    plan = research_plan("When is the launch?", ["When will the product launch?"], k=3)
    assert [(s.id, s.kind, s.k) for s in plan.steps] == [("answer", "answer", 3)]
    assert plan.steps[0].queries == ["When will the product launch?", "When is the launch?"]
    assert research_plan("Q?", ["Q?"]).steps[0].queries == ["Q?"]


async def test_one_sub_question_answers_directly_without_a_split_call(
    corpus: MemoryRetriever,
) -> None:
    model = routed(StepAnswer=answer_steps, Verdicts=all_met)
    report = await Research(Maestro(model), budget="low", max_sub_questions=1).run(
        QUESTION, corpus=corpus
    )
    assert [c.schema_title for c in model.calls] == ["StepAnswer", "Verdicts"]
    assert report.plan is not None and [s.id for s in report.plan.steps] == ["answer"]
    with pytest.raises(ValueError):
        Research(Maestro(model), max_sub_questions=0)


def test_steps_ask_for_claims_that_state_the_answers_facts() -> None:
    prose = research_plan("Q?", ["A?", "B?"])
    assert all(s.expected_output == CITED_FACTS for s in prose.steps)
    typed = research_plan("Q?", ["A?", "B?"], typed=True)
    assert [bool(s.expected_output) for s in typed.steps] == [True, True, False]
    assert research_plan("Q?", ["Q?"], typed=True).steps[0].expected_output == ""


def split_in_two(call: ModelCall) -> dict[str, Any]:
    return {
        "sub_questions": [
            "Which part failed the thermal test?",
            "Which company makes the MCB-220 board and where is it?",
        ]
    }


async def test_the_split_counts_against_the_runs_budget(corpus: MemoryRetriever) -> None:
    model = routed(_SubQuestions=split_in_two, StepAnswer=answer_steps)
    budget = Budget(max_rounds=1, max_requests=3)
    report = await Research(Maestro(model), requirements=[], budget=budget).run(
        QUESTION, corpus=corpus
    )

    # The split, then both hops: the budget's three calls; the final step is not started.
    assert [c.schema_title for c in model.calls] == ["_SubQuestions", "StepAnswer", "StepAnswer"]
    assert report.usage.requests == 3
    assert report.budget_exhausted == "max_requests=3"
    assert report.status != "passed"


async def test_a_split_the_budget_cannot_pay_for_is_not_made(corpus: MemoryRetriever) -> None:
    model = routed(_SubQuestions=split_in_two, StepAnswer=answer_steps)
    one_call = Budget(max_rounds=1, max_requests=1)
    report = await Research(Maestro(model), requirements=[], budget=one_call).run(
        QUESTION, corpus=corpus
    )
    # The one call goes to the answer; the question is answered in one step.
    assert [c.schema_title for c in model.calls] == ["StepAnswer"]
    assert report.plan is not None and [s.id for s in report.plan.steps] == ["answer"]
    assert report.notes == ["splitting the question: skipped, the budget leaves no room for it"]
    assert report.notes[0] in report.to_markdown()

    # The token limit is checked before the call too: nothing is sent.
    model = routed(_SubQuestions=split_in_two, StepAnswer=answer_steps)
    few_tokens = Budget(max_rounds=1, max_requests=10, max_tokens=50)
    report = await Research(Maestro(model), requirements=[], budget=few_tokens).run(
        QUESTION, corpus=corpus
    )
    assert model.calls == []
    assert "max_tokens=50" in report.notes[0] and report.budget_exhausted == "max_tokens=50"


MEMO = "The commercial launch of the Skylark S3 is moved to October 14, 2025."
ARTICLE = "The Skylark S3 will now launch on September 9, 2025, the trade press reports."


@pytest.fixture
def conflicting() -> MemoryRetriever:
    return MemoryRetriever(
        [chunk("memo", "Launch memo", MEMO), chunk("article", "Trade article", ARTICLE)]
    )


ANSWERS = {
    "one-side": "The Skylark S3 launches on October 14, 2025.",
    "other-side": "The Skylark S3 launches on September 9, 2025.",
    "both-sides": "The memo says October 14, 2025; a trade article says September 9, 2025.",
    "neither": "The sources do not agree on a date.",
}


def launch_answers(final: str) -> Any:
    def answer(call: ModelCall) -> dict[str, Any]:
        step = step_of(call)
        if "memo" in step:
            return {
                "answer": "October 14, 2025.",
                "claims": [{"text": "October 14, 2025", "evidence": cite(call, "October 14")}],
            }
        if "article" in step:
            return {
                "answer": "September 9, 2025.",
                "claims": [{"text": "September 9, 2025", "evidence": cite(call, "September 9")}],
            }
        date = "September 9" if final == "other-side" else "October 14"
        claims = [{"text": f"The launch is on {date}, 2025.", "evidence": cite(call, date)}]
        if final == "both-sides":
            claims.append({"text": "September 9, 2025", "evidence": cite(call, "September 9")})
        return {"answer": ANSWERS[final], "claims": claims}

    return answer


@pytest.mark.parametrize("final", list(ANSWERS))
async def test_contradicting_sources_must_be_called_out(
    conflicting: MemoryRetriever, final: str
) -> None:
    subs = ["When does the memo say the launch is?", "When does the article say it is?"]
    model = routed(
        _SubQuestions=lambda call: {"sub_questions": subs},
        StepAnswer=launch_answers(final),
        Verdicts=all_met,  # a judge that sees no problem: the built-in check decides
    )
    research = Research(Maestro(model), budget=Budget(max_rounds=1, max_requests=10))
    report = await research.run("When will the Skylark S3 launch?", corpus=conflicting)

    assert "contradictions" not in {r.id for r in default_requirements()}
    verdict = next(r for r in report.requirements if r.id == "answer.conflicts")
    assert verdict.kind == "builtin"
    if final == "neither":  # nothing to complete: a fix round would be told what is missing
        assert not verdict.passed and report.status == "unmet"
        assert "does not state 'October 14, 2025'" in verdict.reason
        assert "does not state 'September 9, 2025'" in verdict.reason
        assert [r.id for r in report.requirements if not r.passed] == ["answer.conflicts"]
        assert "**FAIL**" in report.to_markdown()
        return
    assert verdict.passed and report.status == "passed", report.requirements
    # Neither source prevails here: an answer with either side has the other told for it,
    # by the framework, citing both.
    told = (
        "Sources disagree: Launch memo gives October 14, 2025, while Trade article gives "
        "September 9, 2025."
    )
    assert (told in report.answer) == (final != "both-sides")
    assert {c.document_id for c in report.citations} == {"memo", "article"}
