"""Provider limits held across processes: every ``maestro`` process on one home shares them.

A :class:`~maestro_lite.limits.Limiter` keeps a provider's limits within one process. Eight
``maestro run`` processes, or a worker beside a CLI run, each had their own: together they
sent several times the calls in flight and the request rate the provider allows.
:class:`SharedGates` is the part the processes share: each call takes a *lease* from it
before it starts and returns the lease when it ends. The limiter still orders its own
process's calls (round-robin between runs); the shared gates decide across processes.

:class:`SQLiteGates` keeps the leases and the rate buckets in a SQLite file (by default
``MAESTRO_HOME/limits.sqlite3``), changed in one ``BEGIN IMMEDIATE`` transaction per
decision, so two processes never both take the last slot. The rates are the same token
buckets as the limiter's (:class:`~maestro_lite.limits.RateBucket`), stored as a level and a
time stamp. A process killed while its calls were in flight leaves leases behind: a lease
whose process is gone (this machine) or that is older than ``lease_seconds`` (a process on
another machine sharing the file) is dropped when the gate is next asked.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._sqlite import open_database, write_transaction
from .errors import StoreError
from .rates import ProviderLimits, RateBucket
from .settings import Settings

__all__ = ["Lease", "PostgresGates", "SQLiteGates", "SharedGates", "gates_for"]

Lease = str
"""The id of one call's lease."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    lease_id TEXT PRIMARY KEY,
    gate TEXT NOT NULL,
    holder TEXT NOT NULL,
    since REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_gate ON leases (gate);
CREATE TABLE IF NOT EXISTS buckets (
    gate TEXT NOT NULL,
    kind TEXT NOT NULL,
    level REAL NOT NULL,
    stamp REAL NOT NULL,
    PRIMARY KEY (gate, kind)
);
"""


@runtime_checkable
class SharedGates(Protocol):
    """Limits shared by processes: a lease per call in flight, and the rate buckets."""

    def try_acquire(
        self, gate: str, limits: ProviderLimits, tokens: int
    ) -> tuple[Lease | None, float]:
        """A lease for one call through ``gate`` if ``limits`` allow it now: ``(lease,
        0.0)``; else ``(None, seconds)``, the time until a rate allows it (0.0 when the call
        waits for a call in flight to end)."""
        ...

    def release(self, lease: Lease, gate: str, limits: ProviderLimits, correction: int) -> None:
        """End a call's lease; ``correction`` is added to the tokens it was charged (the
        provider's count minus the estimate)."""
        ...

    def close(self) -> None: ...


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(holder: str, host: str) -> bool:
    """Whether ``holder`` is a process on this machine that no longer runs."""
    where, _, pid = holder.rpartition(":")
    if where != host or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _SQLGates:
    """The decisions of the shared gates, over a database connection; the subclasses open
    it, run one serialised transaction, and give their dialect."""

    lease_seconds: float
    _host: str
    _upsert = (
        "INSERT INTO buckets (gate, kind, level, stamp) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (gate, kind) DO UPDATE SET level = excluded.level, stamp = excluded.stamp"
    )

    def _transaction(self, gate: str) -> AbstractContextManager[_Db]:
        """One transaction that no other process's decision on ``gate`` interleaves with."""
        raise NotImplementedError

    def _bucket(self, db: _Db, gate: str, kind: str, per_minute: float, now: float) -> RateBucket:
        row = db.one("SELECT level, stamp FROM buckets WHERE gate = ? AND kind = ?", gate, kind)
        bucket = RateBucket(per_minute, lambda: now)
        if row is not None:
            bucket.level, bucket.stamp = min(float(row[0]), bucket.capacity), float(row[1])
        return bucket

    def _save(self, db: _Db, gate: str, kind: str, bucket: RateBucket) -> None:
        db.run(self._upsert, gate, kind, bucket.level, bucket.stamp)

    def _in_flight(self, db: _Db, gate: str, now: float) -> int:
        """Calls in flight through ``gate``, after dropping the leases of dead processes."""
        rows = db.all("SELECT lease_id, holder, since FROM leases WHERE gate = ?", gate)
        for lease, holder, since in rows:
            if now - float(since) > self.lease_seconds or _gone(holder, self._host):
                db.run("DELETE FROM leases WHERE lease_id = ?", lease)
        row = db.one("SELECT COUNT(*) FROM leases WHERE gate = ?", gate)
        return int(row[0]) if row else 0

    def try_acquire(
        self, gate: str, limits: ProviderLimits, tokens: int
    ) -> tuple[Lease | None, float]:
        with self._transaction(gate) as db:
            now = db.now
            cap = limits.max_concurrent
            if cap is not None and self._in_flight(db, gate, now) >= cap:
                return None, 0.0
            requests = tokens_bucket = None
            wait = 0.0
            if limits.requests_per_minute is not None:
                requests = self._bucket(db, gate, "requests", limits.requests_per_minute, now)
                wait = requests.wait_for(1)
            if limits.tokens_per_minute is not None and tokens:
                tokens_bucket = self._bucket(db, gate, "tokens", limits.tokens_per_minute, now)
                wait = max(wait, tokens_bucket.wait_for(tokens))
            if wait > 0:
                return None, wait
            if requests is not None:
                requests.take(1)
                self._save(db, gate, "requests", requests)
            if tokens_bucket is not None:
                tokens_bucket.take(tokens)
                self._save(db, gate, "tokens", tokens_bucket)
            lease = uuid.uuid4().hex
            db.run(
                "INSERT INTO leases (lease_id, gate, holder, since) VALUES (?, ?, ?, ?)",
                lease,
                gate,
                _holder(),
                now,
            )
            return lease, 0.0

    def release(self, lease: Lease, gate: str, limits: ProviderLimits, correction: int) -> None:
        with self._transaction(gate) as db:
            db.run("DELETE FROM leases WHERE lease_id = ?", lease)
            if correction and limits.tokens_per_minute is not None:
                bucket = self._bucket(db, gate, "tokens", limits.tokens_per_minute, db.now)
                bucket.take(correction)
                self._save(db, gate, "tokens", bucket)

    def in_flight(self, gate: str) -> int:
        """Calls in flight through ``gate`` in every process (for tests and monitoring)."""
        with self._transaction(gate) as db:
            return self._in_flight(db, gate, db.now)


