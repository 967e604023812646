"""What the SQLite stores share: one connection in autocommit mode, written to in explicit
``BEGIN IMMEDIATE`` transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import StoreError

__all__ = ["write_transaction"]


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
