"""A throwaway PostgreSQL server from Debian's package, on 127.0.0.1, for the tests that
need a real one: its own data folder and port, stopped at the end of the session.

`.ci/run` installs the package (``apt-get install postgresql``); where it is missing, the
tests that need it skip, saying so. Run as root (CI), the server runs as the package's
``postgres`` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["fresh_database", "postgres_bin", "running_postgres"]


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL programs (the newest version), if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[str]:
    """Start a server; yields its URL (user ``maestro``, trust authentication on loopback).

    ``durable``: commits reach the disk as in production (``fsync`` on, for benchmarks);
    tests run without it, which is faster and loses nothing a test needs."""
    programs = postgres_bin()
    if programs is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="maestro-pg-"))
    data = folder / "data"
    if as_root:
        shutil.chown(folder, "postgres", "postgres")
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run(
            [*prefix, *args], check=True, capture_output=True, text=True, timeout=120, cwd=folder
        )

    run(str(programs / "initdb"), "-D", str(data), "-A", "trust", "-U", "maestro", "-E", "UTF8")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    if not durable:
        options += " -c fsync=off"
    run(
        str(programs / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(folder / "log"),
        "-w",
        "start",
    )
    try:
        yield f"postgresql://maestro@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(programs / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=120,
            cwd=folder,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server at ``server_url``, dropped afterwards; yields its
    URL (each test gets its own, so stores never see another test's rows)."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{server_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as db:
            db.execute(f"DROP DATABASE {name} WITH (FORCE)")
