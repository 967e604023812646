"""Orchestration overhead and parallel efficiency, measured side by side.

1. Overhead: a 1,000-step DAG (111 parallel chains of 9 steps, then one final step) with an
   instant model, run by maestro-lite's executor and validator, and the same DAG as a
   LangGraph ``StateGraph`` whose nodes do what a typical structured-output node does (build
   messages from the state, call the same instant model, parse its JSON with pydantic).
   Reported as microseconds per step, in wall time and in process CPU time (with an instant
   model both frameworks are CPU-bound, and CPU time is less disturbed by other load on a
   shared machine); runs alternate, best of ``--repeat``.
2. Parallel efficiency: width 8, depth 3 (8 chains of 2 steps, then a final step) with a
   model that takes 200 ms per call; wall time against the critical path (3 x 200 ms).

Run: ``python -m evals.bench_orchestration`` (LangGraph: ``pip install 'maestro-lite[bench]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import operator
import time
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel

from maestro_lite import Budget, FunctionModel, Maestro, Message, Plan, SearchFilter, Step
from maestro_lite.documents import Chunk, DocumentInfo
from maestro_lite.models import ModelCall, ModelSettings, RawResponse
from maestro_lite.retrieval import SearchHit, SearchMode

_TEXT = "The notice period is 60 days. The cap is USD 2,500,000."
_CHUNK = Chunk(
    id="d:0",
    document_id="d",
    index=0,
    text=_TEXT,
    page=1,
    start=0,
    end=len(_TEXT),
    doc_start=0,
    doc_end=len(_TEXT),
    title="Doc",
    path="d.txt",
)


class OneChunk:
    """A retriever that returns the same chunk instantly (no search cost)."""

    async def search(
        self,
        query: str,
        *,
        k: int = 8,
        filters: SearchFilter | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        return [SearchHit(chunk=_CHUNK, score=1.0, rank=1)]

    async def documents(self) -> list[DocumentInfo]:
        return [
            DocumentInfo(id="d", title="Doc", path="d.txt", pages=1, chars=len(_TEXT), chunks=1)
        ]

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        return [_CHUNK] if "d:0" in ids else []


_PLAIN = RawResponse(text='{"answer": "ok"}', model="instant", input_tokens=300, output_tokens=20)
_CITING: dict[str, RawResponse] = {}
"""Replies citing an evidence id, built once per id: the instant model costs both
frameworks the same few dictionary look-ups, not JSON encoding on one side only."""


def _answer(call: ModelCall) -> RawResponse:
    """An instant answer citing the first evidence id the step was offered, with token usage
    reported as a real provider reports it."""
    claim = (call.json_schema or {}).get("$defs", {}).get("CitedClaim")
    if claim is None:
        return _PLAIN
    items = claim["properties"]["evidence"]["items"]
    first = items["enum"][0] if "enum" in items else items["const"]  # one id: a const
    reply = _CITING.get(first)
    if reply is None:
        text = json.dumps({"answer": "ok", "claims": [{"text": "ok", "evidence": [first]}]})
        reply = _CITING[first] = _PLAIN.model_copy(update={"text": text})
    return reply


def dag(chains: int, length: int, *, queries: bool = True) -> Plan:
    """``chains`` parallel chains of ``length`` steps, then one final step."""
    steps: list[Step] = []
    for c in range(chains):
        for i in range(length):
            deps = [f"c{c}_{i - 1}"] if i else []
            steps.append(
                Step(
                    id=f"c{c}_{i}",
                    instruction=f"step {c}/{i}",
                    depends_on=deps,
                    queries=["notice"] if (i == 0 and queries) else [],
                )
            )
    steps.append(
        Step(
            id="final",
            kind="synthesize",
            instruction="combine",
            depends_on=[f"c{c}_{length - 1}" for c in range(chains)],
        )
    )
    return Plan(steps=steps)


Timing = tuple[float, float]
"""(wall seconds, CPU seconds of this process)."""


async def run_maestro(plan: Plan, model: FunctionModel, *, concurrency: int) -> Timing:
    maestro = Maestro(model, concurrency=concurrency)
    budget = Budget(max_rounds=1, max_requests=None, max_tokens=None, max_steps=len(plan.steps))
    started, cpu = time.perf_counter(), time.process_time()
    result = await maestro.run("benchmark", corpus=OneChunk(), plan=plan, budget=budget)
    elapsed = (time.perf_counter() - started, time.process_time() - cpu)
    assert result.status == "passed", [r for r in result.requirements if not r.passed][:3]
    assert len(result.steps) == len(plan.steps)
    return elapsed


class _Answer(BaseModel):
    answer: str
    claims: list[Any] = []


async def run_langgraph(plan: Plan, model: FunctionModel) -> Timing:
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        results: Annotated[dict[str, str], operator.or_]

    def node(step: Step) -> Any:
        async def run(state: State) -> dict[str, Any]:
            earlier = "\n".join(f"- {d}: {state['results'][d]}" for d in step.depends_on)
            messages = [
                Message.system("You are an analyst."),
                Message.user(f"{step.instruction}\n{earlier}"),
            ]
            raw = await model.request(messages, json_schema=None, settings=ModelSettings())
            parsed = _Answer.model_validate_json(raw.text)
            return {"results": {step.id: parsed.answer}}

        return run

    graph = StateGraph(State)
    for step in plan.steps:
        graph.add_node(step.id, node(step))
    for step in plan.steps:
        if not step.depends_on:
            graph.add_edge(START, step.id)
        elif len(step.depends_on) == 1:
            graph.add_edge(step.depends_on[0], step.id)
        else:
            graph.add_edge(list(step.depends_on), step.id)
    graph.add_edge(plan.final.id, END)
    app = graph.compile()
    started, cpu = time.perf_counter(), time.process_time()
    out = await app.ainvoke({"results": {}}, {"recursion_limit": 10_000})
    elapsed = (time.perf_counter() - started, time.process_time() - cpu)
    assert len(out["results"]) == len(plan.steps)
    return elapsed


async def overhead(repeat: int) -> dict[str, Any]:
    plan = dag(111, 9)
    n = len(plan.steps)
    ours: list[Timing] = []
    theirs: list[Timing] = []
    for _ in range(repeat):
        gc.collect()
        ours.append(await run_maestro(plan, FunctionModel(_answer), concurrency=64))
        gc.collect()
        theirs.append(await run_langgraph(plan, FunctionModel(_answer)))
    out: dict[str, Any] = {"steps": n}
    for label, index in (("wall", 0), ("cpu", 1)):
        best_ours = min(t[index] for t in ours)
        best_theirs = min(t[index] for t in theirs)
        out[label] = {
            "maestro_us_per_step": round(best_ours / n * 1e6, 1),
            "langgraph_us_per_step": round(best_theirs / n * 1e6, 1),
            "ratio": round(best_ours / best_theirs, 3),
        }
    out["maestro_runs_s"] = [round(t[0], 3) for t in ours]
    out["langgraph_runs_s"] = [round(t[0], 3) for t in theirs]
    return out


async def parallel_efficiency(latency: float, repeat: int) -> dict[str, Any]:
    async def slow(call: ModelCall) -> RawResponse:
        await asyncio.sleep(latency)
        return _answer(call)

    plan = dag(8, 2)
    walls = [
        (await run_maestro(plan, FunctionModel(slow), concurrency=8))[0] for _ in range(repeat)
    ]
    critical = 3 * latency
    best = min(walls)
    return {
        "width": 8,
        "depth": 3,
        "critical_path_s": critical,
        "wall_s": [round(w, 4) for w in walls],
        "best_over_critical": round(best / critical, 4),
        "median_over_critical": round(sorted(walls)[len(walls) // 2] / critical, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    report = {
        "overhead": asyncio.run(overhead(args.repeat)),
        "parallel": asyncio.run(parallel_efficiency(args.latency, args.repeat)),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
