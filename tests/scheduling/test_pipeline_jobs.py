"""Pipeline jobs run by the worker: research, compare and extract write what their commands
write, and a completion trigger gets the pipeline's output."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from maestro_lite import Settings
from maestro_lite.scheduling import (
    JobRecord,
    ManualClock,
    RunJob,
    SQLiteScheduleStore,
    Trigger,
    default_runners,
)
from maestro_lite.testing import FunctionModel, ModelCall
from pipelines.jobs import RUNNERS, CompareJob, ExtractJob, ResearchJob

from ..orchestration.conftest import V1, V2, cite, step_of
from .conftest import Recorder, make_worker, wait_for

CLOCK = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    docs = tmp_path / "contracts"
    docs.mkdir()
    (docs / "agreement_2023.txt").write_text(V1)
    (docs / "agreement_2025.txt").write_text(V2)
    return docs


def cite_days(call: ModelCall) -> dict[str, Any]:
    return {
        "answer": "The notice clause applies.",
        "claims": [{"text": "Notice", "evidence": cite(call, "days")}],
    }


def model(**handlers: Any) -> FunctionModel:
    def route(call: ModelCall) -> Any:
        return (handlers.get(call.schema_title or "") or handlers["default"])(call)

    return FunctionModel(route, name="pipelines")


async def finish(
    settings: Settings,
    store: SQLiteScheduleStore,
    chat: FunctionModel,
    *jobs: tuple[str, Any],
    runner: Recorder | None = None,
) -> list[JobRecord]:
    """Run ``jobs`` (name, spec) in a worker until every queued job is over."""
    runners = {**{**default_runners(), **RUNNERS}, **({"run": runner} if runner else {})}
    worker = make_worker(settings, store, ManualClock(CLOCK), model=chat, runners=runners)
    async with worker:
        queued = [worker.submit(spec, name=name) for name, spec in jobs]
        await wait_for(
            lambda: (
                all(j.status in ("passed", "unmet", "failed") for j in store.jobs())
                and len(store.jobs()) >= len(queued) + (1 if runner else 0)
            )
        )
    return [store.job(q.job_id) for q in queued]


async def test_a_research_job_keeps_how_it_was_asked_to_use_sub_questions(
    settings: Settings, store: SQLiteScheduleStore, contracts: Path, tmp_path: Path
) -> None:
    subs = ["What notice period applies?", "Which clause sets it?"]
    chat = model(_SubQuestions=lambda c: {"sub_questions": subs}, default=cite_days)
    job = ResearchJob(
        question="What notice period applies, and where?",
        docs=[str(contracts)],
        default_requirements=False,
        out=str(tmp_path / "out"),
        max_sub_questions=2,
        sub_question_use="queries",
    )
    [done] = await finish(settings, store, chat, ("weekly", job))
    assert done.status == "passed", done.error
    report = json.loads((tmp_path / "out" / "research.json").read_text())
    [step] = report["plan"]["steps"]  # one answer, searched with the question and both subs
    assert step["queries"] == [job.question, *subs]


async def test_a_research_job_writes_its_report_and_its_trigger_gets_the_answer(
    settings: Settings, store: SQLiteScheduleStore, contracts: Path, tmp_path: Path
) -> None:
    store.add_trigger(
        Trigger.create("digest", after="weekly", job=RunJob(task="Digest ({status}): {output}"))
    )
    chat = model(
        _SubQuestions=lambda c: {"sub_questions": ["What notice period applies?"]},
        default=cite_days,
    )
    runner = Recorder()
    job = ResearchJob(
        question="What notice period applies?",
        docs=[str(contracts)],
        default_requirements=False,
        out=str(tmp_path / "out"),
    )
    [done] = await finish(settings, store, chat, ("weekly", job), runner=runner)
    assert done.status == "passed" and done.outcome is not None, done.error
    assert done.outcome.output == "The notice clause applies."
    assert sorted(Path(f).name for f in done.outcome.files) == ["research.json", "research.md"]
    report = json.loads((tmp_path / "out" / "research.json").read_text())
    assert report["run_id"] == done.run_ids[0] == f"{done.job_id}-1"
    assert [j.task for j, _ in runner.jobs] == ["Digest (passed): The notice clause applies."]


async def test_compare_and_extract_jobs_write_their_outputs(
    settings: Settings, store: SQLiteScheduleStore, contracts: Path, tmp_path: Path
) -> None:
    def answer(call: ModelCall) -> dict[str, Any]:
        if "Extract" in call.prompt:
            state = "Delaware" if "Delaware" in call.last_user else "New York"
            return {"governing_law": {"value": state, "evidence": cite(call, "governed")}}
        if step_of(call).startswith("What does"):
            return cite_days(call)
        return {
            "answer": "Notice fell from 90 to 60 days.",
            "claims": [
                {"text": "90 days in 2023", "evidence": cite(call, "90 days")},
                {"text": "60 days in 2025", "evidence": cite(call, "60 days")},
            ],
        }

    schema = {
        "title": "Terms",
        "type": "object",
        "properties": {"governing_law": {"type": "string", "description": "the law"}},
    }
    compare = CompareJob(
        documents=[str(contracts / "agreement_2023.txt"), str(contracts / "agreement_2025.txt")],
        aspects=["termination notice"],
        out=str(tmp_path / "cmp"),
    )
    extract = ExtractJob(
        documents=[str(contracts)],
        record_schema=schema,
        out=str(tmp_path / "records"),
        formats=["jsonl", "csv"],
    )
    compared, extracted = await finish(
        settings, store, model(default=answer), ("cmp", compare), ("ext", extract)
    )
    assert compared.status == "passed" and compared.outcome is not None, compared.error
    assert "## termination notice" in compared.outcome.output
    assert (tmp_path / "cmp" / "comparison.json").exists()
    assert extracted.status == "passed" and extracted.outcome is not None, extracted.error
    assert extracted.outcome.output == "2 extracted, 0 failed, 0 already done"
    assert sorted(Path(f).name for f in extracted.outcome.files) == ["records.csv", "records.jsonl"]
    assert len(extracted.run_ids) == 2  # one run per document, both recorded under the job


async def test_a_stopped_research_job_continues_without_asking_anything_twice(
    settings: Settings, store: SQLiteScheduleStore, contracts: Path
) -> None:
    subs = ["What notice period applied in 2023?", "What notice period applies in 2025?"]
    asked: list[str] = []
    holding = [True]
    held = asyncio.Event()

    async def route(call: ModelCall) -> Any:
        if call.schema_title == "_SubQuestions":
            asked.append("decompose")
            return {"sub_questions": subs}
        asked.append(step_of(call))
        if step_of(call) == subs[1] and holding[0]:
            held.set()
            await asyncio.Event().wait()  # in flight until the worker stops
        return cite_days(call)

    chat = FunctionModel(route, name="research")
    job = ResearchJob(
        question="How did the notice period change?",
        docs=[str(contracts)],
        default_requirements=False,
    )
    first = make_worker(
        settings,
        store,
        ManualClock(CLOCK),
        model=chat,
        runners={**default_runners(), **RUNNERS},
        concurrency=1,
    )
    async with first:
        queued = first.submit(job, name="weekly")
        async with asyncio.timeout(60):
            await held.wait()
    stopped = store.job(queued.job_id)
    assert stopped.status == "interrupted" and len(stopped.run_ids) == 1
    before = list(asked)
    assert before == ["decompose", subs[0], subs[1]]

    holding[0] = False
    second = make_worker(
        settings,
        store,
        ManualClock(CLOCK),
        model=chat,
        runners={**default_runners(), **RUNNERS},
        concurrency=1,
    )
    async with second:
        await wait_for(lambda: store.job(queued.job_id).status == "passed")
    done = store.job(queued.job_id)
    # The split (answered by the cache) and the finished step (a checkpoint) are not asked
    # again; the step in flight is, then the final answer. One run, resumed.
    again = asked[len(before) :]
    assert again[0] == subs[1] and len(again) == 2 and "decompose" not in again
    assert done.run_ids == stopped.run_ids
