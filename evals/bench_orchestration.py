"""Orchestration overhead and parallel efficiency, measured side by side.

1. Overhead: a 1,000-step DAG (111 parallel chains of 9 steps, then one final step) with an
   instant model, run by maestro-lite's executor and validator, and the same DAG as a
   LangGraph ``StateGraph`` whose nodes do what a typical structured-output node does (build
   messages from the state, call the same instant model, parse its JSON with pydantic).
   Reported as microseconds per step, in wall time and in process CPU time (with an instant
   model both frameworks are CPU-bound, and CPU time is less disturbed by other load on a
   shared machine); runs alternate, best of ``--repeat``.
   The same-work comparison isolates orchestration: LangGraph's nodes run maestro-lite's own
   step (the executor's per-step code) and maestro-lite's validator checks the results after
   the graph, so both frameworks do identical step work; a plain loop running the same steps
   in order, one after another, measures that work alone. Each framework's orchestration
   overhead is its time less the loop's.
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
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel

from maestro_lite import Budget, Maestro, Message, Plan, SearchFilter, Step
from maestro_lite.documents import Chunk, DocumentInfo
from maestro_lite.events import Event
from maestro_lite.executor import Executor
from maestro_lite.models import ModelCall, ModelSettings, RawResponse
from maestro_lite.models.generate import UsageMeter
from maestro_lite.result import StepResult
from maestro_lite.retrieval import SearchHit, SearchMode
from maestro_lite.testing import FunctionModel
from maestro_lite.validator import Validator

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

    app = _graph(plan, State, node)
    started, cpu = time.perf_counter(), time.process_time()
    out = await app.ainvoke({"results": {}}, {"recursion_limit": 10_000})
    elapsed = (time.perf_counter() - started, time.process_time() - cpu)
    assert len(out["results"]) == len(plan.steps)
    return elapsed


def _graph(plan: Plan, state: Any, node: Callable[[Step], Any]) -> Any:
    """The plan as a compiled LangGraph ``StateGraph``: a node per step, an edge per
    dependency (a step with several dependencies waits for all of them)."""
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(state)
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
    return graph.compile()


class _SameWork:
    """maestro-lite's step work without its orchestration: the executor's code for one step
    and the validator's checks of a round, as the run loop configures them for the plan
    above (no corpus filters, no timeout, one round). The executor's ``_run_step`` is
    private: the benchmark uses it so that both frameworks run the very same step code."""

    def __init__(self, plan: Plan, model: FunctionModel) -> None:
        corpus = OneChunk()
        self.plan = plan
        self.executor = Executor(model, corpus, concurrency=64)
        self.validator = Validator(model, corpus)
        self.meter = UsageMeter()
        self.events: list[Event] = []
        self.exhausted: list[Any] = []
        self.known: dict[str, Chunk] = {}

    async def step(self, step: Step, deps: list[StepResult]) -> StepResult:
        return await self.executor._run_step(
            step,
            task="benchmark",
            run_id="bench",
            meter=self.meter,
            emit=self.events.append,
            round=1,
            deps=deps,
            feedback=None,
            data_type=None,
            exhausted=self.exhausted,
            known=self.known,
        )

    async def check(self, results: dict[str, StepResult]) -> None:
        report, _ = await self.validator.validate(
            task="benchmark",
            plan=self.plan,
            results=results,
            requirements=[],
            output=results[self.plan.final.id].answer,
            output_type=None,
            round=1,
            run_id="bench",
            meter=self.meter,
            emit=self.events.append,
        )
        assert report.passed, [r for r in report.results if not r.passed][:3]
        assert len(results) == len(self.plan.steps)


async def run_plain_loop(plan: Plan, model: FunctionModel) -> Timing:
    """The step work alone: each step in plan order (dependencies first), one at a time."""
    work = _SameWork(plan, model)
    started, cpu = time.perf_counter(), time.process_time()
    results: dict[str, StepResult] = {}
    for step in plan.steps:
        results[step.id] = await work.step(step, [results[d] for d in step.depends_on])
    await work.check(results)
    return time.perf_counter() - started, time.process_time() - cpu


async def run_langgraph_same_work(plan: Plan, model: FunctionModel) -> Timing:
    """LangGraph orchestrating maestro-lite's step work, then maestro-lite's validator."""
    work = _SameWork(plan, model)

    class State(TypedDict):
        results: Annotated[dict[str, StepResult], operator.or_]

    def node(step: Step) -> Any:
        async def run(state: State) -> dict[str, Any]:
            deps = [state["results"][d] for d in step.depends_on]
            return {"results": {step.id: await work.step(step, deps)}}

        return run

    app = _graph(plan, State, node)
    started, cpu = time.perf_counter(), time.process_time()
    out = await app.ainvoke({"results": {}}, {"recursion_limit": 10_000})
    await work.check({s.id: out["results"][s.id] for s in plan.steps})
    return time.perf_counter() - started, time.process_time() - cpu


async def overhead(repeat: int) -> dict[str, Any]:
    plan = dag(111, 9)
    n = len(plan.steps)
    runners: dict[str, Callable[[FunctionModel], Awaitable[Timing]]] = {
        "maestro": lambda m: run_maestro(plan, m, concurrency=64),
        "langgraph": lambda m: run_langgraph(plan, m),
        "langgraph_same_work": lambda m: run_langgraph_same_work(plan, m),
        "plain_loop": lambda m: run_plain_loop(plan, m),
    }
    timings: dict[str, list[Timing]] = {name: [] for name in runners}
    for _ in range(repeat):
        for name, runner in runners.items():  # alternating, so drift hits all alike
            gc.collect()
            timings[name].append(await runner(FunctionModel(_answer)))

    def us(name: str, index: int) -> float:
        return min(t[index] for t in timings[name]) / n * 1e6

    out: dict[str, Any] = {"steps": n}
    for label, index in (("wall", 0), ("cpu", 1)):
        ours, theirs = us("maestro", index), us("langgraph", index)
        same, work = us("langgraph_same_work", index), us("plain_loop", index)
        out[label] = {
            "maestro_us_per_step": round(ours, 1),
            "langgraph_us_per_step": round(theirs, 1),
            "ratio": round(ours / theirs, 3),
            "same_work": {
                "step_work_alone_us_per_step": round(work, 1),
                "langgraph_us_per_step": round(same, 1),
                "maestro_overhead_us_per_step": round(ours - work, 1),
                "langgraph_overhead_us_per_step": round(same - work, 1),
                "overhead_ratio": round((ours - work) / (same - work), 3),
            },
        }
    out["runs_s"] = {name: [round(t[0], 3) for t in runs] for name, runs in timings.items()}
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
