"""The run store over SQL: one implementation for SQLite and PostgreSQL.

Every event is written in its own transaction together with what it implies (a plan, a
step's checkpoint, a round, the run's status and usage): a process killed at any point leaves
each event either fully recorded or not at all. The writes of one run are serialised (SQLite
holds the database's write lock, PostgreSQL an advisory lock on the run), so a
read-then-write inside a transaction cannot race another process. The backends are in
:mod:`maestro_lite._db`; :class:`~maestro_lite.runs.SQLiteRunStore` and
:class:`~maestro_lite.runs.PostgresRunStore` open them, :func:`open_run_store` picks one from
the settings.
"""

from __future__ import annotations

import builtins
import os
import socket
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from .._db import Backend, Db, Migration, SQLStore
from ..errors import RunNotFound, UserError
from ..events import (
    EVENT_ADAPTER,
    Event,
    ModelAttempted,
    PlanCreated,
    RoundFinished,
    RunFinished,
    RunInterrupted,
    RunResumed,
    RunStarted,
    StepFailed,
    StepFinished,
    StepSkipped,
    StepStarted,
    ValidationFinished,
)
from ..plan import Plan
from ..requirements import RequirementResult
from ..result import Decision, RoundRecord, StepResult, ValidationReport
from ..usage import Usage
from .base import FINISHED, PlanRecord, RunRecord, RunSpec, RunState, RunSummary, finished_error

__all__ = ["MIGRATIONS", "SQLRunStore"]

_TABLES = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    corpus TEXT,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    session_started_at TEXT NOT NULL,
    prior_seconds REAL NOT NULL DEFAULT 0,
    active_seconds REAL NOT NULL DEFAULT 0,
    usage TEXT NOT NULL,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS plans (
    run_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    round INTEGER NOT NULL,
    source TEXT NOT NULL,
    plan TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, version)
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    step_id TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    PRIMARY KEY (run_id, round, step_id)
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    model TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    usage TEXT NOT NULL,
    seconds REAL NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS cancel_requests (
    run_id TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    run_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    plan_version INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    report TEXT NOT NULL,
    decision TEXT,
    PRIMARY KEY (run_id, round)
)
"""

_STEPS_BY_SEQ = "CREATE INDEX steps_by_seq ON steps (run_id, seq)"

MIGRATIONS: tuple[Migration, ...] = (
    # 1: the tables (PostgreSQL orders runs by a serial column, SQLite by rowid).
    Migration(
        _TABLES,
        _TABLES.replace(" REAL", " DOUBLE PRECISION")
        + ";\nALTER TABLE runs ADD COLUMN IF NOT EXISTS pos BIGSERIAL",
    ),
    # 2: steps keep the order they were last written in (what SQLite's INSERT OR REPLACE
    # gave through rowid) in a column of their own, for both databases.
    Migration(
        "ALTER TABLE steps ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;"
        "UPDATE steps SET seq = rowid;" + _STEPS_BY_SEQ,
        "ALTER TABLE steps ADD COLUMN seq BIGSERIAL;" + _STEPS_BY_SEQ,
    ),
)
"""The run store's schema, version by version (see :func:`maestro_lite._db.migrate`)."""

_USAGE: TypeAdapter[Usage] = TypeAdapter(Usage)
_RESULTS: TypeAdapter[list[RequirementResult]] = TypeAdapter(list[RequirementResult])
_STEP_EVENTS = (StepFinished, StepFailed, StepSkipped)
_STEP_STATUS = {"step_finished": "done", "step_failed": "failed", "step_skipped": "skipped"}


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(owner: str | None) -> bool:
    """Whether the process that owns a run may still be running it."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine: we cannot tell, so assume it is
    if int(pid) == os.getpid():
        return False  # this process: the store's own bookkeeping decides
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


@dataclass
class _Tally:
    """A run's running totals, updated with every event."""

    seq: int
    session: datetime
    """When the current session (start or resume) began."""
    prior: float
    """Active seconds of the sessions before."""
    active: float
    usage: Usage


