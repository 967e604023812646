"""Read-only views of the run store for dashboards: pages of runs, new events, and
performance figures, each answered by SQL over the store's tables (a page of 10,000 runs
reads 50 rows, not 10,000), in SQLite or PostgreSQL.

:class:`RunQuery` never writes: it opens a SQLite database with ``PRAGMA query_only`` (and
a PostgreSQL session read-only), so a dashboard cannot corrupt what runs record; WAL mode
(and PostgreSQL's snapshots) let it read while runs write.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .._db import Backend, Dialect, PostgresBackend, SQLiteBackend
from ..events import EVENT_ADAPTER, Event
from ..settings import Settings
from .base import RunState, RunSummary
from .postgres import PostgresRunStore
from .sql import SQLRunStore
from .sqlite import SQLiteRunStore

__all__ = ["Latency", "Performance", "RunPage", "RunQuery", "RunRow", "UsageDay"]


class RunRow(BaseModel):
    """One line of a page of runs: the summary and how its requirements fared."""

    model_config = ConfigDict(frozen=True)

    summary: RunSummary
    requirements_passed: int = 0
    requirements_total: int = 0
    """Of the last validated round (0 when no round was validated)."""


class RunPage(BaseModel):
    """Runs matching a filter, most recently started first, ``limit`` from ``offset``."""

    model_config = ConfigDict(frozen=True)

    rows: list[RunRow]
    total: int
    """Runs matching the filter, over all pages."""
    offset: int
    limit: int


class Latency(BaseModel):
    """Latency figures of one group (a step kind, a model)."""

    model_config = ConfigDict(frozen=True)

    name: str
    count: int
    p50: float
    p95: float


class UsageDay(BaseModel):
    """Model calls and tokens of one UTC day."""

    model_config = ConfigDict(frozen=True)

    day: str
    calls: int
    cached: int
    input_tokens: int
    output_tokens: int


class Performance(BaseModel):
    """Figures over the runs started since ``since``."""

    model_config = ConfigDict(frozen=True)

    since: datetime
    runs: dict[str, int] = Field(default_factory=dict)
    """Runs by status."""
    step_latency: list[Latency] = Field(default_factory=list)
    """Seconds per finished step, by step kind."""
    model_latency: list[Latency] = Field(default_factory=list)
    """Seconds per model call (cached answers left out), by model."""
    days: list[UsageDay] = Field(default_factory=list)
    attempts: int = 0
    """Every recorded attempt, cached answers included."""
    failed: int = 0
    """Attempts whose call failed (retried, or the step failed)."""
    reasks: int = 0
    """Attempts whose answer did not validate (asked again)."""
    cached: int = 0
    steps: int = 0
    steps_retried: int = 0
    """Steps that needed more than one attempt."""
    steps_failed: int = 0
    delayed: int = 0
    """Calls that waited for their provider's limits before being sent."""
    waited_seconds: float = 0.0
    """Time calls waited for their provider's limits, summed."""

    @property
    def failure_rate(self) -> float:
        return self.failed / self.attempts if self.attempts else 0.0

    @property
    def retry_rate(self) -> float:
        return self.steps_retried / self.steps if self.steps else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cached / self.attempts if self.attempts else 0.0


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _latencies(groups: dict[str, list[float]]) -> list[Latency]:
    return [
        Latency(name=name, count=len(v), p50=percentile(v, 0.5), p95=percentile(v, 0.95))
        for name, v in sorted(groups.items())
    ]


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_JSON: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "kind": "json_extract(result, '$.kind')",
        "seconds": "(julianday(json_extract(result, '$.finished_at')) - "
        "julianday(json_extract(result, '$.started_at'))) * 86400",
        "attempts": "json_array_length(json_extract(result, '$.attempts'))",
        "input_tokens": "json_extract(usage, '$.input_tokens')",
        "output_tokens": "json_extract(usage, '$.output_tokens')",
        "waited": "json_extract(data, '$.waited')",
    },
    "postgres": {
        "kind": "(result::json->>'kind')",
        "seconds": "extract(epoch FROM (result::json->>'finished_at')::timestamptz - "
        "(result::json->>'started_at')::timestamptz)",
        "attempts": "json_array_length(result::json->'attempts')",
        "input_tokens": "(usage::json->>'input_tokens')::bigint",
        "output_tokens": "(usage::json->>'output_tokens')::bigint",
        "waited": "(data::json->>'waited')::float",
    },
}
"""The JSON fields the performance figures read, in each database's words."""


