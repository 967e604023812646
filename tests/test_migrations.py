"""Versioned schemas: a database written by an older maestro-lite is upgraded in place when a
store opens it, on SQLite and on PostgreSQL (the ``db`` fixture); one written by a newer
version is refused in one line."""

from __future__ import annotations

import pytest

from maestro_lite._db import Backend, PostgresBackend, SQLiteBackend, migrate
from maestro_lite.errors import StoreError
from maestro_lite.events import RunFinished, StepFinished, StepStarted
from maestro_lite.runs import sql as run_sql
from maestro_lite.scheduling import JobRecord, RunJob
from maestro_lite.scheduling import _sql_store as schedule_sql
from maestro_lite.usage import Usage

from .services.stores import run_store, schedule_store


def _backend(db: str) -> Backend:
    if db.startswith("postgresql://"):
        return PostgresBackend(db, "test")
    return SQLiteBackend(db, "test")


def _version(db: str, store: str) -> int:
    backend = _backend(db)
    try:
        with backend.read() as tx:
            return int(tx.one("SELECT version FROM schema_versions WHERE store = ?", store)[0])
    finally:
        backend.close()


def test_a_run_store_one_migration_behind_is_upgraded_with_its_runs(db: str) -> None:
    backend = _backend(db)
    migrate(backend, "runs", run_sql.MIGRATIONS[:-1])
    with backend.write() as tx:  # a run as the previous version wrote it: no steps.seq
        tx.run(
            "INSERT INTO runs (run_id, task, spec, status, started_at, updated_at, "
            "session_started_at, usage) VALUES ('old', 't', ?, 'running', ?, ?, ?, ?)",
            _spec_json("old"),
            *["2026-01-01T00:00:00+00:00"] * 3,
            run_sql._usage_json(Usage()),
        )
        for step in ("s2", "s1"):
            tx.run(
                "INSERT INTO steps (run_id, round, step_id, status) "
                "VALUES ('old', 1, ?, 'running')",
                step,
            )
    backend.close()

    store = run_store(db)
    assert _version(db, "runs") == len(run_sql.MIGRATIONS)
    assert store.get("old").running == [(1, "s2"), (1, "s1")]  # the order they were written
    store.append(StepStarted(run_id="old", step_id="s3", round=1))
    store.append(StepFinished(run_id="old", step_id="s2", round=1, result=None))
    store.append(RunFinished(run_id="old", status="failed", usage=Usage(), wall_seconds=1))
    record = store.get("old")
    assert record.running == [(1, "s1"), (1, "s3")] and record.status == "failed"


def test_a_schedule_store_without_leases_gains_them_and_keeps_its_jobs(db: str) -> None:
    backend = _backend(db)
    migrate(backend, "schedules", schedule_sql.MIGRATIONS[:-1])
    queued = JobRecord.submission(RunJob(task="from before"), name="old")
    with backend.write() as tx:
        tx.run(
            "INSERT INTO jobs (job_id, status, data) VALUES (?, ?, ?)",
            queued.job_id,
            queued.status,
            queued.model_dump_json(),
        )
    backend.close()

    store = schedule_store(db, lease_seconds=60)
    assert _version(db, "schedules") == len(schedule_sql.MIGRATIONS)
    claimed = store.claim_next()
    assert claimed is not None and claimed.job_id == queued.job_id
    assert store.renew_leases([queued.job_id]) == []  # the lease columns exist and hold it


def test_tables_of_a_release_before_versioning_are_adopted(db: str) -> None:
    """The first versioned release finds the tables but no ``schema_versions``."""
    backend = _backend(db)
    with backend.write() as tx:
        if db.startswith("postgresql://"):
            tx.run("CREATE SCHEMA IF NOT EXISTS maestro")
        for statement in run_sql.MIGRATIONS[0].statements(backend.dialect):
            tx.run(statement)
    backend.close()
    store = run_store(db)
    assert store.list() == [] and _version(db, "runs") == len(run_sql.MIGRATIONS)


def test_a_database_of_a_newer_version_is_refused(db: str) -> None:
    run_store(db).close()
    backend = _backend(db)
    with backend.write() as tx:
        tx.run("UPDATE schema_versions SET version = 99 WHERE store = 'runs'")
    backend.close()
    with pytest.raises(StoreError, match=r"newer maestro-lite \(schema 99"):
        run_store(db)


def _spec_json(run_id: str) -> str:
    from maestro_lite.budget import Budget
    from maestro_lite.runs import RunSpec

    return RunSpec.of(
        run_id=run_id,
        task="t",
        corpus=None,
        requirements=[],
        budget=Budget(),
        plan=None,
        output_type=None,
        data_types={},
        cache=True,
    ).model_dump_json()
