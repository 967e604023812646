"""A model wrapper that answers repeated calls from a :class:`~maestro_lite.cache.ResponseCache`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..cache import CachedAnswer, ResponseCache
from .base import ChatModel, Message, ModelSettings, RawResponse, WrappedModel, cache_identity

__all__ = ["CachedModel"]


class CachedModel(WrappedModel):
    """``model`` with its answers cached.

    Through :func:`~maestro_lite.models.generate` (as the orchestrator uses it), a whole call
    is cached: the answer that was finally accepted, keyed by the first request. Called
    directly, :meth:`request` caches single requests the same way.

    Args:
        model: The model (or fallback chain) to cache.
        cache: Where answers are kept.
    """

    def __init__(self, model: ChatModel, cache: ResponseCache) -> None:
        super().__init__(model)
        self.cache = cache

    def key(
        self,
        messages: Sequence[Message],
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> str | None:
        """The key of a call, or ``None`` when the call must not be cached."""
        if not self.cache.cacheable(settings):
            return None
        return self.cache.key(cache_identity(self), messages, json_schema, settings)

    async def request(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> RawResponse:
        key = self.key(messages, json_schema, settings)
        if key is not None and (hit := self.cache.get(key)) is not None:
            return RawResponse(text=hit.text, model=hit.model, cached=True)
        raw = await self.inner.request(messages, json_schema=json_schema, settings=settings)
        if key is not None:
            self.cache.put(
                key, CachedAnswer(raw.text, raw.model, raw.input_tokens, raw.output_tokens)
            )
        return raw
