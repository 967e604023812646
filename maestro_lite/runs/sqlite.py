"""The default run store: one SQLite file (``settings.runs_db``), safe for several runs at once.

The database is in WAL mode, so readers (``maestro runs list`` while runs are going) never
block writers, and several processes can record runs into one file. Every event is written
in its own ``BEGIN IMMEDIATE`` transaction together with what it implies (a plan, a step's
checkpoint, a round, the run's status and usage): a process killed at any point leaves each
event either fully recorded or not at all.

``synchronous=NORMAL`` (the default) makes a commit survive the process being killed, which
is what resuming needs; ``FULL`` also survives a power cut, at the cost of an fsync per event.
"""

from __future__ import annotations

import builtins
import os
import socket
import sqlite3
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter

from .._sqlite import open_database, write_transaction
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
from ..settings import Settings
from ..usage import Usage
from .base import FINISHED, PlanRecord, RunRecord, RunSpec, RunState, RunSummary, finished_error

__all__ = ["SQLiteRunStore"]

_SCHEMA_VERSION = 1

_SCHEMA = """
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
);
"""

_USAGE: TypeAdapter[Usage] = TypeAdapter(Usage)
_RESULTS: TypeAdapter[list[RequirementResult]] = TypeAdapter(list[RequirementResult])
_STEP_EVENTS = (StepFinished, StepFailed, StepSkipped)


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


