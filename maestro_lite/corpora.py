"""``Corpora``: opens corpora by name for :class:`~maestro_lite.orchestrator.Maestro`."""

from __future__ import annotations

from .corpus.corpus import Corpus
from .embeddings.base import Embedder
from .settings import Settings
from .store.base import VectorStore

__all__ = ["Corpora"]


class Corpora:
    """The corpora of one vector store, opened on demand and kept open.

    Implements :class:`~maestro_lite.orchestrator.CorpusStore`, so
    ``Maestro(model, corpora=Corpora(settings)).run(task, corpus="contracts")`` works.

    Args:
        settings: Where the store lives and which embedder to use.
        embedder: The embedding model (shared by every corpus opened here).
        vector_store: The vector store; the one ``settings`` describe when ``None``.
        store: The old name of ``vector_store`` (still accepted).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        vector_store: VectorStore | None = None,
        store: VectorStore | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.embedder = embedder
        self.vector_store = vector_store if vector_store is not None else store
        self._open: dict[str, Corpus] = {}

    @property
    def store(self) -> VectorStore | None:
        """The old name of :attr:`vector_store` (kept as an alias)."""
        return self.vector_store

    async def corpus(self, name: str) -> Corpus:
        """The existing corpus ``name``.

        Raises:
            CorpusNotFound: There is no corpus of that name.
        """
        if name not in self._open:
            self._open[name] = await Corpus.open(
                name,
                settings=self.settings,
                embedder=self.embedder,
                vector_store=self.vector_store,
                create=False,
            )
        return self._open[name]

    async def aclose(self) -> None:
        for corpus in self._open.values():
            await corpus.close()
        self._open.clear()
