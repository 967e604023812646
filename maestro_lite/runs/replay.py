"""Answers a run already paid for, given again when the run resumes.

A run with a run store records the raw answer of every call the model answered with its
:class:`~maestro_lite.events.ModelAttempted` event, in the same transaction, keyed like the
response cache (model, messages, schema, settings): :class:`ReplayModel` puts the key on
each answer, and the run's events carry it to the store. Checkpoints keep finished steps and
rounds; the answers cover the calls in between that no checkpoint holds yet: plan drafts
rejected before a crash during planning, judge calls made before the round's validation was
recorded, attempts that were re-asked. On resume, :class:`ReplayModel` answers an identical
call from the run's own record before asking the model, so no call is paid twice, whether or
not the response cache is on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from ..cache import ResponseCache
from ..events import Event, ModelAttempted
from ..models.base import (
    ChatModel,
    Message,
    ModelSettings,
    RawResponse,
    WrappedModel,
    cache_identity,
)

__all__ = ["RecordedAnswers", "ReplayModel"]


class RecordedAnswers:
    """The answers a run recorded, by call key; each answers one identical call, in the
    order they were given (a call asked twice was answered twice)."""

    def __init__(self) -> None:
        self._answers: dict[str, deque[RawResponse]] = {}

    @classmethod
    def of(cls, events: Sequence[Event]) -> RecordedAnswers:
        """The answers recorded in a run's events."""
        recorded = cls()
        for event in events:
            if isinstance(event, ModelAttempted) and event.key and event.response is not None:
                answer = RawResponse(text=event.response, model=event.model, cached=True)
                recorded._answers.setdefault(event.key, deque()).append(answer)
        return recorded

    def __len__(self) -> int:
        return sum(len(q) for q in self._answers.values())

    def take(self, key: str) -> RawResponse | None:
        """The next recorded answer to the call with ``key`` (``None`` when none is left)."""
        answers = self._answers.get(key) if self._answers else None
        return answers.popleft() if answers else None


class ReplayModel(WrappedModel):
    """``model`` as a recorded run uses it: each answer carries its call's key, so that the
    run records it; a call the run already made is answered from that record.

    A recorded answer comes back marked ``cached``: it costs nothing now (it was counted
    when it was paid for), and it is not recorded again. As with the response cache, an
    identical call is answered by an identical earlier one, and sampled calls (temperature
    above 0, no seed) are neither recorded nor replayed.
    """

    def __init__(self, model: ChatModel, answers: RecordedAnswers) -> None:
        super().__init__(model)
        self.answers = answers

    async def request(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> RawResponse:
        # A sampled call asks for a fresh sample: like the response cache, leave it alone.
        if (settings.temperature or 0.0) > 0 and settings.seed is None:
            return await self.inner.request(messages, json_schema=json_schema, settings=settings)
        key = ResponseCache.key(cache_identity(self), messages, json_schema, settings)
        recorded = self.answers.take(key)
        if recorded is not None:
            return recorded
        raw = await self.inner.request(messages, json_schema=json_schema, settings=settings)
        return raw.model_copy(update={"key": key})
