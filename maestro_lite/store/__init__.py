"""Vector stores: the :class:`VectorStore` protocol and the Chroma adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..settings import Settings
from .base import Claim, CorpusConfig, StoredDocument, VectorStore, check_corpus_name

# Type-only: the Chroma backend imports chromadb, loaded when asked for.
if TYPE_CHECKING:
    from .chroma import ChromaStore

__all__ = [
    "ChromaStore",
    "Claim",
    "CorpusConfig",
    "StoredDocument",
    "VectorStore",
    "check_corpus_name",
    "store_from_settings",
]


def __getattr__(name: str) -> object:
    # chromadb takes most of a second to import; load it only when a store is used.
    if name == "ChromaStore":
        from .chroma import ChromaStore

        return ChromaStore
    raise AttributeError(name)


def store_from_settings(settings: Settings) -> VectorStore:
    """Chroma: a server when ``settings.chroma_url`` is set, else embedded under
    ``settings.chroma_dir``."""
    from .chroma import ChromaStore

    return ChromaStore.from_settings(settings)
