"""Where schedules, watches, triggers and the worker's job queue are kept.

:class:`ScheduleStore` is the protocol; :class:`SQLiteScheduleStore` keeps everything in
tables of the run store's database (``settings.runs_db``), so one file holds what ran and
what will run; :class:`PostgresScheduleStore` keeps them in PostgreSQL, one queue for workers
on several machines (:func:`open_schedule_store` picks from the settings). Each change is one
transaction: a schedule's next time
moves forward in the same transaction that queues its job, a batch of watched files is
recorded with the jobs it starts, and a finished job with the jobs its triggers start, so
a worker killed at any point neither loses nor repeats a job.

Several processes may share the file (``maestro schedule add`` while a worker runs; two
workers): a job is claimed by one worker and leased to it while its heartbeat renews the
lease (a worker that dies leaves a lease that expires, and another worker continues the
job from its runs' checkpoints), a schedule fires once (its next time moves
forward only if nobody moved it first), and a watch is watched by one process at a time.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._db import PostgresBackend, SQLiteBackend
from ..settings import Settings
from ._sql_store import DEFAULT_LEASE_SECONDS, SQLScheduleStore
from .jobs import JobOutcome, JobRecord, JobStatus
from .schedules import Firing, Schedule
from .triggers import Trigger
from .watch import SeenFile, Watch

__all__ = [
    "PostgresScheduleStore",
    "ScheduleStore",
    "SQLiteScheduleStore",
    "open_schedule_store",
]


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

    lease_seconds: float
    """How long a claimed job stays this worker's without :meth:`renew_leases`."""

    def claim_next(self) -> JobRecord | None:
        """Take the oldest pending or interrupted job, or a running one whose lease expired
        (its worker died), for this process (``running``, leased for ``lease_seconds``).
        Each job is taken by one worker, however many claim at once."""
        ...

    def renew_leases(self, job_ids: Sequence[str]) -> builtins.list[str]:
        """Extend this process's leases on ``job_ids`` (a heartbeat while they run);
        returns those it no longer holds (another worker took them after they expired)."""
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
        """Mark a job this process holds interrupted (its worker stopped); the next claim
        continues it. A job whose lease another worker took is left alone."""
        ...

    def recover(self) -> builtins.list[str]:
        """Mark interrupted the running jobs of workers that died (whose lease expired, or
        whose process on this machine is gone); returns their ids."""
        ...

    def close(self) -> None:
        """Release the store's connection."""
        ...


class SQLiteScheduleStore(SQLScheduleStore):
    """The schedule store in a SQLite database (the run store's file by default).

    Args:
        path: The database file, created if missing; ``":memory:"`` for tests.
        busy_timeout: Seconds to wait for another process's write.
        lease_seconds: How long a claimed job stays this worker's without a heartbeat.
        worker_id: Who holds the jobs it claims; ``host:pid`` when ``None``.

    Example::

        store = SQLiteScheduleStore.open(Settings())
        store.add_schedule(Schedule.create("weekly", cron="0 6 * * 1",
                                           job=RunJob(task="What changed?", corpus="docs")))
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        busy_timeout: float = 30.0,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        worker_id: str | None = None,
    ) -> None:
        self.path = str(path)
        backend = SQLiteBackend(path, "schedule store", busy_timeout=busy_timeout)
        super().__init__(backend, lease_seconds=lease_seconds, worker_id=worker_id)

    @classmethod
    def open(cls, settings: Settings | None = None, **kwargs: Any) -> SQLiteScheduleStore:
        """The store in ``settings.runs_db``, beside the runs."""
        settings = settings or Settings.from_env()
        kwargs.setdefault("lease_seconds", settings.job_lease_seconds)
        return cls(settings.runs_db, **kwargs)


class PostgresScheduleStore(SQLScheduleStore):
    """The schedule store in PostgreSQL (extra ``[postgres]``), schema ``maestro``: one job
    queue for workers on every machine that reaches the database.

    Args:
        url: ``postgresql://user:password@host:port/database``.
        lease_seconds: How long a claimed job stays this worker's without a heartbeat.
        worker_id: Who holds the jobs it claims; ``host:pid`` when ``None``.
    """

    def __init__(
        self,
        url: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        worker_id: str | None = None,
    ) -> None:
        super().__init__(
            PostgresBackend(url, "schedule store"), lease_seconds=lease_seconds, worker_id=worker_id
        )


def open_schedule_store(settings: Settings | None = None) -> SQLScheduleStore:
    """The schedule store the settings name: PostgreSQL at ``database_url`` when set (one
    queue for every machine), else the tables beside the runs in ``runs_db``."""
    settings = settings or Settings.from_env()
    if settings.database_url:
        return PostgresScheduleStore(
            settings.database_url, lease_seconds=settings.job_lease_seconds
        )
    return SQLiteScheduleStore.open(settings)
