"""Provider limits held across processes: the shared gates in one SQLite file, and real
processes calling one OpenAI-compatible server through them."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from evals.bench_limits import CHILD
from maestro_lite import Settings
from maestro_lite.limits import Limiter
from maestro_lite.rates import ProviderLimits
from maestro_lite.shared_limits import PostgresGates, SQLiteGates
from maestro_lite.testing.openai_server import OpenAICompatibleServer

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_two_processes_gates_share_the_slots_and_the_rate(tmp_path: Path) -> None:
    clock = Clock()
    here = SQLiteGates(tmp_path / "limits.sqlite3", clock=clock)
    there = SQLiteGates(tmp_path / "limits.sqlite3", clock=clock)  # another process's view
    two = ProviderLimits(max_concurrent=2)
    try:
        first, _ = here.try_acquire("p", two, 0)
        second, _ = there.try_acquire("p", two, 0)
        assert first and second
        assert there.try_acquire("p", two, 0) == (None, 0.0)  # both slots are taken
        assert here.try_acquire("other", two, 0)[0]  # another provider has its own gate
        here.release(first, "p", two, 0)
        assert there.try_acquire("p", two, 0)[0]

        rate = ProviderLimits(max_concurrent=None, requests_per_minute=60)
        granted = [g.try_acquire("r", rate, 0)[0] for g in (here, there)]
        assert granted[0] and granted[1] is None  # a burst of one, across both
        lease, wait = there.try_acquire("r", rate, 0)
        assert lease is None and wait == pytest.approx(60 / 59)  # the rate after the burst
        clock.now += wait + 1e-9
        assert there.try_acquire("r", rate, 0)[0]
    finally:
        here.close()
        there.close()


def test_tokens_are_charged_by_estimate_and_corrected_on_release(tmp_path: Path) -> None:
    clock = Clock()
    gates = SQLiteGates(tmp_path / "limits.sqlite3", clock=clock)
    limits = ProviderLimits(max_concurrent=None, tokens_per_minute=6_100)  # a 100-token burst
    try:
        lease, _ = gates.try_acquire("p", limits, 100)
        assert lease and gates.try_acquire("p", limits, 100)[0] is None
        gates.release(lease, "p", limits, -100)  # it used nothing: the estimate comes back
        assert gates.try_acquire("p", limits, 100)[0]
    finally:
        gates.close()


def test_the_leases_of_a_dead_process_are_dropped(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gates = SQLiteGates(tmp_path / "limits.sqlite3", lease_seconds=600)
    one = ProviderLimits(max_concurrent=1)
    db = sqlite3.connect(tmp_path / "limits.sqlite3")
    with db:
        db.execute(
            "INSERT INTO leases VALUES ('stale', 'p', ?, ?)",
            (f"{socket.gethostname()}:{dead.pid}", time.time()),
        )
        db.execute(  # a live process on another machine: kept until it is too old
            "INSERT INTO leases VALUES ('far', 'q', 'elsewhere:1', ?)", (time.time(),)
        )
    db.close()
    try:
        assert gates.in_flight("p") == 0
        assert gates.try_acquire("p", one, 0)[0]
        assert gates.try_acquire("q", one, 0) == (None, 0.0)
        old = SQLiteGates(tmp_path / "limits.sqlite3", lease_seconds=600, clock=lambda: 1e12)
        try:
            assert old.try_acquire("q", one, 0)[0]  # past lease_seconds: dropped
        finally:
            old.close()
    finally:
        gates.close()


def test_settings_on_one_home_share_one_file(tmp_path: Path) -> None:
    limiter = Limiter.from_settings(Settings(home=tmp_path / "a", max_concurrent=2))
    assert limiter is not None and isinstance(limiter.shared, SQLiteGates)
    assert limiter.shared.path == tmp_path / "a" / "limits.sqlite3"
    other = Limiter.from_settings(Settings(home=tmp_path / "b", max_concurrent=2))
    assert other is not None and other is not limiter


def _run_children(
    server: OpenAICompatibleServer, homes: list[Path], calls: int, **limits: str
) -> None:
    """``calls`` calls at once from a process per home, with the ``MAESTRO_*`` ``limits``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MAESTRO_PROVIDER": "openai",
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "test",
        "MAESTRO_MODEL": "test-model",
        **{f"MAESTRO_{k.upper()}": v for k, v in limits.items()},
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(calls)],
            env={**env, "MAESTRO_HOME": str(home)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for home in homes
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err


def test_processes_on_one_home_never_exceed_the_concurrency_together(tmp_path: Path) -> None:
    with OpenAICompatibleServer(lambda body: "ok", latency=0.2) as server:
        _run_children(server, [tmp_path / "home"] * 4, 3, max_concurrent="2")
    assert server.answered == 12
    assert server.max_in_flight == 2  # reached, never passed, by four processes together


def test_processes_on_one_home_share_the_request_rate(tmp_path: Path) -> None:
    """120 requests/min is a burst of about 2, then about 2 a second, for all processes
    together: 12 calls sent at once by four processes take about 5 seconds to get out
    (unshared, each process would send its 3 within half a second of its start)."""
    stamps: list[float] = []
    lock = threading.Lock()

    def answer(body: Any) -> str:
        with lock:
            stamps.append(time.monotonic())
        return "ok"

    with OpenAICompatibleServer(answer) as server:
        _run_children(server, [tmp_path / "home"] * 4, 3, requests_per_minute="120")
    assert len(stamps) == 12
    # Granted over (12 - 2 burst) / (118 / 60) = 5.1 s; the server's clock sees the spread
    # less the jitter of when each process's request arrives (up to a second when loaded).
    assert max(stamps) - min(stamps) >= 4.0


def _fresh_schema(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP SCHEMA IF EXISTS maestro CASCADE")


def test_postgres_gates_share_the_slots_between_connections(postgres_url: str) -> None:
    _fresh_schema(postgres_url)
    here, there = PostgresGates(postgres_url), PostgresGates(postgres_url)
    two = ProviderLimits(max_concurrent=2)
    try:
        first, _ = here.try_acquire("p", two, 0)
        assert first and there.try_acquire("p", two, 0)[0]
        assert there.try_acquire("p", two, 0) == (None, 0.0)
        here.release(first, "p", two, 0)
        assert there.in_flight("p") == 1 and there.try_acquire("p", two, 0)[0]

        rate = ProviderLimits(max_concurrent=None, requests_per_minute=60)
        assert here.try_acquire("r", rate, 0)[0]
        lease, wait = there.try_acquire("r", rate, 0)  # the burst of one is spent, for both
        assert lease is None and 0 < wait <= 60 / 59
    finally:
        here.close()
        there.close()


def test_postgres_drops_the_leases_of_a_dead_process(postgres_url: str) -> None:
    import psycopg

    _fresh_schema(postgres_url)
    gates = PostgresGates(postgres_url)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(
            "INSERT INTO maestro.leases VALUES ('stale', 'p', %s, %s)",
            (f"{socket.gethostname()}:{dead.pid}", time.time()),
        )
    try:
        assert gates.try_acquire("p", ProviderLimits(max_concurrent=1), 0)[0]
    finally:
        gates.close()


def test_processes_on_different_homes_share_limits_through_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    """Four processes with homes of their own, as on four machines: only the database is
    shared, and the concurrency holds for all of them."""
    _fresh_schema(postgres_url)
    homes = [tmp_path / f"machine{i}" for i in range(4)]
    with OpenAICompatibleServer(lambda body: "ok", latency=0.2) as server:
        _run_children(server, homes, 3, max_concurrent="2", database_url=postgres_url)
    assert server.answered == 12
    assert server.max_in_flight == 2


def test_a_database_url_that_is_not_postgres_is_refused() -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        Settings(database_url="mysql://x")


async def test_a_shared_store_that_fails_on_release_does_not_keep_the_local_slot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from maestro_lite.errors import StoreError

    class Failing(SQLiteGates):
        def release(self, *args: Any) -> None:
            raise StoreError("the disk is full")

    gates = Failing(tmp_path / "limits.sqlite3")
    limiter = Limiter(default=ProviderLimits(max_concurrent=1), shared=gates)
    try:
        permit = await limiter.acquire("p")
        permit.release()
        assert limiter.stats("p").in_flight == 0  # this process's slot is free again
        assert "could not return a p lease" in caplog.text
    finally:
        gates.close()
