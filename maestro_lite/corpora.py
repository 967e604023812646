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
    ``Maestro(model, store=Corpora(settings)).run(task, corpus="contracts")`` works.

    Args:
        settings: Where the store lives and which embedder to use.
        embedder: The embedding model (shared by every corpus opened here).
        store: The vector store; the one ``settings`` describe when ``None``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.embedder = embedder
        self.store = store
        self._open: dict[str, Corpus] = {}

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
                store=self.store,
                create=False,
            )
        return self._open[name]

    async def aclose(self) -> None:
        for corpus in self._open.values():
            await corpus.close()
        self._open.clear()
