"""What the SQLite stores share (runs, schedules, the response cache, the shared limits):
one connection in autocommit mode, in WAL mode with a busy timeout, its schema created
when it opens, written to in explicit ``BEGIN IMMEDIATE`` transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from .errors import StoreError

__all__ = ["open_database", "write_transaction"]


def open_database(
    path: str | Path,
    schema: str,
    what: str,
    *,
    busy_timeout: float = 30.0,
    synchronous: Literal["NORMAL", "FULL"] | None = "NORMAL",
    version: int | None = None,
) -> sqlite3.Connection:
    """A store's connection: its folder created, autocommit (transactions are opened with
    :func:`write_transaction`), shared by the store's threads, WAL, and ``schema`` applied.

    Args:
        path: The database file, or ``":memory:"``.
        schema: The idempotent script creating the store's tables.
        what: Names the store in the error raised when it cannot open (``"run store"``).
        busy_timeout: Seconds to wait for another process's write to finish.
        synchronous: The ``synchronous`` pragma; ``None`` keeps SQLite's default.
        version: The schema version recorded as ``user_version``; a file recorded with a
            newer one is refused. ``None``: no version kept.

    Raises:
        StoreError: The file cannot be created or opened, or a newer version wrote it.
    """
    try:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as exc:
        raise _cannot_open(what, path, exc) from exc
    try:
        db.execute("PRAGMA journal_mode=WAL")
        if synchronous is not None:
            db.execute(f"PRAGMA synchronous={synchronous}")
        if version is not None:
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found > version:
                raise StoreError(
                    f"{path} was written by a newer maestro-lite (schema {found})",
                    hint="Upgrade maestro-lite, or point MAESTRO_HOME elsewhere.",
                )
        db.executescript(schema)
        if version is not None:
            db.execute(f"PRAGMA user_version={version}")
    except BaseException as exc:
        db.close()
        if isinstance(exc, sqlite3.Error):
            raise _cannot_open(what, path, exc) from exc
        raise
    return db


def _cannot_open(what: str, path: str | Path, exc: Exception) -> StoreError:
    return StoreError(
        f"cannot open the {what} {path}: {exc}",
        hint="Check that the directory is writable (MAESTRO_HOME).",
    )


@contextmanager
def write_transaction(
    db: sqlite3.Connection, lock: threading.RLock, what: str
) -> Iterator[sqlite3.Connection]:
    """One write transaction, holding the database's write lock from its start (so a
    read-then-write inside it cannot race another process), rolled back on any exception.

    Args:
        db: A connection opened with ``isolation_level=None``.
        lock: Serialises the threads sharing ``db``.
        what: Names the store in the error raised when the database is unavailable.
    """
    with lock:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{what} is unavailable: {exc}") from exc
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
