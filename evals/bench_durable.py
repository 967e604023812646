"""Durable runs, measured: throughput under provider limits, and the cost of checkpoints.

1. Throughput: ``--runs`` concurrent runs (each a declared plan of three parallel steps and
   a final step: four model calls, two on the critical path) against the local
   OpenAI-compatible test server answering every call after ``--latency`` seconds, over
   real HTTP. Side by side in one process: no limiter; a concurrency limit; a
   requests-per-minute limit; a tokens-per-minute limit, with the default ``max_tokens``
   per step and with a small one. For each: calls per second (overall, and steady past the
   first second), the share of the configured limit reached, the server's own peak of
   requests in flight. Configurations alternate; medians of ``--repeat``.
2. Checkpoints: a 1,000-step plan (111 chains of 9 steps, then a final step) with an
   instant model, run without a run store and with a SQLite one (``synchronous=NORMAL``,
   the default, and ``FULL``); the difference per step, best of ``--repeat``, alternating.
   Also one ``append`` of a finished step's event alone.

Run: ``python -m evals.bench_durable`` (about five minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy

from maestro_lite import Budget, Limiter, Maestro, ProviderLimits, RunStore, SQLiteRunStore
from maestro_lite.events import StepFinished
from maestro_lite.models import FunctionModel, ModelCall, OpenAIModel, RawResponse
from maestro_lite.plan import Plan
from maestro_lite.testing import OpenAICompatibleServer

from .bench_orchestration import OneChunk, dag
from .common import machine, today


def _first_evidence(schema: dict[str, Any] | None) -> str | None:
    claim = (schema or {}).get("$defs", {}).get("CitedClaim")
    if claim is None:
        return None
    items = claim["properties"]["evidence"]["items"]
    return str(items["enum"][0] if "enum" in items else items["const"])


def _answer_text(schema: dict[str, Any] | None) -> str:
    """A valid step answer citing the first evidence id the step was offered."""
    first = _first_evidence(schema)
    if first is None:
        return '{"answer": "ok"}'
    return json.dumps({"answer": "ok", "claims": [{"text": "ok", "evidence": [first]}]})


class _Responder:
    """Answers every step, noting when each call arrived (shifted by the server's latency,
    which is the same for every call)."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []

    def __call__(self, body: dict[str, Any]) -> str:
        self.arrivals.append(time.monotonic())
        fmt = body.get("response_format") or {}
        return _answer_text(fmt.get("json_schema", {}).get("schema"))


def _steady_rate(arrivals: list[float]) -> tuple[float, int]:
    """Calls per second after the first second (past the initial burst a rate limit
    allows): the slope of a least-squares line through the arrivals, which the jitter of a
    busy machine moves less than a count between two end points. Also the most calls in
    any one-second window."""
    times = sorted(arrivals)
    later = [t for t in times if t >= times[0] + 1.0]
    steady = float("nan")
    if len(later) > 2:
        steady = float(numpy.polyfit(later, numpy.arange(len(later)), 1)[0])
    peak = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    return steady, peak


def _instant(call: ModelCall) -> RawResponse:
    text = _answer_text(call.json_schema)
    return RawResponse(text=text, model="instant", input_tokens=300, output_tokens=20)


def _budget(plan: Plan) -> Budget:
    return Budget(max_rounds=1, max_requests=None, max_tokens=None, max_steps=len(plan.steps))


async def _throughput_once(
    server: OpenAICompatibleServer,
    responder: _Responder,
    limits: ProviderLimits | None,
    output_tokens: int,
    runs: int,
) -> dict[str, float]:
    base_url = server.base_url
    plan = dag(3, 1)
    limiter = Limiter({base_url: limits}) if limits is not None else None
    finished: list[float] = []
    async with OpenAIModel("bench", base_url=base_url, timeout=60) as model:
        maestro = Maestro(model, concurrency=4, limiter=limiter, output_tokens=output_tokens)

        async def one(i: int) -> int:
            result = await maestro.run(
                "benchmark", corpus=OneChunk(), plan=plan, budget=_budget(plan), run_id=f"b{i}"
            )
            assert result.status == "passed", result.error
            finished.append(time.perf_counter() - started)
            return result.usage.total_tokens

        started = time.perf_counter()
        tokens = sum(await asyncio.gather(*(one(i) for i in range(runs))))
        wall = time.perf_counter() - started
    calls = runs * len(plan.steps)
    steady, peak = _steady_rate(responder.arrivals)
    return {
        "wall_s": wall,
        "calls_per_s": calls / wall,
        "steady_calls_per_s": steady,
        "peak_calls_in_1s": peak,
        "tokens_per_min": tokens / wall * 60,
        "steady_tokens_per_min": steady * tokens / calls * 60,
        "slowest_over_fastest_run": max(finished) / min(finished),
    }