class _Db:
    """A transaction's connection, with ``?`` placeholders whatever the driver's style."""

    def __init__(self, connection: Any, now: float, placeholder: str = "?") -> None:
        self._connection = connection
        self._placeholder = placeholder
        self.now = now
        """The clock every process agrees on, read once per transaction."""

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", self._placeholder)

    def run(self, sql: str, *params: Any) -> None:
        self._connection.execute(self._sql(sql), params)

    def one(self, sql: str, *params: Any) -> Any:
        return self._connection.execute(self._sql(sql), params).fetchone()

    def all(self, sql: str, *params: Any) -> list[Any]:
        return list(self._connection.execute(self._sql(sql), params).fetchall())


class SQLiteGates(_SQLGates):
    """:class:`SharedGates` in a SQLite file every process on the machine opens.

    Args:
        path: The database file (created with its folder).
        lease_seconds: A lease this old is dropped even if its holder cannot be checked
            (another machine): longer than any call.
        clock: Wall-clock seconds, the same in every process (for tests).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        lease_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._host = socket.gethostname()
        self._db = open_database(self.path, _SCHEMA, "shared limits")

    @contextmanager
    def _transaction(self, gate: str) -> Iterator[_Db]:
        with write_transaction(self._db, self._lock, f"shared limits {self.path}") as db:
            yield _Db(db, self._clock())

    def close(self) -> None:
        with self._lock:
            self._db.close()


_PG_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS maestro;
CREATE TABLE IF NOT EXISTS maestro.leases (
    lease_id TEXT PRIMARY KEY,
    gate TEXT NOT NULL,
    holder TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_gate ON maestro.leases (gate);
CREATE TABLE IF NOT EXISTS maestro.buckets (
    gate TEXT NOT NULL,
    kind TEXT NOT NULL,
    level DOUBLE PRECISION NOT NULL,
    stamp DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (gate, kind)
);
"""


class PostgresGates(_SQLGates):
    """:class:`SharedGates` in PostgreSQL (extra ``[postgres]``): the limits hold for every
    process on every machine that reaches the database. Tables live in the schema
    ``maestro``; each decision on a gate holds a transaction-level advisory lock on it, and
    time is the database server's clock, so machines whose clocks differ still agree.

    Args:
        url: ``postgresql://user:password@host:port/database``.
        lease_seconds: A lease this old is dropped even if its holder cannot be checked
            (a process on another machine): longer than any call.
    """

    def __init__(self, url: str, *, lease_seconds: float = 3600.0) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the extra is not installed
            raise StoreError(
                "PostgreSQL needs psycopg", hint="pip install 'maestro-lite[postgres]'"
            ) from exc
        self.lease_seconds = lease_seconds
        self._host = socket.gethostname()
        self._lock = threading.RLock()
        self._where = url.rpartition("@")[2]  # never the password, in errors
        try:
            self._conn = psycopg.connect(
                url, autocommit=True, options="-c search_path=maestro", connect_timeout=10
            )
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('maestro schema'))")
                self._conn.execute(_PG_SCHEMA)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the shared limits at {self._where}: {exc}") from exc

    @contextmanager
    def _transaction(self, gate: str) -> Iterator[_Db]:
        import psycopg

        with self._lock:
            try:
                with self._conn.transaction():
                    self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (gate,))
                    row = self._conn.execute(
                        "SELECT extract(epoch FROM clock_timestamp())"
                    ).fetchone()
                    yield _Db(self._conn, float(row[0]) if row else time.time(), "%s")
            except psycopg.OperationalError as exc:
                raise StoreError(
                    f"the shared limits at {self._where} are unavailable: {exc}"
                ) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def gates_for(settings: Settings) -> SharedGates:
    """The shared gates the settings name: PostgreSQL at ``database_url`` when set (every
    machine), else the SQLite file under ``home`` (every process on this machine)."""
    if settings.database_url:
        return PostgresGates(settings.database_url)
    return SQLiteGates(settings.limits_db)
