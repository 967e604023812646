"""What a task on a cluster node opens from the settings it was given: the model, the
stores, the response cache, the provider limits, the corpora.

A node shares state with the rest of the cluster only through what the settings name: the
run store and the job queue (SQLite under ``MAESTRO_HOME`` on one machine,
``MAESTRO_DATABASE_URL`` for several), the corpora
(``MAESTRO_CHROMA_URL`` for several machines), and the provider limits
(``<home>/limits.sqlite3`` on one machine, ``MAESTRO_DATABASE_URL`` for several), so every
call a task makes counts against the same limits as every other process's.
"""

from __future__ import annotations

from ..cache import ResponseCache
from ..corpora import Corpora
from ..embeddings import Embedder, embedder_from_settings
from ..limits import Limiter
from ..models import model_from_settings
from ..models.base import ChatModel
from ..orchestrator import Maestro, RunClaims
from ..runs import RunStore, open_run_store
from ..scheduling.store import ScheduleStore, open_schedule_store
from ..settings import Settings

__all__ = ["Node", "open_run_store", "open_schedule_store"]


class Node:
    """The model, stores and corpora of one task on a node, opened from ``settings``
    (the stores and corpora on first use); :meth:`aclose` releases them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model: ChatModel = model_from_settings(settings)
        self.limiter: Limiter | None = Limiter.from_settings(settings)
        self.embedder: Embedder = embedder_from_settings(settings)
        self.corpora = Corpora(settings, embedder=self.embedder)
        self._run_store: RunStore | None = None
        self._schedule_store: ScheduleStore | None = None
        self._cache: ResponseCache | None = None

    @property
    def run_store(self) -> RunStore:
        if self._run_store is None:
            self._run_store = open_run_store(self.settings)
        return self._run_store

    @property
    def schedule_store(self) -> ScheduleStore:
        if self._schedule_store is None:
            self._schedule_store = open_schedule_store(self.settings)
        return self._schedule_store

    @property
    def cache(self) -> ResponseCache:
        if self._cache is None:
            self._cache = ResponseCache.open(self.settings)
        return self._cache

    def maestro(
        self,
        *,
        caller: str,
        cache: bool = True,
        concurrency: int = 4,
        claims: RunClaims | None = None,
    ) -> Maestro:
        """An orchestrator over this node's model, stores and corpora; every call goes
        through the shared limits as ``caller``'s."""
        return Maestro(
            self.model,
            store=self.corpora,
            run_store=self.run_store,
            cache=self.cache if cache else None,
            limiter=self.limiter,
            concurrency=concurrency,
            caller=caller,
            claims=claims,
        )

    async def aclose(self) -> None:
        await self.corpora.aclose()
        for client in (self.model, self.embedder):
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()
        for resource in (self._run_store, self._schedule_store, self._cache):
            if resource is not None:
                resource.close()
