"""What the dashboard and tracing cost.

1. Run page: server time to answer ``GET /runs/ID`` for a run of ``--steps`` steps (1,000
   by default), each with a model call, 4 retrieved chunks and a citation, over 2 rounds;
   the run is written into the store as its events, as a run would write them.
2. Runs list: server time to answer the first page of ``--runs`` runs (10,000 by default),
   a search over them, and a page deep in the list (SQL paging).
3. Tracing: a run of ``--trace-steps`` parallel steps with a scripted model, with and
   without :class:`~maestro_lite.telemetry.RunTracer` (SDK, batch processor, an exporter
   that drops spans), alternated ``--repeat`` times; the extra time per step, end to end
   and for the handler alone (the same events replayed through it).

Times are medians of ``--repeat`` requests to a live server on 127.0.0.1 (uvicorn, one
process), measured by the client: rendering plus loopback transfer.

Run: ``python -m evals.bench_dashboard`` (``--steps 1000 --runs 10000 --repeat 5``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from maestro_lite.budget import Budget
from maestro_lite.documents import Chunk, DocumentInfo
from maestro_lite.events import (
    Event,
    ModelAttempted,
    PlanCreated,
    RoundFinished,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    ValidationFinished,
)
from maestro_lite.models import FunctionModel, ModelCall
from maestro_lite.models.generate import Attempt
from maestro_lite.orchestrator import Maestro
from maestro_lite.plan import Plan, Step
from maestro_lite.requirements import RequirementResult
from maestro_lite.result import Citation, Claim, Decision, StepResult
from maestro_lite.retrieval import SearchFilter, SearchHit, SearchMode
from maestro_lite.runs import RunSpec, SQLiteRunStore
from maestro_lite.settings import Settings
from maestro_lite.telemetry import RunTracer
from maestro_lite.ui.app import DashboardConfig, create_app
from maestro_lite.usage import Usage

TEXT = (
    "Either party may terminate this Agreement on {n} days written notice. The liability of "
    "either party is capped at the fees paid in the prior 12 months. This Agreement is "
    "governed by the laws of New York. "
) * 3


def _spec(run_id: str, task: str) -> RunSpec:
    return RunSpec.of(
        run_id=run_id,
        task=task,
        corpus="contracts",
        requirements=["cite every figure"],
        budget=Budget(),
        plan=None,
        output_type=None,
        data_types={},
        cache=True,
    )


def _chunk(i: int, j: int) -> Chunk:
    text = TEXT.format(n=30 + i % 60)
    return Chunk(
        id=f"d{i}:{j}",
        document_id=f"d{i}",
        index=j,
        text=text,
        page=1 + j,
        start=0,
        end=len(text),
        doc_start=0,
        doc_end=len(text),
        title=f"Agreement {i}",
        path=f"/docs/agreement-{i}.pdf",
    )


def _result(step: Step, rnd: int, at: datetime) -> StepResult:
    i = int(step.id[1:])
    hits = [SearchHit(chunk=_chunk(i, j), score=1.0 / (j + 1), rank=j + 1) for j in range(4)]
    chunk = hits[0].chunk
    quote = f"terminate this Agreement on {30 + i % 60} days written notice"
    start = chunk.text.index(quote)
    citation = Citation(
        evidence_id="c1.s1",
        chunk_id=chunk.id,
        document_id=chunk.document_id,
        title=chunk.title,
        path=chunk.path,
        page=chunk.page,
        start=start,
        end=start + len(quote),
        quote=quote,
    )
    usage = Usage(requests=1, input_tokens=900, output_tokens=60, model_seconds=1.5)
    return StepResult(
        step_id=step.id,
        kind=step.kind,
        status="done",
        round=rnd,
        answer=f"{30 + i % 60} days.",
        claims=[Claim(text=f"{30 + i % 60} days notice", citations=[citation])],
        retrieved=hits,
        evidence_ids=["c1.s1", "c1.s2"],
        attempts=[Attempt(model="openai:gpt-4o-mini", outcome="ok", usage=usage, seconds=1.5)],
        usage=usage,
        model="openai:gpt-4o-mini",
        started_at=at,
        finished_at=at + timedelta(seconds=2),
    )


def big_run_events(run_id: str, steps: int) -> list[Event]:
    """The events of a run of ``steps`` steps in chains of 10 (8 in flight at once), validated
    twice: one fix round re-running the final step."""
    chain = [
        Step(
            id=f"s{i}",
            instruction=f"Notice period of agreement {i}",
            queries=["terminate notice"],
            depends_on=[f"s{i - 1}"] if i % 10 else [],
        )
        for i in range(steps - 1)
    ]
    final = Step(
        id=f"s{steps - 1}",
        kind="synthesize",
        instruction="Compare every notice period",
        depends_on=[s.id for s in chain if int(s.id[1:]) % 10 == 9 or s is chain[-1]],
    )
    plan = Plan(steps=[*chain, final], rationale="One step per agreement, then compare.")
    t0 = datetime.now(UTC) - timedelta(hours=1)
    events: list[Event] = [
        RunStarted(run_id=run_id, task="Compare notice periods", corpus="contracts", at=t0),
        PlanCreated(run_id=run_id, plan=plan, at=t0 + timedelta(seconds=3)),
    ]
    usage = Usage(requests=1, input_tokens=900, output_tokens=60, model_seconds=1.5)
    clock = t0 + timedelta(seconds=4)
    for rnd, steps_of_round in ((1, plan.steps), (2, [final])):
        for n, step in enumerate(steps_of_round):
            at = clock + timedelta(seconds=2 * (n // 8))  # eight in flight at once
            result = _result(step, rnd, at)
            events += [
                StepStarted(run_id=run_id, step_id=step.id, round=rnd, at=at),
                ModelAttempted(
                    run_id=run_id,
                    purpose=f"step:{step.id}",
                    model="openai:gpt-4o-mini",
                    outcome="ok",
                    usage=usage,
                    seconds=1.5,
                    at=at + timedelta(seconds=1.9),
                ),
                StepFinished(
                    run_id=run_id,
                    step_id=step.id,
                    round=rnd,
                    result=result,
                    at=at + timedelta(seconds=2),
                ),
            ]
        clock = events[-1].at + timedelta(seconds=1)
        checks = [
            RequirementResult(
                id=f"{s.id}.citations",
                description="citations resolve to retrieved source text",
                kind="builtin",
                score=1.0,
                passed=True,
                reason="1 citation(s) verified",
                step_id=s.id,
            )
            for s in plan.steps
        ]
        passed = rnd == 2
        checks.append(
            RequirementResult(
                id="r1",
                description="cite every figure",
                kind="judge",
                score=1.0 if passed else 0.0,
                passed=passed,
                reason="met" if passed else "the comparison omits two figures",
            )
        )
        events.append(
            ValidationFinished(run_id=run_id, round=rnd, passed=passed, results=checks, at=clock)
        )
        action = "finish" if passed else "fix"
        decision = Decision(action=action, reason=checks[-1].reason, step_ids=[final.id])
        events.append(RoundFinished(run_id=run_id, round=rnd, decision=decision, at=clock))
        clock += timedelta(seconds=1)
    total = Usage(requests=steps + 1, input_tokens=900 * (steps + 1), output_tokens=60)
    events.append(
        RunFinished(run_id=run_id, status="passed", usage=total, wall_seconds=600, at=clock)
    )
    return events


def write_big_run(store: SQLiteRunStore, run_id: str, steps: int) -> None:
    store.create(_spec(run_id, "Compare notice periods"))
    for event in big_run_events(run_id, steps):
        store.append(event)


def write_many_runs(store: SQLiteRunStore, count: int) -> None:
    """``count`` small finished runs, each validated once."""
    for i in range(count):
        run_id = f"run{i:06d}"
        store.create(_spec(run_id, f"What is the notice period in agreement {i}?"))
        result = RequirementResult(
            id="r1", description="cite", kind="judge", score=1.0, passed=i % 7 != 0
        )
        store.append(ValidationFinished(run_id=run_id, round=1, passed=True, results=[result]))
        usage = Usage(requests=4, input_tokens=3000, output_tokens=200)
        store.append(RunFinished(run_id=run_id, status="passed", usage=usage, wall_seconds=20))


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    config = uvicorn.Config(
        create_app(DashboardConfig(settings=settings, corpora=False)),
        host="127.0.0.1",
        port=0,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()


def timed(client: httpx.Client, path: str, repeat: int) -> dict[str, float]:
    times, size = [], 0
    client.get(path)  # warm: templates compiled, pages cached by SQLite
    for _ in range(repeat):
        begun = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - begun)
        response.raise_for_status()
        size = len(response.content)
    return {"median_s": statistics.median(times), "min_s": min(times), "bytes": size}


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _tracer() -> tuple[RunTracer, TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop()))
    return RunTracer(provider.get_tracer("bench")), provider


class _Docs:
    """A retriever of one short chunk per agreement (no search cost to speak of)."""

    def __init__(self, steps: int) -> None:
        self.chunks = [_chunk(i, 0) for i in range(steps)]

    async def search(
        self,
        query: str,
        *,
        k: int = 8,
        filters: SearchFilter | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        return [SearchHit(chunk=c, score=1.0, rank=i + 1) for i, c in enumerate(self.chunks[:2])]

    async def documents(self) -> list[DocumentInfo]:
        return []

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        return [c for c in self.chunks if c.id in set(ids)]


def _answer(call: ModelCall) -> dict[str, Any]:
    ids = re.findall(r"^([ce]\d+(?:\.s\d+)?): .*days written notice", call.prompt, re.MULTILINE)
    if call.schema_title == "Verdicts":
        return {"r1": {"reason": "ok", "verdict": "met"}}
    return {"answer": "30 days.", "claims": [{"text": "30 days", "evidence": ids[:1]}]}


async def traced_runs(steps: int, repeat: int) -> dict[str, float]:
    plan = Plan(
        steps=[
            Step(id=f"s{i}", instruction=f"Notice {i}", queries=["notice"]) for i in range(steps)
        ]
        + [
            Step(
                id="final",
                kind="synthesize",
                instruction="Compare",
                depends_on=[f"s{i}" for i in range(steps)],
            )
        ]
    )
    budget = Budget(max_steps=steps + 1, max_requests=10 * steps, max_tokens=None, max_rounds=1)
    docs = _Docs(steps)
    off: list[float] = []
    on: list[float] = []
    events_of_run: list[Any] = []
    warm = Maestro(FunctionModel(_answer, name="scripted"), concurrency=8)
    await warm.run("Compare", corpus=docs, plan=plan, budget=budget)  # imports, caches
    for _ in range(repeat):
        for traced in (False, True):
            tracer, provider = _tracer()
            maestro = Maestro(
                FunctionModel(_answer, name="scripted"),
                concurrency=8,
                on_event=tracer if traced else None,
            )
            begun = time.perf_counter()
            result = await maestro.run("Compare", corpus=docs, plan=plan, budget=budget)
            (on if traced else off).append(time.perf_counter() - begun)
            provider.shutdown()
            events_of_run = result.events
    # The handler alone: the same events through a fresh tracer, timed.
    handler_times = []
    for _ in range(repeat):
        tracer, provider = _tracer()
        begun = time.perf_counter()
        for event in events_of_run:
            tracer(event)
        handler_times.append(time.perf_counter() - begun)
        provider.shutdown()
    n = steps + 1
    return {
        "steps": n,
        "run_off_s": statistics.median(off),
        "run_on_s": statistics.median(on),
        "per_step_end_to_end_us": (statistics.median(on) - statistics.median(off)) / n * 1e6,
        "per_step_handler_us": statistics.median(handler_times) / n * 1e6,
        "events": len(events_of_run),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--trace-steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        with SQLiteRunStore(settings.runs_db) as store:
            begun = time.perf_counter()
            write_many_runs(store, args.runs)
            figures["write_runs_s"] = time.perf_counter() - begun
            write_big_run(store, "big", args.steps)
        with serving(settings) as url, httpx.Client(base_url=url, timeout=120) as client:
            figures["run_page"] = timed(client, "/runs/big", args.repeat)
            figures["runs_first_page"] = timed(client, "/", args.repeat)
            figures["runs_search"] = timed(client, "/?q=agreement+4242", args.repeat)
            figures["runs_page_150"] = timed(client, "/?page=150", args.repeat)
            figures["performance_page"] = timed(client, "/performance", args.repeat)
    figures["tracing"] = asyncio.run(traced_runs(args.trace_steps, args.repeat))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