class SQLiteRunStore:
    """Runs recorded in a SQLite database.

    Args:
        path: The database file, created if missing; ``":memory:"`` keeps runs in memory
            (for tests and one-off scripts).
        synchronous: ``NORMAL`` survives a killed process; ``FULL`` also a power cut.
        busy_timeout: Seconds to wait for another process's write to finish.

    Example::

        store = SQLiteRunStore.open(Settings())      # ~/.local/share/maestro-lite/runs.sqlite3
        maestro = Maestro(model, run_store=store)
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 30.0,
    ) -> None:
        self.path = str(path)
        self._db = open_database(
            self.path,
            _SCHEMA,
            "run store",
            busy_timeout=busy_timeout,
            synchronous=synchronous,
            version=_SCHEMA_VERSION,
        )
        # One connection shared by every run of the process, possibly from several threads.
        self._lock = threading.RLock()
        self._active: set[str] = set()
        self._tallies: dict[str, _Tally] = {}
        self._me = _owner()

    @classmethod
    def open(cls, settings: Settings | None = None, **kwargs: Any) -> SQLiteRunStore:
        """The store at ``settings.runs_db`` (under the maestro-lite home directory)."""
        return cls((settings or Settings.from_env()).runs_db, **kwargs)

    def __enter__(self) -> SQLiteRunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction, holding the database's write lock from its start."""
        return write_transaction(self._db, self._lock, f"run store {self.path}")

    # -- writes ---------------------------------------------------------------------------

    def create(self, spec: RunSpec) -> None:
        now = _iso(_now())
        with self._tx() as db:
            exists = db.execute("SELECT 1 FROM runs WHERE run_id = ?", (spec.run_id,)).fetchone()
            if exists:
                raise UserError(
                    f"a run with id {spec.run_id!r} already exists",
                    hint=f"Resume it with `maestro resume {spec.run_id}`, or use another id.",
                )
            db.execute(
                "INSERT INTO runs (run_id, task, corpus, spec, status, started_at, updated_at, "
                "session_started_at, usage, owner) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (
                    spec.run_id,
                    spec.task,
                    spec.corpus,
                    spec.model_dump_json(),
                    now,
                    now,
                    now,
                    _usage_json(Usage()),
                    self._me,
                ),
            )
            self._active.add(spec.run_id)

    def claim(self, run_id: str, *, force: bool = False, reopen: bool = False) -> RunRecord:
        with self._tx() as db:
            row = db.execute(
                "SELECT status, owner FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
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
            db.execute("UPDATE runs SET owner = ? WHERE run_id = ?", (self._me, run_id))
            self._active.add(run_id)
        return self.get(run_id)

    def request_cancel(self, run_id: str) -> None:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                raise RunNotFound(run_id)
            db.execute(
                "INSERT OR REPLACE INTO cancel_requests (run_id, at) VALUES (?, ?)",
                (run_id, _iso(_now())),
            )

    def take_cancel(self, run_id: str) -> bool:
        with self._lock:  # a read first: polled every half second, it rarely finds one
            query = "SELECT 1 FROM cancel_requests WHERE run_id = ?"
            if self._db.execute(query, (run_id,)).fetchone() is None:
                return False
        with self._tx() as db:
            taken = db.execute("DELETE FROM cancel_requests WHERE run_id = ?", (run_id,))
            return taken.rowcount > 0

    def _tally(self, db: sqlite3.Connection, run_id: str) -> _Tally:
        """The running totals of a run: kept in memory for the runs this store writes (it
        created or claimed them, so no other process writes them), read otherwise."""
        tally = self._tallies.get(run_id)
        if tally is not None:
            return replace(tally)
        row = db.execute(
            "SELECT session_started_at, prior_seconds, active_seconds, usage, "
            "(SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?) "
            "FROM runs WHERE run_id = ?",
            (run_id, run_id),
        ).fetchone()
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
        with self._tx() as db:
            tally = self._tally(db, run_id)
            tally.seq += 1
            db.execute(
                "INSERT INTO events (run_id, seq, kind, at, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, tally.seq, event.kind, at, EVENT_ADAPTER.dump_json(stored).decode()),
            )
            match event:
                case RunResumed():
                    tally.prior, tally.session = tally.active, event.at
                    db.execute(
                        "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, "
                        "owner = ?, prior_seconds = ?, session_started_at = ? WHERE run_id = ?",
                        (self._me, tally.prior, at, run_id),
                    )
                case ModelAttempted():
                    tally.usage = tally.usage + event.usage
                case RunInterrupted() | RunFinished():
                    tally.usage = event.usage
            self._apply(db, event, tally.seq, at)
            tally.active = tally.prior + max(0.0, (event.at - tally.session).total_seconds())
            db.execute(
                "UPDATE runs SET updated_at = ?, active_seconds = ?, usage = ? WHERE run_id = ?",
                (at, tally.active, _usage_json(tally.usage), run_id),
            )
        if isinstance(event, RunFinished | RunInterrupted):
            self._active.discard(run_id)
            self._tallies.pop(run_id, None)
        elif run_id in self._active:
            self._tallies[run_id] = tally

    def _apply(self, db: sqlite3.Connection, event: Event, seq: int, at: str) -> None:
        """What ``event`` implies beyond its own row."""
        run_id = event.run_id
        match event:
            case RunStarted() | RunResumed():
                pass  # the row says running already (from create, or the resume above)
            case PlanCreated():
                (version,) = db.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM plans WHERE run_id = ?", (run_id,)
                ).fetchone()
                db.execute(
                    "INSERT INTO plans (run_id, version, round, source, plan, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, version, event.round, event.source, event.plan.model_dump_json(), at),
                )
            case StepStarted():
                db.execute(
                    "INSERT OR REPLACE INTO steps (run_id, round, step_id, status, result) "
                    "VALUES (?, ?, ?, 'running', NULL)",
                    (run_id, event.round, event.step_id),
                )
            case StepFinished() | StepFailed() | StepSkipped():
                result = event.result
                status = result.status if result is not None else _STEP_STATUS[event.kind]
                db.execute(
                    "INSERT OR REPLACE INTO steps (run_id, round, step_id, status, result) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        run_id,
                        event.round,
                        event.step_id,
                        status,
                        result.model_dump_json() if result is not None else None,
                    ),
                )
            case ModelAttempted():
                db.execute(
                    "INSERT INTO attempts (run_id, seq, purpose, model, outcome, error, usage, "
                    "seconds, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        seq,
                        event.purpose,
                        event.model,
                        event.outcome,
                        event.error,
                        _usage_json(event.usage),
                        event.seconds,
                        at,
                    ),
                )
            case ValidationFinished():
                (version,) = db.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM plans WHERE run_id = ?", (run_id,)
                ).fetchone()
                db.execute(
                    "INSERT OR REPLACE INTO rounds (run_id, round, plan_version, passed, report) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        run_id,
                        event.round,
                        version,
                        int(event.passed),
                        _RESULTS.dump_json(event.results).decode(),
                    ),
                )
            case RoundFinished():
                db.execute(
                    "UPDATE rounds SET decision = ? WHERE run_id = ? AND round = ?",
                    (event.decision.model_dump_json(), run_id, event.round),
                )
            case RunInterrupted():
                db.execute(
                    "UPDATE runs SET status = 'interrupted', error = ? WHERE run_id = ?",
                    (event.error, run_id),
                )
            case RunFinished():
                db.execute(
                    "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?",
                    (event.status, event.error, at, run_id),
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
        sql = f"SELECT {self._SUMMARY_COLUMNS} FROM runs"
        params: builtins.list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY started_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [self._summary(r) for r in rows]

    def get(self, run_id: str) -> RunRecord:
        with self._lock:
            db = self._db
            # One read transaction: a consistent snapshot while other processes write.
            db.execute("BEGIN")
            try:
                row = db.execute(
                    f"SELECT {self._SUMMARY_COLUMNS}, spec FROM runs WHERE run_id = ?",
                    (run_id,),
                ).fetchone()
                if row is None:
                    raise RunNotFound(run_id)
                plan_rows = db.execute(
                    "SELECT version, round, source, plan, at FROM plans WHERE run_id = ? "
                    "ORDER BY version",
                    (run_id,),
                ).fetchall()
                step_rows = db.execute(
                    "SELECT round, step_id, status, result FROM steps WHERE run_id = ? "
                    "ORDER BY round, rowid",
                    (run_id,),
                ).fetchall()
                round_rows = db.execute(
                    "SELECT round, plan_version, report, decision FROM rounds WHERE run_id = ? "
                    "ORDER BY round",
                    (run_id,),
                ).fetchall()
            finally:
                db.execute("COMMIT")
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
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
            if (
                not rows
                and not self._db.execute(
                    "SELECT 1 FROM runs WHERE run_id = ?", (run_id,)
                ).fetchone()
            ):
                raise RunNotFound(run_id)
        return [EVENT_ADAPTER.validate_json(data) for (data,) in rows]


_STEP_STATUS = {"step_finished": "done", "step_failed": "failed", "step_skipped": "skipped"}
