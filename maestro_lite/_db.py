"""What the SQL stores share: a connection to SQLite or PostgreSQL behind one small interface,
and versioned schema migrations.

Every store (runs, schedules and the job queue, shared limits) writes its SQL once, with
``?`` placeholders, against :class:`Db`; a :class:`Backend` opens the connection and runs
transactions:

* :class:`SQLiteBackend`: one file in WAL mode; a write transaction is ``BEGIN IMMEDIATE``,
  so it holds the database's write lock from its start and a read-then-write inside it
  cannot race another process.
* :class:`PostgresBackend` (extra ``[postgres]``): tables in the schema ``maestro``; a write
  transaction takes a transaction-level advisory lock on the key it is given (a run, a
  gate), which serialises the writers of that key as ``BEGIN IMMEDIATE`` does, without
  serialising everything; time is the server's clock, so machines whose clocks differ agree.

Schemas are versioned per store (:func:`migrate`): a table ``schema_versions`` holds each
store's version, and the migrations a database lacks are applied in order when a store
opens it, each in one transaction; a database written by a newer version is refused.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, Self

from ._sqlite import open_database, write_transaction
from .errors import StoreError

__all__ = [
    "Backend",
    "Db",
    "Dialect",
    "Migration",
    "PostgresBackend",
    "SQLStore",
    "SQLiteBackend",
    "migrate",
]

Dialect = Literal["sqlite", "postgres"]


class Db:
    """A transaction's connection, with ``?`` placeholders whatever the driver's style."""

    def __init__(
        self,
        connection: Any,
        clock: Callable[[], float],
        dialect: Dialect = "sqlite",
        sync: Callable[[], None] | None = None,
    ) -> None:
        self._connection = connection
        self.dialect: Dialect = dialect
        self._clock = clock
        self._now: float | None = None
        self._sync = sync

    @property
    def now(self) -> float:
        """The clock every process agrees on (epoch seconds), read once per transaction
        when first asked for."""
        if self._now is None:
            self._now = self._clock()
        return self._now

    def _sql(self, sql: str) -> str:
        return sql if self.dialect == "sqlite" else sql.replace("?", "%s")

    def run(self, sql: str, *params: Any) -> None:
        """Execute one statement (in PostgreSQL it may travel with the next ones: its
        errors surface by the end of the transaction)."""
        self._connection.execute(self._sql(sql), params)

    def changed(self, sql: str, *params: Any) -> int:
        """Execute one statement; the number of rows it changed."""
        cursor = self._connection.execute(self._sql(sql), params)
        if self._sync is not None:
            self._sync()  # the count arrives with the result
        return int(cursor.rowcount)

    def one(self, sql: str, *params: Any) -> Any:
        return self._connection.execute(self._sql(sql), params).fetchone()

    def all(self, sql: str, *params: Any) -> list[Any]:
        return list(self._connection.execute(self._sql(sql), params).fetchall())

    @property
    def order(self) -> str:
        """The column that orders a table's rows by insertion (``pos`` in PostgreSQL, a
        ``BIGSERIAL`` its migrations add where the stores need that order)."""
        return "rowid" if self.dialect == "sqlite" else "pos"

    @property
    def for_update(self) -> str:
        """Suffix that locks the selected rows until the transaction ends (PostgreSQL;
        SQLite's write transaction holds the whole database already)."""
        return "" if self.dialect == "sqlite" else " FOR UPDATE"

    @property
    def skip_locked(self) -> str:
        """Suffix that takes rows no other transaction holds, skipping the held ones."""
        return "" if self.dialect == "sqlite" else " FOR UPDATE SKIP LOCKED"


class Backend(Protocol):
    """A database connection shared by one store's threads."""

    dialect: Dialect
    where: str
    """The database, for messages (never a password)."""

    def write(self, key: str | None = None) -> AbstractContextManager[Db]:
        """One write transaction; writers of the same ``key`` never interleave (``None``:
        no lock beyond what the statements take)."""
        ...

    def read(self) -> AbstractContextManager[Db]:
        """Reads, each statement seeing the latest commits."""
        ...

    def snapshot(self) -> AbstractContextManager[Db]:
        """Reads that see one consistent state while others write."""
        ...

    def close(self) -> None: ...


class SQLiteBackend:
    """A SQLite file (created with its folder) or ``":memory:"``, in WAL mode.

    Args:
        path: The database file.
        what: Names the store in errors.
        synchronous: ``NORMAL`` survives a killed process; ``FULL`` also a power cut.
        busy_timeout: Seconds to wait for another process's write.
        clock: Wall-clock seconds, the same in every process (for tests).
    """

    dialect: Dialect = "sqlite"

    def __init__(
        self,
        path: str | Path,
        what: str,
        *,
        synchronous: Literal["NORMAL", "FULL"] | None = None,
        busy_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.where = str(path)
        self._what = what
        self._clock = clock
        self._lock = threading.RLock()
        # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE. The
        # tables come from the store's migrations, not a schema script.
        self._db = open_database(path, "", what, busy_timeout=busy_timeout, synchronous=synchronous)

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    @contextmanager
    def write(self, key: str | None = None) -> Iterator[Db]:
        with write_transaction(self._db, self._lock, f"{self._what} {self.where}") as db:
            yield Db(db, self._clock)

    @contextmanager
    def read(self) -> Iterator[Db]:
        with self._lock:
            yield Db(self._db, self._clock)

    @contextmanager
    def snapshot(self) -> Iterator[Db]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield Db(self._db, self._clock)
            finally:
                self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresBackend:
    """A PostgreSQL database (extra ``[postgres]``), its tables in the schema ``maestro``.

    Args:
        url: ``postgresql://user:password@host:port/database``.
        what: Names the store in errors.
    """

    dialect: Dialect = "postgres"

    def __init__(self, url: str, what: str) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the extra is not installed
            raise StoreError(
                "PostgreSQL needs psycopg", hint="pip install 'maestro-lite[postgres]'"
            ) from exc
        self._what = what
        self._lock = threading.RLock()
        self.where = url.rpartition("@")[2]  # never the password, in errors
        try:
            self._conn = psycopg.connect(
                url, autocommit=True, options="-c search_path=maestro", connect_timeout=10
            )
            self._conn.execute("CREATE SCHEMA IF NOT EXISTS maestro")
        except psycopg.IntegrityError:
            pass  # another process created it at the same moment
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the {what} at {self.where}: {exc}") from exc

    def _server_time(self) -> float:
        row = self._conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        return float(row[0]) if row else time.time()

    @contextmanager
    def _transaction(self, key: str | None, isolation: str | None = None) -> Iterator[Db]:
        """One transaction in pipeline mode: statements whose results are not read go to
        the server together (a checkpoint's BEGIN, lock, rows and COMMIT in one or two
        round trips instead of one each)."""
        import psycopg

        with self._lock:
            try:
                with self._conn.pipeline() as pipeline, self._conn.transaction():
                    if isolation is not None:
                        self._conn.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
                    if key is not None:
                        self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
                    yield Db(self._conn, self._server_time, "postgres", pipeline.sync)
            except psycopg.OperationalError as exc:
                raise StoreError(f"the {self._what} at {self.where} is unavailable: {exc}") from exc

    def write(self, key: str | None = None) -> AbstractContextManager[Db]:
        return self._transaction(key)

    def read(self) -> AbstractContextManager[Db]:
        return self._transaction(None)

    def snapshot(self) -> AbstractContextManager[Db]:
        return self._transaction(None, "REPEATABLE READ")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@dataclass(frozen=True)
class Migration:
    """One step of a store's schema: statements separated by ``;`` (no ``;`` inside them).

    ``postgres`` defaults to ``sqlite`` with ``REAL`` columns as ``DOUBLE PRECISION``.
    """

    sqlite: str
    postgres: str | None = None

    def statements(self, dialect: Dialect) -> list[str]:
        if dialect == "sqlite":
            sql = self.sqlite
        else:
            sql = self.postgres or self.sqlite.replace(" REAL", " DOUBLE PRECISION")
        return [s.strip() for s in sql.split(";") if s.strip()]


_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS schema_versions (store TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


def migrate(backend: Backend, store: str, migrations: Sequence[Migration]) -> int:
    """Bring ``store``'s tables to the last of ``migrations`` (version ``len(migrations)``),
    applying each missing one in its own transaction; returns the version found.

    Raises:
        StoreError: The database was written by a newer version, or a migration failed.
    """
    latest = len(migrations)
    found = 0
    for version in range(1, latest + 1):
        # One lock for every store's migrations: two processes opening a new database at
        # once neither both apply a step nor see half of one.
        with backend.write("maestro schema") as db:
            db.run(_VERSIONS)
            row = db.one("SELECT version FROM schema_versions WHERE store = ?", store)
            current = int(row[0]) if row else 0
            if version == 1:
                found = current
            if current > latest:
                raise StoreError(
                    f"the {store} store in {backend.where} was written by a newer "
                    f"maestro-lite (schema {current}, this one knows {latest})",
                    hint="Upgrade maestro-lite, or point MAESTRO_HOME elsewhere.",
                )
            if current >= version:
                continue
            for statement in migrations[version - 1].statements(backend.dialect):
                db.run(statement)
            db.run(
                "INSERT INTO schema_versions (store, version) VALUES (?, ?) "
                "ON CONFLICT (store) DO UPDATE SET version = excluded.version",
                store,
                version,
            )
    return found


class SQLStore:
    """What every SQL store does with its backend: bring the schema up to date when opened,
    close it, and be a context manager.

    Args:
        backend: The open database (closed again if the migrations fail).
        store: The store's name in ``schema_versions``.
        migrations: Its schema, version by version.
    """

    def __init__(self, backend: Backend, store: str, migrations: Sequence[Migration]) -> None:
        self._backend = backend
        self.where = backend.where
        try:
            migrate(backend, store, migrations)
        except BaseException:
            backend.close()
            raise

    def close(self) -> None:
        """Release the store's connection."""
        self._backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
