"""The run store in PostgreSQL (extra ``[postgres]``): runs shared by every machine that
reaches the database, chosen by ``MAESTRO_DATABASE_URL`` (:func:`open_run_store`).

Behaves as :class:`~maestro_lite.runs.SQLiteRunStore` does (one test suite runs against
both); the writes of one run hold an advisory lock on it, so runs written by different
processes never wait for each other.
"""

from __future__ import annotations

from .._db import PostgresBackend
from ..settings import Settings
from .sql import SQLRunStore
from .sqlite import SQLiteRunStore

__all__ = ["PostgresRunStore", "open_run_store"]


class PostgresRunStore(SQLRunStore):
    """Runs recorded in PostgreSQL, in the schema ``maestro``.

    Args:
        url: ``postgresql://user:password@host:port/database``.

    Example::

        store = PostgresRunStore("postgresql://maestro@db.internal/maestro")
    """

    def __init__(self, url: str) -> None:
        super().__init__(PostgresBackend(url, "run store"))


def open_run_store(settings: Settings | None = None) -> SQLRunStore:
    """The run store the settings name: PostgreSQL at ``database_url`` when set (shared by
    every machine), else the SQLite file ``runs_db`` under ``home``."""
    settings = settings or Settings.from_env()
    if settings.database_url:
        return PostgresRunStore(settings.database_url)
    return SQLiteRunStore.open(settings)
