"""The schedule store over SQL: one implementation for SQLite and PostgreSQL (see
:mod:`maestro_lite.scheduling.store` for what it keeps and why each change is one
transaction).

Jobs are leased: :meth:`SQLScheduleStore.claim_next` gives a job to one worker until
``lease_seconds`` after its claim or its last :meth:`SQLScheduleStore.renew_leases`
(the worker's heartbeat). A job whose lease expired (its worker died, on any machine) is
claimable again, and the next worker resumes its runs from their checkpoints. In PostgreSQL
the claim takes the oldest claimable row with ``FOR UPDATE SKIP LOCKED``, so workers claiming
at once each take a different job without waiting for each other.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from .._db import Backend, Db, Migration, SQLStore
from ..errors import UserError
from ..runs.sql import _alive, _owner
from .jobs import FINISHED_JOBS, JobOutcome, JobRecord, JobStatus
from .schedules import Firing, Schedule
from .triggers import Trigger, check_triggers
from .watch import SeenFile, Watch

__all__ = ["DEFAULT_LEASE_SECONDS", "MIGRATIONS", "SQLScheduleStore"]

M = TypeVar("M", bound=BaseModel)

DEFAULT_LEASE_SECONDS = 60.0

_TABLES = """
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    next_due TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS triggers (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watches (
    name TEXT PRIMARY KEY,
    owner TEXT,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watch_files (
    watch TEXT NOT NULL,
    path TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (watch, path)
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status)
"""

MIGRATIONS: tuple[Migration, ...] = (
    # 1: the tables (PostgreSQL orders jobs by a serial column, SQLite by rowid).
    Migration(_TABLES, _TABLES + ";\nALTER TABLE jobs ADD COLUMN IF NOT EXISTS pos BIGSERIAL"),
    # 2: leases: the worker holding a running job, and until when (epoch seconds).
    Migration(
        "ALTER TABLE jobs ADD COLUMN worker TEXT;ALTER TABLE jobs ADD COLUMN lease_until REAL"
    ),
)
"""The schedule store's schema, version by version (see :func:`maestro_lite._db.migrate`)."""

_Kind = Literal["schedule", "trigger", "watch"]
_TABLE: dict[_Kind, str] = {"schedule": "schedules", "trigger": "triggers", "watch": "watches"}
_LISTS: dict[_Kind, str] = {
    "schedule": "maestro schedule list",
    "trigger": "maestro trigger list",
    "watch": "maestro watches list",
}
_NAMES = "maestro names"
"""The lock of every named definition: names are shared by schedules, triggers and watches."""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


class SQLScheduleStore(SQLStore):
    """Schedules, triggers, watches and the job queue in a SQL database (a
    :class:`~maestro_lite._db.Backend`); the subclasses open SQLite or PostgreSQL.

    Args:
        backend: The open database; its schema is brought up to date (:data:`MIGRATIONS`).
        lease_seconds: How long a claimed job stays this worker's without a heartbeat.
        worker_id: Who holds the jobs this store claims; ``host:pid`` when ``None`` (two
            stores in one process act as two workers with ids of their own).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        worker_id: str | None = None,
    ) -> None:
        super().__init__(backend, "schedules", MIGRATIONS)
        self.lease_seconds = lease_seconds
        self._me = worker_id or _owner()

    def _read(self, sql: str, *params: Any) -> builtins.list[Any]:
        with self._backend.read() as db:
            return db.all(sql, *params)

    # -- named definitions ----------------------------------------------------------------

    @staticmethod
    def _check_free(db: Db, kind: _Kind, name: str, replace: bool) -> None:
        for other, table in _TABLE.items():
            if other == kind and replace:
                continue
            if db.one(f"SELECT 1 FROM {table} WHERE name = ?", name):
                raise UserError(
                    f"a {other} named {name!r} exists already",
                    hint="Names are shared by schedules, watches and triggers (triggers "
                    f"follow them by name); remove it first or pick another ({_LISTS[other]}).",
                )

    @staticmethod
    def _get(db: Db, kind: _Kind, name: str, model: type[M]) -> M:
        row = db.one(f"SELECT data FROM {_TABLE[kind]} WHERE name = ?", name)
        if row is None:
            raise UserError(f"no {kind} named {name!r}", hint=f"See `{_LISTS[kind]}`.")
        return model.model_validate_json(row[0])

    def _one(self, kind: _Kind, name: str, model: type[M]) -> M:
        with self._backend.read() as db:
            return self._get(db, kind, name, model)

    def _all(self, kind: _Kind, model: type[M]) -> builtins.list[M]:
        rows = self._read(f"SELECT data FROM {_TABLE[kind]} ORDER BY name")
        return [model.model_validate_json(data) for (data,) in rows]

    def _remove(self, kind: _Kind, name: str, model: type[M]) -> M:
        with self._backend.write(_NAMES) as db:
            found = self._get(db, kind, name, model)
            db.run(f"DELETE FROM {_TABLE[kind]} WHERE name = ?", name)
            if kind == "watch":
                db.run("DELETE FROM watch_files WHERE watch = ?", name)
        return found

    @staticmethod
    def _put_named(db: Db, kind: Literal["schedule", "trigger"], item: Schedule | Trigger) -> None:
        if isinstance(item, Schedule):
            db.run(
                "INSERT INTO schedules (name, next_due, data) VALUES (?, ?, ?) ON CONFLICT "
                "(name) DO UPDATE SET next_due = excluded.next_due, data = excluded.data",
                item.name,
                _iso(item.next_due),
                item.model_dump_json(),
            )
        else:
            db.run(
                "INSERT INTO triggers (name, data) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET data = excluded.data",
                item.name,
                item.model_dump_json(),
            )

    # -- schedules ------------------------------------------------------------------------

    def add_schedule(self, schedule: Schedule, *, replace: bool = False) -> None:
        with self._backend.write(_NAMES) as db:
            self._check_free(db, "schedule", schedule.name, replace)
            self._put_named(db, "schedule", schedule)

    def schedules(self) -> builtins.list[Schedule]:
        return self._all("schedule", Schedule)

    def schedule(self, name: str) -> Schedule:
        return self._one("schedule", name, Schedule)

    def remove_schedule(self, name: str) -> Schedule:
        return self._remove("schedule", name, Schedule)

    def pause_schedule(self, name: str, paused: bool, *, now: datetime) -> Schedule:
        with self._backend.write(_NAMES) as db:
            current = self._get(db, "schedule", name, Schedule)
            update: dict[str, Any] = {"paused": paused}
            if current.paused and not paused:
                update["next_due"] = current.next_after(now)
            changed = current.model_copy(update=update)
            self._put_named(db, "schedule", changed)
        return changed

    def fire(self, firing: Firing, job: JobRecord | None) -> bool:
        with self._backend.write(_NAMES) as db:
            row = db.one("SELECT data FROM schedules WHERE name = ?", firing.schedule)
            if row is None:
                return False
            current = Schedule.model_validate_json(row[0])
            if current.paused or current.next_due > firing.due:
                return False  # removed, paused, or handled by another worker meanwhile
            update: dict[str, Any] = {"next_due": firing.next_due}
            if job is not None:
                update["last_fired"] = firing.due
                self._insert_job(db, job)
            self._put_named(db, "schedule", current.model_copy(update=update))
        return True

    # -- triggers -------------------------------------------------------------------------

    def add_trigger(self, trigger: Trigger, *, replace: bool = False) -> None:
        with self._backend.write(_NAMES) as db:
            self._check_free(db, "trigger", trigger.name, replace)
            others = [
                Trigger.model_validate_json(data) for (data,) in db.all("SELECT data FROM triggers")
            ]
            check_triggers(
                [t for t in others if t.name != trigger.name] + [trigger], first=trigger.name
            )
            self._put_named(db, "trigger", trigger)

    def triggers(self) -> builtins.list[Trigger]:
        return self._all("trigger", Trigger)

    def remove_trigger(self, name: str) -> Trigger:
        return self._remove("trigger", name, Trigger)

    # -- watches --------------------------------------------------------------------------

    def add_watch(self, watch: Watch, *, replace: bool = False) -> None:
        with self._backend.write(_NAMES) as db:
            self._check_free(db, "watch", watch.name, replace)
            db.run(
                "INSERT INTO watches (name, data) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET data = excluded.data",
                watch.name,
                watch.model_dump_json(),
            )

    def watches(self) -> builtins.list[Watch]:
        return self._all("watch", Watch)

    def watch(self, name: str) -> Watch:
        return self._one("watch", name, Watch)

    def remove_watch(self, name: str) -> Watch:
        return self._remove("watch", name, Watch)

    def claim_watch(self, name: str) -> bool:
        with self._backend.write(_NAMES) as db:
            row = db.one("SELECT owner FROM watches WHERE name = ?", name)
            if row is None:
                return False
            if row[0] not in (None, self._me) and _alive(row[0]):
                return False
            db.run("UPDATE watches SET owner = ? WHERE name = ?", self._me, name)
        return True

    def release_watch(self, name: str) -> None:
        with self._backend.write(_NAMES) as db:
            db.run("UPDATE watches SET owner = NULL WHERE name = ? AND owner = ?", name, self._me)

    def seen_files(self, watch: str) -> dict[str, SeenFile]:
        rows = self._read("SELECT data FROM watch_files WHERE watch = ?", watch)
        files = [SeenFile.model_validate_json(data) for (data,) in rows]
        return {f.path: f for f in files}

    def record_files(
        self, watch: str, files: Sequence[SeenFile], jobs: Sequence[JobRecord]
    ) -> None:
        with self._backend.write(f"watch {watch}") as db:
            for f in files:
                db.run(
                    "INSERT INTO watch_files (watch, path, data) VALUES (?, ?, ?) "
                    "ON CONFLICT (watch, path) DO UPDATE SET data = excluded.data",
                    watch,
                    f.path,
                    f.model_dump_json(),
                )
            for job in jobs:
                self._insert_job(db, job)

    def forget_files(self, watch: str, paths: Sequence[str]) -> None:
        with self._backend.write(f"watch {watch}") as db:
            for path in paths:
                db.run("DELETE FROM watch_files WHERE watch = ? AND path = ?", watch, path)

    # -- jobs -----------------------------------------------------------------------------

    @staticmethod
    def _insert_job(db: Db, job: JobRecord) -> None:
        db.run(
            "INSERT INTO jobs (job_id, status, data) VALUES (?, ?, ?)",
            job.job_id,
            job.status,
            job.model_dump_json(),
        )

    @staticmethod
    def _get_job(db: Db, job_id: str) -> JobRecord:
        row = db.one(f"SELECT data FROM jobs WHERE job_id = ?{db.for_update}", job_id)
        if row is None:
            raise UserError(f"no job with id {job_id!r}", hint="See `maestro jobs list`.")
        return JobRecord.model_validate_json(row[0])

    @staticmethod
    def _put_job(db: Db, job: JobRecord) -> None:
        db.run(
            "UPDATE jobs SET status = ?, data = ?, worker = ? WHERE job_id = ?",
            job.status,
            job.model_dump_json(),
            job.owner,
            job.job_id,
        )

    def submit(self, job: JobRecord) -> JobRecord:
        with self._backend.write() as db:
            self._insert_job(db, job)
        return job

    def job(self, job_id: str) -> JobRecord:
        with self._backend.read() as db:
            row = db.one("SELECT data FROM jobs WHERE job_id = ?", job_id)
        if row is None:
            raise UserError(f"no job with id {job_id!r}", hint="See `maestro jobs list`.")
        return JobRecord.model_validate_json(row[0])

    def jobs(
        self, *, status: Sequence[JobStatus] | None = None, limit: int | None = 50
    ) -> builtins.list[JobRecord]:
        with self._backend.read() as db:
            sql, params = "SELECT data FROM jobs", builtins.list[Any]()
            if status:
                sql += f" WHERE status IN ({', '.join('?' for _ in status)})"
                params.extend(status)
            sql += f" ORDER BY {db.order} DESC"
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
            rows = db.all(sql, *params)
        return [JobRecord.model_validate_json(data) for (data,) in rows]

    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each status (for monitoring)."""
        rows = self._read("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    def claim_next(self) -> JobRecord | None:
        with self._backend.write() as db:
            row = db.one(
                "SELECT data FROM jobs WHERE status IN ('pending', 'interrupted') "
                "OR (status = 'running' AND lease_until < ?) "
                f"ORDER BY {db.order} LIMIT 1{db.skip_locked}",
                db.now,
            )
            if row is None:
                return None
            job = JobRecord.model_validate_json(row[0])
            job = job.model_copy(
                update={
                    "status": "running",
                    "owner": self._me,
                    "started_at": job.started_at or datetime.now(UTC),
                }
            )
            self._put_job(db, job)
            db.run(
                "UPDATE jobs SET lease_until = ? WHERE job_id = ?",
                db.now + self.lease_seconds,
                job.job_id,
            )
        return job

    def renew_leases(self, job_ids: Sequence[str]) -> builtins.list[str]:
        lost: builtins.list[str] = []
        with self._backend.write() as db:
            for job_id in job_ids:
                renewed = db.changed(
                    "UPDATE jobs SET lease_until = ? "
                    "WHERE job_id = ? AND worker = ? AND status = 'running'",
                    db.now + self.lease_seconds,
                    job_id,
                    self._me,
                )
                if not renewed:
                    lost.append(job_id)
        return lost

    def add_run(self, job_id: str, run_id: str) -> None:
        with self._backend.write() as db:
            job = self._get_job(db, job_id)
            self._put_job(db, job.model_copy(update={"run_ids": [*job.run_ids, run_id]}))

    def finish_job(
        self, job_id: str, outcome: JobOutcome, follow_ups: Sequence[JobRecord] = ()
    ) -> JobRecord:
        with self._backend.write() as db:
            job = self._get_job(db, job_id)
            if job.status in FINISHED_JOBS:
                return job  # finished already: its follow-ups were queued then
            outcome = outcome.model_copy(update={"run_ids": outcome.run_ids or job.run_ids})
            job = job.model_copy(
                update={
                    "status": outcome.status,
                    "outcome": outcome,
                    "error": outcome.error,
                    "finished_at": datetime.now(UTC),
                    "owner": None,
                }
            )
            self._put_job(db, job)
            for follow_up in follow_ups:
                self._insert_job(db, follow_up)
        return job

    def stop_job(self, job_id: str) -> None:
        with self._backend.write() as db:
            job = self._get_job(db, job_id)
            # Only its holder stops it: a worker that lost the lease leaves the job alone.
            if job.status == "running" and job.owner == self._me:
                self._put_job(db, job.model_copy(update={"status": "interrupted", "owner": None}))

    def recover(self) -> builtins.list[str]:
        recovered: builtins.list[str] = []
        with self._backend.write() as db:
            rows = db.all(
                f"SELECT data, lease_until FROM jobs WHERE status = 'running'{db.for_update}"
            )
            for data, lease_until in rows:
                job = JobRecord.model_validate_json(data)
                expired = lease_until is not None and float(lease_until) < db.now
                if job.owner == self._me or expired or not _alive(job.owner):
                    self._put_job(
                        db, job.model_copy(update={"status": "interrupted", "owner": None})
                    )
                    recovered.append(job.job_id)
        return recovered
