"""Bad input to a research run: an empty corpus, a question the documents cannot answer, a
model that never fits the schema. A clear status and message, never a crash or an invented
answer."""

from __future__ import annotations

from typing import Any

import pytest

from maestro_lite import EmptyCorpus, Maestro
from maestro_lite.testing import ModelCall
from pipelines import Research

from .conftest import MemoryRetriever, all_met, chunk, routed

DOCS = MemoryRetriever([chunk("memo", "Launch memo", "The Skylark S3 launches on May 5, 2025.")])


def _abstain(call: ModelCall) -> dict[str, Any]:
    return {"answer": "The documents do not say who the CEO's favourite painter is.", "claims": []}


async def test_an_empty_corpus_is_refused_before_any_model_call() -> None:
    model = routed(StepAnswer=_abstain, Verdicts=all_met)
    with pytest.raises(EmptyCorpus, match="has no documents to search") as info:
        await Research(Maestro(model), max_sub_questions=1).run(
            "When is the launch?", corpus=MemoryRetriever([])
        )
    assert "maestro ingest" in str(info.value.hint)
    assert model.calls == []


async def test_a_question_about_something_absent_is_answered_so_and_cites_nothing() -> None:
    model = routed(StepAnswer=_abstain, Verdicts=all_met)
    report = await Research(Maestro(model), max_sub_questions=1).run(
        "Who is the CEO's favourite painter?", corpus=DOCS
    )
    assert report.status == "passed", [r for r in report.requirements if not r.passed]
    assert report.citations == [] and "do not say" in report.answer
    reasons = {r.id: r.reason for r in report.requirements}
    assert "nothing to cite" in reasons["answer.supported"] and "nothing to cite" in reasons["r1"]


async def test_an_uncited_answer_that_states_a_fact_is_not_an_abstention() -> None:
    def bare(call: ModelCall) -> dict[str, Any]:
        return {"answer": "It is not stated, but probably on June 1, 2025.", "claims": []}

    model = routed(StepAnswer=bare, Verdicts=all_met)
    report = await Research(Maestro(model), budget="low", max_sub_questions=1).run(
        "When is the launch?", corpus=DOCS
    )
    assert report.status == "unmet"
    failed = {r.id for r in report.requirements if not r.passed}
    assert {"answer.supported", "r1"} <= failed


async def test_a_model_that_never_fits_the_schema_ends_failed_with_the_reason() -> None:
    model = routed(StepAnswer=lambda call: {"verdict": "sure"}, Verdicts=all_met)
    report = await Research(Maestro(model), budget="low", max_sub_questions=1).run(
        "When is the launch?", corpus=DOCS
    )
    assert report.status == "failed"
    (completed,) = [r for r in report.requirements if r.id == "answer.completed"]
    assert "StructuredOutputError" in completed.reason and "StepAnswer" in completed.reason
