"""Workers sharing one PostgreSQL queue, measured: jobs per second with 1, 2 and 4 worker
processes, and the cost of a checkpoint per step in PostgreSQL next to SQLite.

1. Queue: ``evals.queue_worker`` processes (each job one model call; ``--max-jobs`` at once
   per worker) against the fake OpenAI-compatible server answering after ``--latency``
   seconds, all sharing a PostgreSQL database. The workers start and report ready first;
   then ``--jobs-per-worker`` jobs per worker are queued, and the time runs from the first
   job's start to the last one's end (as the jobs record them). Ideal: ``workers * max_jobs
   / latency`` jobs per second; the efficiency is the share of it reached. Worker counts
   alternate; medians of ``--repeat``.
2. Checkpoints: the 1,000-step plan of ``evals.bench_durable`` with an instant model, run
   without a run store, with SQLite (``synchronous=NORMAL``, the default), with PostgreSQL
   (defaults: each commit flushed to disk) and with PostgreSQL's ``synchronous_commit=off``
   (the nearest to SQLite's ``NORMAL``), alternating; the difference per step, best of
   ``--repeat``. Also one ``append`` of a finished step's event alone in each.

PostgreSQL is ``--database-url``, or a server started from Debian's package on 127.0.0.1 for
the run with ``fsync`` on (as in production; the tests turn it off).

Run: ``python -m evals.bench_queue`` (about three minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from maestro_lite import Maestro, PostgresRunStore, SQLiteRunStore
from maestro_lite.events import StepFinished
from maestro_lite.models import FunctionModel
from maestro_lite.runs.sql import SQLRunStore
from maestro_lite.scheduling import JobRecord, PostgresScheduleStore
from maestro_lite.testing import OpenAICompatibleServer

from .bench_durable import _budget, _checkpointed_run, _instant
from .bench_orchestration import OneChunk, dag
from .common import machine, today
from .queue_worker import PingJob, worker_env

ROOT = Path(__file__).resolve().parents[1]


def _fresh(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP SCHEMA IF EXISTS maestro CASCADE")


@contextmanager
def _workers(n: int, max_jobs: int, base_url: str, url: str, home: Path) -> Iterator[None]:
    """``n`` worker processes, each ready to take jobs."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "evals.queue_worker", str(max_jobs)],
            env=worker_env(home / f"machine{i}", base_url, MAESTRO_DATABASE_URL=url),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
            if proc.stdout is not None:
                proc.stdout.close()


def _queue_once(n: int, args: argparse.Namespace, url: str, base_url: str, home: Path) -> float:
    _fresh(url)
    jobs = n * args.jobs_per_worker
    with PostgresScheduleStore(url) as store, _workers(n, args.max_jobs, base_url, url, home):
        for i in range(jobs):
            store.submit(JobRecord.submission(PingJob(text=f"job {i}"), name="ping"))
        while store.job_counts().get("passed", 0) < jobs:
            time.sleep(0.02)
        done = store.jobs(limit=None)
    # From the first job's start to the last one's end, as the workers recorded them (the
    # queue fills faster than the workers drain it, so they never wait for a submission).
    first = min(j.started_at for j in done if j.started_at is not None)
    last = max(j.finished_at for j in done if j.finished_at is not None)
    return float(jobs / (last - first).total_seconds())


def queue(args: argparse.Namespace, url: str, home: Path) -> dict[str, Any]:
    rates: dict[int, list[float]] = {n: [] for n in args.workers}
    with OpenAICompatibleServer(lambda body: "pong", latency=args.latency) as server:
        for _ in range(args.repeat):
            for n in args.workers:
                rates[n].append(_queue_once(n, args, url, server.base_url, home))
        answered = server.answered
    report: dict[str, Any] = {"calls_answered": answered}
    for n, values in rates.items():
        ideal = n * args.max_jobs / args.latency
        median = statistics.median(values)
        report[f"{n}_workers"] = {
            "jobs_per_s": round(median, 2),
            "ideal_jobs_per_s": round(ideal, 2),
            "efficiency": round(median / ideal, 3),
            "runs": [round(v, 2) for v in values],
        }
    return report


async def _append_us(store: SQLRunStore, count: int) -> float:
    """One ``append`` of a finished step's event (its full result), in microseconds."""
    plan = dag(1, 1)
    result = await Maestro(FunctionModel(_instant), run_store=store).run(
        "one", corpus=OneChunk(), plan=plan, budget=_budget(plan), run_id="one"
    )
    event = next(e for e in result.events if isinstance(e, StepFinished))
    store.create(store.get("one").spec.model_copy(update={"run_id": "append"}))
    event = event.model_copy(update={"run_id": "append"})
    started = time.perf_counter()
    for _ in range(count):
        store.append(event)
    return (time.perf_counter() - started) / count * 1e6


def _async_commit(url: str, on: bool) -> None:
    """``synchronous_commit=off`` for the database's new sessions: a commit returns before
    its WAL reaches the disk (a server crash may lose the last commits, never consistency),
    the nearest PostgreSQL has to SQLite's ``NORMAL``."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        database = db.info.dbname
        setting = "off" if on else "on"
        db.execute(f"ALTER DATABASE {database} SET synchronous_commit = {setting}")


def _open(kind: str, url: str, path: Path) -> SQLRunStore:
    return SQLiteRunStore(path) if kind == "sqlite" else PostgresRunStore(url)


async def checkpoints(repeat: int, url: str, directory: Path) -> dict[str, Any]:
    plan = dag(111, 9)
    n = len(plan.steps)
    kinds = ("sqlite", "postgres", "postgres_async_commit")
    walls: dict[str, list[float]] = {"none": [], **{kind: [] for kind in kinds}}
    for i in range(repeat):
        gc.collect()
        walls["none"].append(await _checkpointed_run(plan, None))
        for kind in kinds:
            _fresh(url)
            _async_commit(url, kind == "postgres_async_commit")
            store = _open(kind, url, directory / f"{i}.sqlite3")
            gc.collect()
            walls[kind].append(await _checkpointed_run(plan, store))
            store.close()
    best = {kind: min(w) for kind, w in walls.items()}
    appends = {}
    for kind in kinds:
        _fresh(url)
        _async_commit(url, kind == "postgres_async_commit")
        with _open(kind, url, directory / f"append-{kind}.sqlite3") as store:
            appends[kind] = round(await _append_us(store, 1000), 1)
    _async_commit(url, False)
    return {
        "steps": n,
        "us_per_step_without_store": round(best["none"] / n * 1e6, 1),
        "checkpoint_us_per_step": {
            kind: round((best[kind] - best["none"]) / n * 1e6, 1) for kind in kinds
        },
        "append_step_finished_us": appends,
        "walls_s": {kind: [round(w, 3) for w in ws] for kind, ws in walls.items()},
    }


@contextmanager
def _postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.services.postgres import running_postgres

    with running_postgres(durable=True) as started:
        yield started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--max-jobs", type=int, default=2)
    parser.add_argument("--jobs-per-worker", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, _postgres(args.database_url) as url:
        report = {
            "date": today(),
            "machine": machine(),
            "queue": queue(args, url, Path(directory)),
            "checkpoints": asyncio.run(checkpoints(args.repeat, url, Path(directory))),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