class RunQuery:
    """Read-only queries over a run store's tables.

    Args:
        path: The SQLite file (of ``SQLiteRunStore``); created with the store's tables when
            missing, so a dashboard started before any run shows an empty list rather than
            an error.
        database_url: A PostgreSQL database instead (of ``PostgresRunStore``).
    """

    def __init__(self, path: str | Path = "", *, database_url: str | None = None) -> None:
        self.path = str(path)
        backend: Backend
        # The tables, when nothing has run yet.
        if database_url:
            PostgresRunStore(database_url).close()
            backend = PostgresBackend(database_url, "run store")
            with backend.read() as db:
                db.run("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        else:
            SQLiteRunStore(self.path).close()
            backend = SQLiteBackend(self.path, "run store")
            with backend.read() as db:
                db.run("PRAGMA query_only = ON")
        self._backend = backend

    @classmethod
    def open(cls, settings: Settings) -> RunQuery:
        """Over the run store the settings name (PostgreSQL at ``database_url``, else
        ``runs_db``)."""
        return cls(settings.runs_db, database_url=settings.database_url)

    def close(self) -> None:
        self._backend.close()

    def _rows(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._backend.read() as db:
            return [tuple(row) for row in db.all(sql, *params)]

    def page(
        self,
        *,
        status: RunState | None = None,
        search: str | None = None,
        corpus: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> RunPage:
        """Runs, newest first, filtered by status, corpus and text in their task or id."""
        where: list[str] = []
        params: list[Any] = []
        if status:
            where.append("status = ?")
            params.append(status)
        if corpus:
            where.append("corpus = ?")
            params.append(corpus)
        if search:
            where.append("(task LIKE ? ESCAPE '\\' OR run_id LIKE ? ESCAPE '\\')")
            params += [_like(search), _like(search)]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        offset, limit = max(0, offset), max(1, limit)
        (total,) = self._rows(f"SELECT COUNT(*) FROM runs{clause}", params)[0]
        order = "rowid" if self._backend.dialect == "sqlite" else "pos"
        rows = self._rows(
            f"SELECT {SQLRunStore._SUMMARY_COLUMNS}, "
            "(SELECT report FROM rounds WHERE rounds.run_id = runs.run_id "
            "ORDER BY round DESC LIMIT 1) "
            f"FROM runs{clause} ORDER BY started_at DESC, {order} DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        out = []
        for row in rows:
            report = json.loads(row[-1]) if row[-1] else []
            out.append(
                RunRow(
                    summary=SQLRunStore._summary(row[:-1]),
                    requirements_passed=sum(bool(r.get("passed")) for r in report),
                    requirements_total=len(report),
                )
            )
        return RunPage(rows=out, total=total, offset=offset, limit=limit)

    def corpora(self) -> list[str]:
        """The corpora runs were given, by name."""
        rows = self._rows("SELECT DISTINCT corpus FROM runs WHERE corpus IS NOT NULL")
        return sorted(name for (name,) in rows)

    def changed(self) -> tuple[int, str]:
        """A token that changes whenever a run is added or records an event."""
        count, latest = self._rows("SELECT COUNT(*), COALESCE(MAX(updated_at), '') FROM runs")[0]
        return int(count), str(latest)

    def status(self, run_id: str) -> RunState | None:
        """The run's status, or ``None`` when there is no such run."""
        rows = self._rows("SELECT status FROM runs WHERE run_id = ?", (run_id,))
        return rows[0][0] if rows else None

    def events_after(self, run_id: str, seq: int, *, limit: int = 500) -> list[tuple[int, Event]]:
        """The run's events after sequence number ``seq`` (oldest first), with theirs."""
        rows = self._rows(
            "SELECT seq, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (run_id, seq, limit),
        )
        return [(s, EVENT_ADAPTER.validate_json(data)) for s, data in rows]

    def last_seq(self, run_id: str) -> int:
        (seq,) = self._rows("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?", (run_id,))[
            0
        ]
        return int(seq)

    def performance(self, *, days: int = 30, now: datetime | None = None) -> Performance:
        """Latency, usage, failure, retry and cache figures of the runs of the last ``days``."""
        since = (now or datetime.now(UTC)) - timedelta(days=days)
        start = since.isoformat()
        recent = "run_id IN (SELECT run_id FROM runs WHERE started_at >= ?)"
        runs = dict(
            self._rows(
                "SELECT status, COUNT(*) FROM runs WHERE started_at >= ? GROUP BY status", (start,)
            )
        )
        by_model: dict[str, list[float]] = defaultdict(list)
        outcomes: dict[str, int] = defaultdict(int)
        for model, outcome, seconds in self._rows(
            f"SELECT model, outcome, seconds FROM attempts WHERE {recent}", (start,)
        ):
            outcomes[outcome] += 1
            if outcome != "cached":
                by_model[model].append(seconds)
        by_kind: dict[str, list[float]] = defaultdict(list)
        steps = retried = failed = 0
        field = _JSON[self._backend.dialect]
        for kind, status, seconds, attempts in self._rows(
            f"SELECT {field['kind']}, status, {field['seconds']}, {field['attempts']} "
            f"FROM steps WHERE result IS NOT NULL AND status != 'skipped' AND {recent}",
            (start,),
        ):
            steps += 1
            retried += (attempts or 0) > 1
            failed += status == "failed"
            if status == "done" and seconds is not None:
                by_kind[kind].append(float(seconds))
        days_rows = self._rows(
            "SELECT substr(at, 1, 10), SUM(CASE WHEN outcome != 'cached' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN outcome = 'cached' THEN 1 ELSE 0 END), "
            f"SUM({field['input_tokens']}), SUM({field['output_tokens']}) "
            f"FROM attempts WHERE {recent} GROUP BY 1 ORDER BY 1",
            (start,),
        )
        delayed, waited = self._rows(
            f"SELECT COUNT(*), COALESCE(SUM({field['waited']}), 0) FROM events "
            f"WHERE kind = 'model_attempted' AND {field['waited']} > 0 AND {recent}",
            (start,),
        )[0]
        return Performance(
            since=since,
            delayed=delayed,
            waited_seconds=waited,
            runs=runs,
            step_latency=_latencies(by_kind),
            model_latency=_latencies(by_model),
            days=[
                UsageDay(
                    day=d, calls=c or 0, cached=k or 0, input_tokens=i or 0, output_tokens=o or 0
                )
                for d, c, k, i, o in days_rows
            ],
            attempts=sum(outcomes.values()),
            failed=outcomes["error"],
            reasks=outcomes["invalid"],
            cached=outcomes["cached"],
            steps=steps,
            steps_retried=retried,
            steps_failed=failed,
        )