async def throughput(runs: int, latency: float, repeat: int) -> dict[str, Any]:
    tpm = ProviderLimits(max_concurrent=None, tokens_per_minute=120_000)
    # (limits, max_tokens of each step): limits well under what the machine manages without
    # one (see "no limiter"), so that the figures measure the limiter rather than the CPU.
    # A call's token estimate includes its max_tokens: with the default 1024 against ~350
    # tokens used, reservations rather than use hold the token limit back.
    configs: dict[str, tuple[ProviderLimits | None, int]] = {
        "no limiter": (None, 1024),
        "max_concurrent=4": (ProviderLimits(max_concurrent=4), 1024),
        "requests_per_minute=600": (
            ProviderLimits(max_concurrent=None, requests_per_minute=600),
            1024,
        ),
        "tokens_per_minute=120000, max_tokens=1024": (tpm, 1024),
        "tokens_per_minute=120000, max_tokens=64": (tpm, 64),
    }
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    peaks: dict[str, int] = {}
    for _ in range(repeat):
        for name, (limits, output_tokens) in configs.items():
            responder = _Responder()
            with OpenAICompatibleServer(responder, latency=latency) as server:
                gc.collect()
                samples[name].append(
                    await _throughput_once(server, responder, limits, output_tokens, runs)
                )
                peaks[name] = max(peaks.get(name, 0), server.max_in_flight)
    report: dict[str, Any] = {"runs": runs, "calls_per_run": 4, "latency_s": latency}
    for name, (limits, _) in configs.items():
        median = {k: statistics.median(s[k] for s in samples[name]) for k in samples[name][0]}
        entry: dict[str, Any] = {k: round(v, 2) for k, v in median.items()}
        entry["server_peak_in_flight"] = peaks[name]
        if limits is not None and limits.max_concurrent is not None:
            ceiling = limits.max_concurrent / latency  # calls/s the limit allows at best
            entry["share_of_limit"] = round(median["calls_per_s"] / ceiling, 3)
        # Per-minute limits: the steady rate past the first second's burst, as a share of
        # the limit (the burst is part of what a per-minute limit allows).
        if limits is not None and limits.requests_per_minute is not None:
            entry["share_of_limit"] = round(
                median["steady_calls_per_s"] * 60 / limits.requests_per_minute, 3
            )
        if limits is not None and limits.tokens_per_minute is not None:
            entry["share_of_limit"] = round(
                median["steady_tokens_per_min"] / limits.tokens_per_minute, 3
            )
        report[name] = entry
    return report


async def _checkpointed_run(plan: Plan, store: RunStore | None) -> float:
    maestro = Maestro(FunctionModel(_instant), concurrency=64, run_store=store)
    started = time.perf_counter()
    result = await maestro.run("benchmark", corpus=OneChunk(), plan=plan, budget=_budget(plan))
    elapsed = time.perf_counter() - started
    assert result.status == "passed"
    return elapsed


async def checkpoints(repeat: int, directory: Path) -> dict[str, Any]:
    plan = dag(111, 9)
    n = len(plan.steps)
    walls: dict[str, list[float]] = {"none": [], "NORMAL": [], "FULL": []}
    events = 0
    for i in range(repeat):
        gc.collect()
        walls["none"].append(await _checkpointed_run(plan, None))
        modes: tuple[Literal["NORMAL", "FULL"], ...] = ("NORMAL", "FULL")
        for mode in modes:
            store = SQLiteRunStore(directory / f"{mode}-{i}.sqlite3", synchronous=mode)
            gc.collect()
            walls[mode].append(await _checkpointed_run(plan, store))
            events = len(store.events(store.list(limit=1)[0].run_id))
            store.close()
    best = {mode: min(w) for mode, w in walls.items()}

    # One append of a finished step's event (its full result: prompt, evidence, attempts).
    store = SQLiteRunStore(directory / "append.sqlite3")
    result = await Maestro(FunctionModel(_instant), run_store=store).run(
        "one", corpus=OneChunk(), plan=dag(1, 1), budget=_budget(dag(1, 1)), run_id="one"
    )
    event = next(e for e in result.events if isinstance(e, StepFinished))
    store.create(store.get("one").spec.model_copy(update={"run_id": "append"}))
    event = event.model_copy(update={"run_id": "append"})
    count = 2000
    started = time.perf_counter()
    for _ in range(count):
        store.append(event)
    append_us = (time.perf_counter() - started) / count * 1e6
    store.close()
    return {
        "steps": n,
        "events_per_run": events,
        "us_per_step_without_store": round(best["none"] / n * 1e6, 1),
        "checkpoint_us_per_step_NORMAL": round((best["NORMAL"] - best["none"]) / n * 1e6, 1),
        "checkpoint_us_per_step_FULL": round((best["FULL"] - best["none"]) / n * 1e6, 1),
        "append_step_finished_us_NORMAL": round(append_us, 1),
        "walls_s": {mode: [round(w, 3) for w in ws] for mode, ws in walls.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        report = {
            "date": today(),
            "machine": machine(),
            "throughput": asyncio.run(throughput(args.runs, args.latency, args.repeat)),
            "checkpoints": asyncio.run(checkpoints(args.repeat, Path(directory))),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
