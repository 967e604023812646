"""Open the stores on what the ``db`` fixture gives: a SQLite file path or a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maestro_lite import Settings
from maestro_lite.runs import PostgresRunStore, SQLiteRunStore
from maestro_lite.runs.sql import SQLRunStore
from maestro_lite.scheduling import PostgresScheduleStore, SQLiteScheduleStore
from maestro_lite.scheduling._sql_store import SQLScheduleStore

__all__ = ["close_opened", "run_store", "schedule_store", "settings_on"]

_opened: list[SQLRunStore | SQLScheduleStore] = []
"""Stores the helpers opened, closed by the ``db`` fixture after each test."""


def _postgres(db: str) -> bool:
    return db.startswith("postgresql://")


def run_store(db: str) -> SQLRunStore:
    """The run store at ``db``."""
    store = PostgresRunStore(db) if _postgres(db) else SQLiteRunStore(db)
    _opened.append(store)
    return store


def schedule_store(db: str, **options: Any) -> SQLScheduleStore:
    """The schedule store at ``db`` (``options``: ``lease_seconds``)."""
    store: SQLScheduleStore
    if _postgres(db):
        store = PostgresScheduleStore(db, **options)
    else:
        store = SQLiteScheduleStore(db, **options)
    _opened.append(store)
    return store


def close_opened() -> None:
    """Close every store the helpers opened."""
    while _opened:
        _opened.pop().close()


def settings_on(db: str, home: Path, **options: Any) -> Settings:
    """Settings whose stores are at ``db``: its URL, or ``home`` holding the SQLite file."""
    if _postgres(db):
        return Settings(home=home, database_url=db, **options)
    return Settings(home=Path(db).parent, **options)
