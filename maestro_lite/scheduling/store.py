"""Where schedules, watches, triggers and the worker's job queue are kept.

:class:`ScheduleStore` is the protocol; :class:`SQLiteScheduleStore` keeps everything in
tables of the run store's database (``settings.runs_db``), so one file holds what ran and
what will run. Each change is one ``BEGIN IMMEDIATE`` transaction: a schedule's next time
moves forward in the same transaction that queues its job, a batch of watched files is
recorded with the jobs it starts, and a finished job with the jobs its triggers start, so
a worker killed at any point neither loses nor repeats a job.

Several processes may share the file (``maestro schedule add`` while a worker runs; two
workers): a job is claimed by one worker, a schedule fires once (its next time moves
forward only if nobody moved it first), and a watch is watched by one process at a time.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from .._sqlite import open_database, write_transaction
from ..errors import UserError
from ..runs.sqlite import _alive, _owner
from ..settings import Settings
from .jobs import FINISHED_JOBS, JobOutcome, JobRecord, JobStatus
from .schedules import Firing, Schedule
from .triggers import Trigger, check_triggers
from .watch import SeenFile, Watch

__all__ = ["ScheduleStore", "SQLiteScheduleStore"]

M = TypeVar("M", bound=BaseModel)

_SCHEMA = """
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
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status);
"""

_Kind = Literal["schedule", "trigger", "watch"]
_TABLES: dict[_Kind, str] = {"schedule": "schedules", "trigger": "triggers", "watch": "watches"}
_LISTS: dict[_Kind, str] = {
    "schedule": "maestro schedule list",
    "trigger": "maestro trigger list",
    "watch": "maestro watches list",
}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


@runtime_checkable
class ScheduleStore(Protocol):
    """Schedules, triggers, watches, the files watches have seen, and the job queue."""

    def add_schedule(self, schedule: Schedule, *, replace: bool = False) -> None:
        """Save a schedule.

        Raises:
            UserError: The name is taken (by a schedule, unless ``replace``, a trigger or a
                watch).
        """
        ...

    def schedules(self) -> builtins.list[Schedule]:
        """Every schedule, by name."""
        ...

    def schedule(self, name: str) -> Schedule:
        """Raises ``UserError`` when there is no such schedule."""
        ...

    def remove_schedule(self, name: str) -> Schedule:
        """Remove a schedule (the jobs it queued stay) and return it."""
        ...

    def pause_schedule(self, name: str, paused: bool, *, now: datetime) -> Schedule:
        """Pause, or resume from the first time after ``now`` (paused times never run)."""
        ...

    def fire(self, firing: Firing, job: JobRecord | None) -> bool:
        """Move the schedule to ``firing.next_due`` and queue ``job``, unless another
        worker handled this time first (then nothing happens and ``False`` returns)."""
        ...

    def add_trigger(self, trigger: Trigger, *, replace: bool = False) -> None:
        """Save a trigger.

        Raises:
            TriggerCycleError: It would close a cycle of triggers.
            UserError: The name is taken.
        """
        ...

    def triggers(self) -> builtins.list[Trigger]:
        """Every completion trigger, by name."""
        ...

    def remove_trigger(self, name: str) -> Trigger:
        """Remove a trigger and return it."""
        ...

    def add_watch(self, watch: Watch, *, replace: bool = False) -> None:
        """Save a watched folder (``replace``: update the one of that name)."""
        ...

    def watches(self) -> builtins.list[Watch]:
        """Every watched folder, by name."""
        ...

    def watch(self, name: str) -> Watch:
        """Raises ``UserError`` when there is no such watch."""
        ...

    def remove_watch(self, name: str) -> Watch:
        """Remove a watch and the record of the files it saw."""
        ...

    def claim_watch(self, name: str) -> bool:
        """Take a watch for this process; ``False`` if a live process has it."""
        ...

    def release_watch(self, name: str) -> None:
        """Let another process take the watch."""
        ...

    def seen_files(self, watch: str) -> dict[str, SeenFile]:
        """The files a watch has handled, by path."""
        ...

    def record_files(
        self, watch: str, files: Sequence[SeenFile], jobs: Sequence[JobRecord]
    ) -> None:
        """Record handled files and queue the jobs they start, atomically."""
        ...

    def forget_files(self, watch: str, paths: Sequence[str]) -> None:
        """Drop the records of files deleted from a watch's folder."""
        ...

    def submit(self, job: JobRecord) -> JobRecord:
        """Queue a job."""
        ...

    def job(self, job_id: str) -> JobRecord:
        """Raises ``UserError`` when there is no such job."""
        ...

    def jobs(
        self, *, status: Sequence[JobStatus] | None = None, limit: int | None = 50
    ) -> builtins.list[JobRecord]:
        """Jobs, most recently queued first."""
        ...

    def claim_next(self) -> JobRecord | None:
        """Take the oldest pending or interrupted job for this process (``running``)."""
        ...

    def add_run(self, job_id: str, run_id: str) -> None:
        """Record that a job started a run (before the run is created)."""
        ...

    def finish_job(
        self, job_id: str, outcome: JobOutcome, follow_ups: Sequence[JobRecord] = ()
    ) -> JobRecord:
        """Record a job's outcome and queue the jobs its triggers start, atomically."""
        ...

    def stop_job(self, job_id: str) -> None:
        """Mark a job interrupted (its worker stopped); the next claim continues it."""
        ...

    def recover(self) -> builtins.list[str]:
        """Mark jobs of workers that died interrupted; returns their ids."""
        ...

    def close(self) -> None:
        """Release the store's connection."""
        ...


