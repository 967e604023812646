"""The set-up every SQLite store shares (``maestro_lite._sqlite.open_database``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from maestro_lite import ResponseCache, SQLiteGates, SQLiteRunStore, SQLiteScheduleStore
from maestro_lite._sqlite import open_database
from maestro_lite.errors import StoreError

_SCHEMA = "CREATE TABLE IF NOT EXISTS t (x INTEGER);"


def test_a_store_opens_in_wal_with_its_schema_and_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "s.sqlite3"
    db = open_database(path, _SCHEMA, "test store", busy_timeout=2.5, version=3)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
        assert db.isolation_level is None  # autocommit: writes open BEGIN IMMEDIATE
        db.execute("INSERT INTO t VALUES (1)")
    finally:
        db.close()


def test_a_file_written_by_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version=9")
    raw.close()
    with pytest.raises(StoreError, match=r"written by a newer maestro-lite \(schema 9\)"):
        open_database(path, _SCHEMA, "test store", version=8)
    open_database(path, _SCHEMA, "test store", version=9).close()


@pytest.mark.parametrize(
    ("open_store", "what"),
    [
        (SQLiteRunStore, "run store"),
        (SQLiteScheduleStore, "schedule store"),
        (ResponseCache, "response cache"),
        (SQLiteGates, "shared limits"),
    ],
)
def test_every_store_names_itself_when_it_cannot_open(
    tmp_path: Path, open_store: type, what: str
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(StoreError, match=f"cannot open the {what} .*file"):
        open_store(blocked / "store.sqlite3")
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=f"cannot open the {what} "):
        open_store(corrupt)
