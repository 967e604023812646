"""The run store, on SQLite and on PostgreSQL (the ``db`` fixture): what a run leaves behind,
ownership, several processes at once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from maestro_lite import EVENT_ADAPTER, RunNotFound, UserError
from maestro_lite.budget import Budget
from maestro_lite.events import ModelAttempted, RunFinished, StepFinished
from maestro_lite.orchestrator import Maestro
from maestro_lite.runs import RunSpec, export_run
from maestro_lite.usage import Usage

from ..orchestration.conftest import MemoryRetriever
from ..services.stores import run_store
from .conftest import fix_then_replan_model

TASK = "Compare the two versions"


def spec(run_id: str) -> RunSpec:
    return RunSpec.of(
        run_id=run_id,
        task=f"task {run_id}",
        corpus="contracts",
        requirements=["cite sources"],
        budget=Budget(),
        plan=None,
        output_type=None,
        data_types={},
        cache=True,
    )


async def test_a_finished_run_is_fully_recorded(contracts: MemoryRetriever, db: str) -> None:
    store = run_store(db)
    result = await Maestro(fix_then_replan_model(), run_store=store).run(
        TASK, corpus=contracts, requirements=["cover the governing law"], run_id="r1"
    )
    record = store.get("r1")
    assert record.status == "passed" and record.summary.finished_at is not None
    assert record.summary.usage == result.usage
    assert record.summary.active_seconds > 0
    assert record.spec.task == TASK and record.spec.corpus_object
    assert [p.source for p in record.plans] == ["planner", "replan"]
    assert [r.decision for r in record.rounds] == [r.decision for r in result.rounds]
    assert record.rounds[-1].plan == result.plan
    # Every step of every round, with its full result (prompt, evidence, attempts).
    assert {(s.round, s.step_id) for s in record.steps} == {
        (1, "s1"),
        (1, "s2"),
        (1, "s3"),
        (2, "s3"),
        (3, "s4"),
        (3, "s5"),
        (3, "s6"),
    }
    assert record.step("s6", 3) == result.steps["s6"]
    assert not record.running
    # The events, in order, as emitted (step results are stored once, in `steps`).
    events = store.events("r1")
    assert [e.kind for e in events] == [e.kind for e in result.events]
    assert all(e.result is None for e in events if isinstance(e, StepFinished))
    assert sum(isinstance(e, ModelAttempted) for e in events) == result.usage.requests


async def test_export_is_the_full_trace_as_json_lines(contracts: MemoryRetriever, db: str) -> None:
    store = run_store(db)
    result = await Maestro(fix_then_replan_model(), run_store=store).run(
        TASK, corpus=contracts, run_id="r1"
    )
    lines = list(export_run(store, "r1"))
    head = json.loads(lines[0])
    assert head["kind"] == "run" and head["summary"]["status"] == "passed"
    assert head["spec"]["task"] == TASK
    events = [EVENT_ADAPTER.validate_json(line) for line in lines[1:]]
    assert events == result.events  # step events with their full results again
    with pytest.raises(RunNotFound):
        list(export_run(store, "nope"))


def test_runs_are_listed_newest_first_and_by_status(db: str) -> None:
    store = run_store(db)
    for run_id in ("a", "b", "c"):
        store.create(spec(run_id))
    store.append(RunFinished(run_id="b", status="unmet", usage=Usage(requests=3), wall_seconds=1))
    assert [r.run_id for r in store.list()] == ["c", "b", "a"]
    assert [r.run_id for r in store.list(status="running")] == ["c", "a"]
    assert [r.run_id for r in store.list(limit=1)] == ["c"]
    unmet = store.get("b").summary
    assert unmet.status == "unmet" and unmet.usage.requests == 3
    with pytest.raises(UserError, match="already exists"):
        store.create(spec("a"))
    with pytest.raises(RunNotFound):
        store.get("zzz")


OWNER = """
import sys
from maestro_lite.budget import Budget
from maestro_lite.runs import PostgresRunStore, RunSpec, SQLiteRunStore

where = sys.argv[1]
store = PostgresRunStore(where) if where.startswith("postgresql://") else SQLiteRunStore(where)
store.create(RunSpec.of(run_id="theirs", task="t", corpus=None, requirements=[], budget=Budget(),
                        plan=None, output_type=None, data_types={}, cache=True))
print("recorded", flush=True)
sys.stdin.read()  # runs until the test closes our stdin
"""


def test_a_run_is_resumed_by_one_owner_at_a_time(db: str) -> None:
    store = run_store(db)
    store.create(spec("mine"))
    with pytest.raises(UserError, match="already running in this process"):
        store.claim("mine")
    # A run recorded by a process that is still alive is not taken over...
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, db],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline() == "recorded\n"
        with pytest.raises(UserError, match=f"still running in process .*:{owner.pid}"):
            store.claim("theirs")
        assert store.get("theirs").status == "running"
        # force takes it over anyway (for when a pid was reused by an unrelated process)
        assert run_store(db).claim("theirs", force=True).run_id == "theirs"
    finally:
        owner.communicate("")
    # ...but once that process is gone, it is.
    assert store.claim("theirs").summary.owner == f"{socket.gethostname()}:{os.getpid()}"
    store.append(RunFinished(run_id="theirs", status="passed", usage=Usage(), wall_seconds=1))
    with pytest.raises(UserError, match="already finished"):
        run_store(db).claim("theirs")


WRITER = """
import sys
from maestro_lite.budget import Budget
from maestro_lite.events import ModelAttempted
from maestro_lite.runs import PostgresRunStore, RunSpec, SQLiteRunStore
from maestro_lite.usage import Usage

db, run_id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = PostgresRunStore(db) if db.startswith("postgresql://") else SQLiteRunStore(db)
store.create(RunSpec.of(run_id=run_id, task="t", corpus=None, requirements=[], budget=Budget(),
                        plan=None, output_type=None, data_types={}, cache=True))
for _ in range(n):
    store.append(ModelAttempted(run_id=run_id, purpose="plan", model="m", outcome="ok",
                                usage=Usage(requests=1, input_tokens=10), seconds=0.0))
"""


def test_several_processes_record_into_one_store(db: str) -> None:
    run_store(db).close()  # create the schema once, as the first run would
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, db, f"w{i}", "150"]) for i in range(3)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    store = run_store(db)
    for i in range(3):
        assert len(store.events(f"w{i}")) == 150
        assert store.get(f"w{i}").summary.usage.input_tokens == 1500
