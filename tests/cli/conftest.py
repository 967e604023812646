"""Run the real `maestro` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.retrieval_fixtures import chroma_server

__all__ = ["Maestro", "chroma_server", "maestro"]

Maestro = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def maestro(tmp_path: Path) -> Maestro:
    """``maestro(*args, env={...}, cwd=...)`` runs the CLI with a fresh MAESTRO_HOME,
    offline."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "OPENAI_"))
        }
        full_env.update(
            MAESTRO_HOME=str(tmp_path / "home"),
            MAESTRO_ALLOW_DOWNLOAD="0",
            COLUMNS="200",
            NO_COLOR="1",
        )
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "maestro_lite", *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
            cwd=cwd,
        )

    return run
