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
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._sqlite import write_transaction
from .errors import StoreError
from .rates import ProviderLimits, RateBucket

__all__ = ["Lease", "SQLiteGates", "SharedGates"]

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


class SQLiteGates:
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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the shared limits {self.path}: {exc}",
                hint="Check that the directory is writable (MAESTRO_HOME).",
            ) from exc

    def _bucket(
        self, db: sqlite3.Connection, gate: str, kind: str, per_minute: float, now: float
    ) -> RateBucket:
        row = db.execute(
            "SELECT level, stamp FROM buckets WHERE gate = ? AND kind = ?", (gate, kind)
        ).fetchone()
        bucket = RateBucket(per_minute, lambda: now)
        if row is not None:
            bucket.level, bucket.stamp = min(row[0], bucket.capacity), row[1]
        return bucket

    @staticmethod
    def _save(db: sqlite3.Connection, gate: str, kind: str, bucket: RateBucket) -> None:
        db.execute(
            "INSERT OR REPLACE INTO buckets (gate, kind, level, stamp) VALUES (?, ?, ?, ?)",
            (gate, kind, bucket.level, bucket.stamp),
        )

    def _in_flight(self, db: sqlite3.Connection, gate: str, now: float) -> int:
        """Calls in flight through ``gate``, after dropping the leases of dead processes."""
        rows = db.execute("SELECT lease_id, holder, since FROM leases WHERE gate = ?", (gate,))
        stale = [
            lease
            for lease, holder, since in rows.fetchall()
            if now - since > self.lease_seconds or _gone(holder, self._host)
        ]
        db.executemany("DELETE FROM leases WHERE lease_id = ?", [(s,) for s in stale])
        return int(db.execute("SELECT COUNT(*) FROM leases WHERE gate = ?", (gate,)).fetchone()[0])

    def try_acquire(
        self, gate: str, limits: ProviderLimits, tokens: int
    ) -> tuple[Lease | None, float]:
        now = self._clock()
        with write_transaction(self._db, self._lock, f"shared limits {self.path}") as db:
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
            db.execute(
                "INSERT INTO leases (lease_id, gate, holder, since) VALUES (?, ?, ?, ?)",
                (lease, gate, _holder(), now),
            )
            return lease, 0.0

    def release(self, lease: Lease, gate: str, limits: ProviderLimits, correction: int) -> None:
        now = self._clock()
        with write_transaction(self._db, self._lock, f"shared limits {self.path}") as db:
            db.execute("DELETE FROM leases WHERE lease_id = ?", (lease,))
            if correction and limits.tokens_per_minute is not None:
                bucket = self._bucket(db, gate, "tokens", limits.tokens_per_minute, now)
                bucket.take(correction)
                self._save(db, gate, "tokens", bucket)

    def in_flight(self, gate: str) -> int:
        """Calls in flight through ``gate`` in every process (for tests and monitoring)."""
        with write_transaction(self._db, self._lock, f"shared limits {self.path}") as db:
            return self._in_flight(db, gate, self._clock())

    def close(self) -> None:
        with self._lock:
            self._db.close()