def _usage(text: str) -> Usage:
    return _USAGE.validate_json(text)


def _usage_json(usage: Usage) -> str:
    return _USAGE.dump_json(usage).decode()


class SQLRunStore(SQLStore):
    """Runs recorded in a SQL database (a :class:`~maestro_lite._db.Backend`); the
    subclasses open SQLite or PostgreSQL.

    Args:
        backend: The open database; its schema is brought up to date (:data:`MIGRATIONS`).
    """

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend, "runs", MIGRATIONS)
        # One connection shared by every run of the process, possibly from several threads.
        self._lock = threading.RLock()
        self._active: set[str] = set()
        self._tallies: dict[str, _Tally] = {}
        self._me = _owner()

    # -- writes ---------------------------------------------------------------------------

    def create(self, spec: RunSpec) -> None:
        now = _iso(_now())
        with self._backend.write(f"run {spec.run_id}") as db:
            if db.one("SELECT 1 FROM runs WHERE run_id = ?", spec.run_id):
                raise UserError(
                    f"a run with id {spec.run_id!r} already exists",
                    hint=f"Resume it with `maestro resume {spec.run_id}`, or use another id.",
                )
            db.run(
                "INSERT INTO runs (run_id, task, corpus, spec, status, started_at, updated_at, "
                "session_started_at, usage, owner) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                spec.run_id,
                spec.task,
                spec.corpus,
                spec.model_dump_json(),
                now,
                now,
                now,
                _usage_json(Usage()),
                self._me,
            )
            self._active.add(spec.run_id)

    def claim(self, run_id: str, *, force: bool = False, reopen: bool = False) -> RunRecord:
        with self._backend.write(f"run {run_id}") as db:
            row = db.one("SELECT status, owner FROM runs WHERE run_id = ?", run_id)
            if row is None:
                raise RunNotFound(run_id)
            status, owner = row
            if status in FINISHED and not reopen:
                raise finished_error(run_id, status)
            if run_id in self._active:
                raise UserError(f"run {run_id} is already running in this process")
            if status == "running" and not force and _alive(owner):
                raise UserError(
                    f"run {run_id} is still running in process {owner}",
                    hint="Wait for it to finish, or stop that process first "
                    "(`--force` if you are sure it is not running).",
                )
            db.run("UPDATE runs SET owner = ? WHERE run_id = ?", self._me, run_id)
            self._active.add(run_id)
        return self.get(run_id)

    def request_cancel(self, run_id: str) -> None:
        with self._backend.write(f"run {run_id}") as db:
            if db.one("SELECT 1 FROM runs WHERE run_id = ?", run_id) is None:
                raise RunNotFound(run_id)
            db.run(
                "INSERT INTO cancel_requests (run_id, at) VALUES (?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET at = excluded.at",
                run_id,
                _iso(_now()),
            )

    def take_cancel(self, run_id: str) -> bool:
        with self._backend.read() as db:  # a read first: polled often, it rarely finds one
            if db.one("SELECT 1 FROM cancel_requests WHERE run_id = ?", run_id) is None:
                return False
        with self._backend.write(f"run {run_id}") as db:
            return db.changed("DELETE FROM cancel_requests WHERE run_id = ?", run_id) > 0

    def _tally(self, db: Db, run_id: str) -> _Tally:
        """The running totals of a run: kept in memory for the runs this store writes (it
        created or claimed them, so no other process writes them), read otherwise."""
        tally = self._tallies.get(run_id)
        if tally is not None:
            return replace(tally)
        row = db.one(
            "SELECT session_started_at, prior_seconds, active_seconds, usage, "
            "(SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?) "
            "FROM runs WHERE run_id = ?",
            run_id,
            run_id,
        )
        if row is None:
            raise RunNotFound(run_id)
        session, prior, active, usage, seq = row
        return _Tally(seq, datetime.fromisoformat(session), prior, active, _usage(usage))

    def append(self, event: Event) -> None:
        stored = event
        if isinstance(event, _STEP_EVENTS) and event.result is not None:
            stored = event.model_copy(update={"result": None})  # kept once, in `steps`
        at = _iso(event.at)
        run_id = event.run_id
        with self._backend.write(f"run {run_id}") as db:
            tally = self._tally(db, run_id)
            tally.seq += 1
            db.run(
                "INSERT INTO events (run_id, seq, kind, at, data) VALUES (?, ?, ?, ?, ?)",
                run_id,
                tally.seq,
                event.kind,
                at,
                EVENT_ADAPTER.dump_json(stored).decode(),
            )
            match event:
                case RunResumed():
                    tally.prior, tally.session = tally.active, event.at
                    db.run(
                        "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, "
                        "owner = ?, prior_seconds = ?, session_started_at = ? WHERE run_id = ?",
                        self._me,
                        tally.prior,
                        at,
                        run_id,
                    )
                case ModelAttempted():
                    tally.usage = tally.usage + event.usage
                case RunInterrupted() | RunFinished():
                    tally.usage = event.usage
            self._apply(db, event, tally.seq, at)
            tally.active = tally.prior + max(0.0, (event.at - tally.session).total_seconds())
            db.run(
                "UPDATE runs SET updated_at = ?, active_seconds = ?, usage = ? WHERE run_id = ?",
                at,
                tally.active,
                _usage_json(tally.usage),
                run_id,
            )
        if isinstance(event, RunFinished | RunInterrupted):
            self._active.discard(run_id)
            self._tallies.pop(run_id, None)
        elif run_id in self._active:
            self._tallies[run_id] = tally

    @staticmethod
    def _put_step(db: Db, run_id: str, round: int, step_id: str, status: str, result: Any) -> None:
        """A step's latest state; ``seq`` orders the steps by when they were last written."""
        db.run(
            "INSERT INTO steps (run_id, round, step_id, status, result, seq) VALUES "
            "(?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM steps WHERE run_id = ?)) "
            "ON CONFLICT (run_id, round, step_id) DO UPDATE SET status = excluded.status, "
            "result = excluded.result, seq = excluded.seq",
            run_id,
            round,
            step_id,
            status,
            result,
            run_id,
        )

    def _apply(self, db: Db, event: Event, seq: int, at: str) -> None:
        """What ``event`` implies beyond its own row."""
        run_id = event.run_id
        match event:
            case RunStarted() | RunResumed():
                pass  # the row says running already (from create, or the resume above)
            case PlanCreated():
                (version,) = db.one(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM plans WHERE run_id = ?", run_id
                )
                db.run(
                    "INSERT INTO plans (run_id, version, round, source, plan, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    run_id,
                    version,
                    event.round,
                    event.source,
                    event.plan.model_dump_json(),
                    at,
                )
            case StepStarted():
                self._put_step(db, run_id, event.round, event.step_id, "running", None)
            case StepFinished() | StepFailed() | StepSkipped():
                result = event.result
                self._put_step(
                    db,
                    run_id,
                    event.round,
                    event.step_id,
                    result.status if result is not None else _STEP_STATUS[event.kind],
                    result.model_dump_json() if result is not None else None,
                )
            case ModelAttempted():
                db.run(
                    "INSERT INTO attempts (run_id, seq, purpose, model, outcome, error, usage, "
                    "seconds, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    run_id,
                    seq,
                    event.purpose,
                    event.model,
                    event.outcome,
                    event.error,
                    _usage_json(event.usage),
                    event.seconds,
                    at,
                )
            case ValidationFinished():
                (version,) = db.one(
                    "SELECT COALESCE(MAX(version), 0) FROM plans WHERE run_id = ?", run_id
                )
                # A round validated again starts without a decision.
                db.run(
                    "INSERT INTO rounds (run_id, round, plan_version, passed, report) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, round) DO UPDATE SET "
                    "plan_version = excluded.plan_version, passed = excluded.passed, "
                    "report = excluded.report, decision = NULL",
                    run_id,
                    event.round,
                    version,
                    int(event.passed),
                    _RESULTS.dump_json(event.results).decode(),
                )
            case RoundFinished():
                db.run(
                    "UPDATE rounds SET decision = ? WHERE run_id = ? AND round = ?",
                    event.decision.model_dump_json(),
                    run_id,
                    event.round,
                )
            case RunInterrupted():
                db.run(
                    "UPDATE runs SET status = 'interrupted', error = ? WHERE run_id = ?",
                    event.error,
                    run_id,
                )
            case RunFinished():
                db.run(
                    "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?",
                    event.status,
                    event.error,
                    at,
                    run_id,
                )
            case _:
                pass  # recorded in `events` only

    # -- reads ----------------------------------------------------------------------------

    _SUMMARY_COLUMNS = (
        "run_id, task, corpus, status, started_at, updated_at, finished_at, active_seconds, "
        "usage, error, owner"
    )

    @staticmethod
    def _summary(row: tuple[Any, ...]) -> RunSummary:
        (run_id, task, corpus, status, started, updated, finished, active, usage, error, owner) = (
            row
        )
        return RunSummary(
            run_id=run_id,
            task=task,
            corpus=corpus,
            status=status,
            started_at=started,
            updated_at=updated,
            finished_at=finished,
            active_seconds=active,
            usage=_usage(usage),
            error=error,
            owner=owner,
        )

    def list(self, *, limit: int | None = 50, status: RunState | None = None) -> list[RunSummary]:
        with self._backend.read() as db:
            sql = f"SELECT {self._SUMMARY_COLUMNS} FROM runs"
            params: builtins.list[Any] = []
            if status is not None:
                sql += " WHERE status = ?"
                params.append(status)
            sql += f" ORDER BY started_at DESC, {db.order} DESC"
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
            rows = db.all(sql, *params)
        return [self._summary(r) for r in rows]

    def get(self, run_id: str) -> RunRecord:
        # One read transaction: a consistent snapshot while other processes write.
        with self._backend.snapshot() as db:
            row = db.one(f"SELECT {self._SUMMARY_COLUMNS}, spec FROM runs WHERE run_id = ?", run_id)
            if row is None:
                raise RunNotFound(run_id)
            plan_rows = db.all(
                "SELECT version, round, source, plan, at FROM plans WHERE run_id = ? "
                "ORDER BY version",
                run_id,
            )
            step_rows = db.all(
                "SELECT round, step_id, status, result FROM steps WHERE run_id = ? "
                "ORDER BY round, seq",
                run_id,
            )
            round_rows = db.all(
                "SELECT round, plan_version, report, decision FROM rounds WHERE run_id = ? "
                "ORDER BY round",
                run_id,
            )
        plans = [
            PlanRecord(
                version=v, round=r, source=source, plan=Plan.model_validate_json(plan), at=at
            )
            for v, r, source, plan, at in plan_rows
        ]
        by_version = {p.version: p.plan for p in plans}
        steps = [StepResult.model_validate_json(res) for _, _, _, res in step_rows if res]
        running = [(r, sid) for r, sid, status, _ in step_rows if status == "running"]
        reports = {r: _RESULTS.validate_json(report) for r, _, report, _ in round_rows}
        rounds = [
            RoundRecord(
                round=r,
                plan=by_version[version],
                report=ValidationReport(round=r, results=reports[r]),
                decision=Decision.model_validate_json(decision),
            )
            for r, version, _, decision in round_rows
            if decision is not None
        ]
        return RunRecord(
            summary=self._summary(row[:-1]),
            spec=RunSpec.model_validate_json(row[-1]),
            plans=plans,
            steps=steps,
            running=running,
            reports=reports,
            rounds=rounds,
        )

    def events(self, run_id: str) -> builtins.list[Event]:
        with self._backend.read() as db:
            rows = db.all("SELECT data FROM events WHERE run_id = ? ORDER BY seq", run_id)
            if not rows and not db.one("SELECT 1 FROM runs WHERE run_id = ?", run_id):
                raise RunNotFound(run_id)
        return [EVENT_ADAPTER.validate_json(data) for (data,) in rows]
