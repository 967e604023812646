"""A model wrapper that answers repeated calls from a :class:`~maestro_lite.cache.ResponseCache`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from ..cache import CachedAnswer, ResponseCache
from ..usage import Usage
from .base import ChatModel, Message, ModelSettings, RawResponse, WrappedModel, cache_identity
from .calls import Attempt, Call, Completion

__all__ = ["CachedModel"]


class CachedModel(WrappedModel):
    """``model`` with its answers cached.

    It acts on whole calls (:class:`~maestro_lite.models.calls.CallWrapper`): through
    :func:`~maestro_lite.models.generate` (as the orchestrator uses it), a whole call is
    cached: the answer that was finally accepted, keyed by the first request. Called
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

    async def complete(self, call: Call) -> Completion[Any]:
        """A call seen before from the cache (one ``cached`` attempt, no request); any other
        from the model, its accepted answer kept."""
        key = self.key(call.messages, call.json_schema, call.settings)
        hit = self.cache.get(key) if key is not None else None
        if hit is not None:
            try:
                output = call.parse(hit.text)
            except ValidationError:
                pass  # written for another version of the type: ask the model again
            else:
                attempt = Attempt(
                    model=hit.model, outcome="cached", usage=Usage(cached_requests=1), seconds=0
                )
                call.record(attempt)
                return Completion(output, hit.text, hit.model, attempt.usage, [attempt])
        completion = await call.send(self.inner, call.report)
        if key is not None:
            self.cache.put(key, CachedAnswer(completion.text, completion.model))
        return completion

    def map(self, wrap: Callable[[ChatModel], ChatModel]) -> CachedModel:
        """The same cache in front of ``wrap(model)``."""
        return CachedModel(wrap(self.inner), self.cache)