class SQLiteScheduleStore:
    """The schedule store in a SQLite database (the run store's file by default).

    Args:
        path: The database file, created if missing; ``":memory:"`` for tests.
        busy_timeout: Seconds to wait for another process's write.

    Example::

        store = SQLiteScheduleStore.open(Settings())
        store.add_schedule(Schedule.create("weekly", cron="0 6 * * 1",
                                           job=RunJob(task="What changed?", corpus="docs")))
    """

    def __init__(self, path: str | Path = ":memory:", *, busy_timeout: float = 30.0) -> None:
        self.path = str(path)
        self._db = open_database(
            self.path, _SCHEMA, "schedule store", busy_timeout=busy_timeout, synchronous=None
        )
        self._lock = threading.RLock()
        self._me = _owner()

    @classmethod
    def open(cls, settings: Settings | None = None, **kwargs: Any) -> SQLiteScheduleStore:
        """The store in ``settings.runs_db``, beside the runs."""
        return cls((settings or Settings.from_env()).runs_db, **kwargs)

    def __enter__(self) -> SQLiteScheduleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db, self._lock, f"schedule store {self.path}")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> builtins.list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- named definitions ----------------------------------------------------------------

    def _check_free(self, db: sqlite3.Connection, kind: _Kind, name: str, replace: bool) -> None:
        for other, table in _TABLES.items():
            if other == kind and replace:
                continue
            if db.execute(f"SELECT 1 FROM {table} WHERE name = ?", (name,)).fetchone():
                raise UserError(
                    f"a {other} named {name!r} exists already",
                    hint="Names are shared by schedules, watches and triggers (triggers "
                    f"follow them by name); remove it first or pick another ({_LISTS[other]}).",
                )

    def _one(self, kind: _Kind, name: str, model: type[M]) -> M:
        rows = self._read(f"SELECT data FROM {_TABLES[kind]} WHERE name = ?", (name,))
        if not rows:
            raise UserError(f"no {kind} named {name!r}", hint=f"See `{_LISTS[kind]}`.")
        return model.model_validate_json(rows[0][0])

    def _all(self, kind: _Kind, model: type[M]) -> builtins.list[M]:
        rows = self._read(f"SELECT data FROM {_TABLES[kind]} ORDER BY name")
        return [model.model_validate_json(data) for (data,) in rows]

    def _remove(self, kind: _Kind, name: str, model: type[M]) -> M:
        found = self._one(kind, name, model)
        with self._tx() as db:
            db.execute(f"DELETE FROM {_TABLES[kind]} WHERE name = ?", (name,))
            if kind == "watch":
                db.execute("DELETE FROM watch_files WHERE watch = ?", (name,))
        return found

    # -- schedules ------------------------------------------------------------------------

    def add_schedule(self, schedule: Schedule, *, replace: bool = False) -> None:
        with self._tx() as db:
            self._check_free(db, "schedule", schedule.name, replace)
            db.execute(
                "INSERT OR REPLACE INTO schedules (name, next_due, data) VALUES (?, ?, ?)",
                (schedule.name, _iso(schedule.next_due), schedule.model_dump_json()),
            )

    def schedules(self) -> builtins.list[Schedule]:
        return self._all("schedule", Schedule)

    def schedule(self, name: str) -> Schedule:
        return self._one("schedule", name, Schedule)

    def remove_schedule(self, name: str) -> Schedule:
        return self._remove("schedule", name, Schedule)

    def pause_schedule(self, name: str, paused: bool, *, now: datetime) -> Schedule:
        with self._tx() as db:
            current = self._one("schedule", name, Schedule)
            update: dict[str, Any] = {"paused": paused}
            if current.paused and not paused:
                update["next_due"] = current.next_after(now)
            changed = current.model_copy(update=update)
            db.execute(
                "UPDATE schedules SET next_due = ?, data = ? WHERE name = ?",
                (_iso(changed.next_due), changed.model_dump_json(), name),
            )
        return changed

    def fire(self, firing: Firing, job: JobRecord | None) -> bool:
        with self._tx() as db:
            row = db.execute(
                "SELECT next_due, data FROM schedules WHERE name = ?", (firing.schedule,)
            ).fetchone()
            if row is None:
                return False
            current = Schedule.model_validate_json(row[1])
            if current.paused or current.next_due > firing.due:
                return False  # removed, paused, or handled by another worker meanwhile
            update: dict[str, Any] = {"next_due": firing.next_due}
            if job is not None:
                update["last_fired"] = firing.due
                self._insert_job(db, job)
            changed = current.model_copy(update=update)
            db.execute(
                "UPDATE schedules SET next_due = ?, data = ? WHERE name = ?",
                (_iso(changed.next_due), changed.model_dump_json(), firing.schedule),
            )
        return True

    # -- triggers -------------------------------------------------------------------------

    def add_trigger(self, trigger: Trigger, *, replace: bool = False) -> None:
        with self._tx() as db:
            self._check_free(db, "trigger", trigger.name, replace)
            others = [
                Trigger.model_validate_json(data)
                for (data,) in db.execute("SELECT data FROM triggers").fetchall()
            ]
            check_triggers(
                [t for t in others if t.name != trigger.name] + [trigger], first=trigger.name
            )
            db.execute(
                "INSERT OR REPLACE INTO triggers (name, data) VALUES (?, ?)",
                (trigger.name, trigger.model_dump_json()),
            )

    def triggers(self) -> builtins.list[Trigger]:
        return self._all("trigger", Trigger)

    def remove_trigger(self, name: str) -> Trigger:
        return self._remove("trigger", name, Trigger)

    # -- watches --------------------------------------------------------------------------

    def add_watch(self, watch: Watch, *, replace: bool = False) -> None:
        with self._tx() as db:
            self._check_free(db, "watch", watch.name, replace)
            db.execute(
                "INSERT INTO watches (name, data) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET data = excluded.data",
                (watch.name, watch.model_dump_json()),
            )

    def watches(self) -> builtins.list[Watch]:
        return self._all("watch", Watch)

    def watch(self, name: str) -> Watch:
        return self._one("watch", name, Watch)

    def remove_watch(self, name: str) -> Watch:
        return self._remove("watch", name, Watch)

    def claim_watch(self, name: str) -> bool:
        with self._tx() as db:
            row = db.execute("SELECT owner FROM watches WHERE name = ?", (name,)).fetchone()
            if row is None:
                return False
            if row[0] not in (None, self._me) and _alive(row[0]):
                return False
            db.execute("UPDATE watches SET owner = ? WHERE name = ?", (self._me, name))
        return True

    def release_watch(self, name: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE watches SET owner = NULL WHERE name = ? AND owner = ?", (name, self._me)
            )

    def seen_files(self, watch: str) -> dict[str, SeenFile]:
        rows = self._read("SELECT data FROM watch_files WHERE watch = ?", (watch,))
        files = [SeenFile.model_validate_json(data) for (data,) in rows]
        return {f.path: f for f in files}

    def record_files(
        self, watch: str, files: Sequence[SeenFile], jobs: Sequence[JobRecord]
    ) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO watch_files (watch, path, data) VALUES (?, ?, ?)",
                [(watch, f.path, f.model_dump_json()) for f in files],
            )
            for job in jobs:
                self._insert_job(db, job)

    def forget_files(self, watch: str, paths: Sequence[str]) -> None:
        with self._tx() as db:
            db.executemany(
                "DELETE FROM watch_files WHERE watch = ? AND path = ?",
                [(watch, path) for path in paths],
            )

    # -- jobs -----------------------------------------------------------------------------

    @staticmethod
    def _insert_job(db: sqlite3.Connection, job: JobRecord) -> None:
        db.execute(
            "INSERT INTO jobs (job_id, status, data) VALUES (?, ?, ?)",
            (job.job_id, job.status, job.model_dump_json()),
        )

    @staticmethod
    def _get_job(db: sqlite3.Connection, job_id: str) -> JobRecord:
        row = db.execute("SELECT data FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise UserError(f"no job with id {job_id!r}", hint="See `maestro jobs list`.")
        return JobRecord.model_validate_json(row[0])

    @staticmethod
    def _put_job(db: sqlite3.Connection, job: JobRecord) -> None:
        db.execute(
            "UPDATE jobs SET status = ?, data = ? WHERE job_id = ?",
            (job.status, job.model_dump_json(), job.job_id),
        )

    def submit(self, job: JobRecord) -> JobRecord:
        with self._tx() as db:
            self._insert_job(db, job)
        return job

    def job(self, job_id: str) -> JobRecord:
        with self._lock:
            return self._get_job(self._db, job_id)

    def jobs(
        self, *, status: Sequence[JobStatus] | None = None, limit: int | None = 50
    ) -> builtins.list[JobRecord]:
        sql, params = "SELECT data FROM jobs", builtins.list[Any]()
        if status:
            sql += f" WHERE status IN ({', '.join('?' for _ in status)})"
            params.extend(status)
        sql += " ORDER BY rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [JobRecord.model_validate_json(data) for (data,) in self._read(sql, params)]

    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each status (for monitoring)."""
        rows = self._read("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    def claim_next(self) -> JobRecord | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT data FROM jobs WHERE status IN ('pending', 'interrupted') "
                "ORDER BY rowid LIMIT 1"
            ).fetchone()
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
        return job

    def add_run(self, job_id: str, run_id: str) -> None:
        with self._tx() as db:
            job = self._get_job(db, job_id)
            self._put_job(db, job.model_copy(update={"run_ids": [*job.run_ids, run_id]}))

    def finish_job(
        self, job_id: str, outcome: JobOutcome, follow_ups: Sequence[JobRecord] = ()
    ) -> JobRecord:
        with self._tx() as db:
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
        with self._tx() as db:
            job = self._get_job(db, job_id)
            if job.status == "running":
                self._put_job(db, job.model_copy(update={"status": "interrupted", "owner": None}))

    def recover(self) -> builtins.list[str]:
        recovered: builtins.list[str] = []
        with self._tx() as db:
            rows = db.execute("SELECT data FROM jobs WHERE status = 'running'").fetchall()
            for (data,) in rows:
                job = JobRecord.model_validate_json(data)
                if job.owner == self._me or not _alive(job.owner):
                    self._put_job(
                        db, job.model_copy(update={"status": "interrupted", "owner": None})
                    )
                    recovered.append(job.job_id)
        return recovered
