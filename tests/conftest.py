"""Shared fixtures. Tests never reach the internet; servers they need run on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from maestro_lite.models import ModelRegistry
from maestro_lite.models.local import LocalModel

SMALL_MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's keys, endpoints or data directory."""
    for name in list(os.environ):
        if name.startswith(("MAESTRO_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAESTRO_ALLOW_DOWNLOAD", "0")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory shared by the session, so the small model is assembled once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def small_model_path(models_dir: Path) -> Path:
    """The 0.5B GGUF, assembled from its installed packages and sha256-verified."""
    registry = ModelRegistry(models_dir, allow_download=False)
    return registry.ensure(SMALL_MODEL)


@pytest.fixture(scope="session")
def local_model(small_model_path: Path) -> Iterator[LocalModel]:
    """The real 0.5B model through llama.cpp, loaded once per session."""
    model = LocalModel(small_model_path, n_ctx=4096)
    yield model
    model.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 for the session (Debian's package, which
    `.ci/run` installs); tests that need it skip where it is not installed."""
    from .services.postgres import postgres_bin, running_postgres

    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql)")
    with running_postgres() as url:
        yield url


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server."""
    from .services.postgres import fresh_database

    with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a store test keeps its state: a SQLite file, then a fresh PostgreSQL database
    (skipped where PostgreSQL is not installed). Store suites take this to run against both
    backends; open stores on it with :func:`tests.services.stores.run_store` and friends."""
    from .services.stores import close_opened

    if request.param == "postgres":
        where = str(request.getfixturevalue("database_url"))
    else:
        where = str(tmp_path / "db" / "runs.sqlite3")
    yield where
    close_opened()
