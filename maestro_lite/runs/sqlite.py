"""The default run store: one SQLite file (``settings.runs_db``), safe for several runs at once.

The database is in WAL mode, so readers (``maestro runs list`` while runs are going) never
block writers, and several processes can record runs into one file. Every event is written
in its own ``BEGIN IMMEDIATE`` transaction together with what it implies.

``synchronous=NORMAL`` (the default) makes a commit survive the process being killed, which
is what resuming needs; ``FULL`` also survives a power cut, at the cost of an fsync per event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from .._db import SQLiteBackend
from ..settings import Settings
from .sql import SQLRunStore

__all__ = ["SQLiteRunStore"]


class SQLiteRunStore(SQLRunStore):
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
        backend = SQLiteBackend(
            path, "run store", synchronous=synchronous, busy_timeout=busy_timeout
        )
        super().__init__(backend)

    @classmethod
    def open(cls, settings: Settings | None = None, **kwargs: Any) -> SQLiteRunStore:
        """The store at ``settings.runs_db`` (under the maestro-lite home directory)."""
        return cls((settings or Settings.from_env()).runs_db, **kwargs)
