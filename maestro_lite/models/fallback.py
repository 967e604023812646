"""Fallback chains: when one model cannot answer, the next one does.

A chain acts on whole calls (:class:`~maestro_lite.models.calls.CallWrapper`):
:func:`~maestro_lite.models.generate` gives each model of a :class:`FallbackModel` the whole
treatment (retries with backoff for transient errors, re-asks for invalid output, budget
checks before every attempt) and moves to the next model only when that model has failed for
good. Every attempt of every model is counted in usage and budget, and the completion says
which model answered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import BudgetExceeded, ModelError, UserError
from ..usage import Usage
from .base import ChatModel, Message, ModelSettings, RawResponse, cache_identity
from .calls import Attempt, Call, Completion

__all__ = ["FallbackModel"]


class FallbackModel:
    """Models tried in order: a remote model, then the local one, for example.

    Args:
        models: The chain, preferred model first (at least two).
        fallback_on: Which failures of a model hand the call to the next: exception types,
            or a predicate. By default any :class:`~maestro_lite.errors.ModelError`: an
            endpoint error that outlasted its retries, a rejected request (401, 404...),
            output that never matched the schema, a local model that is not installed.
            A spent budget never falls back.

    Example::

        model = FallbackModel(OpenAIModel("gpt-4o-mini"), LocalModel("qwen2.5-coder-1.5b"))
    """

    def __init__(
        self,
        *models: ChatModel,
        fallback_on: tuple[type[Exception], ...] | Callable[[Exception], bool] = (ModelError,),
    ) -> None:
        if len(models) < 2:
            raise UserError(
                "FallbackModel needs at least two models",
                hint="Pass the preferred model first, then its fallbacks.",
            )
        self.models: tuple[ChatModel, ...] = tuple(models)
        self._fallback_on = fallback_on

    @property
    def name(self) -> str:
        return "fallback:" + ",".join(m.name for m in self.models)

    @property
    def cache_identity(self) -> str:
        return "fallback:" + ",".join(cache_identity(m) for m in self.models)

    @property
    def context_window(self) -> int:
        # Prompts are packed once, before we know which model answers: they must fit all.
        return min(m.context_window for m in self.models)

    def should_fall_back(self, error: Exception) -> bool:
        """Whether ``error`` from one model hands the call to the next."""
        if isinstance(self._fallback_on, tuple):
            return isinstance(error, self._fallback_on)
        return self._fallback_on(error)

    def map(self, wrap: Callable[[ChatModel], ChatModel]) -> FallbackModel:
        """The same chain with every model wrapped (for example in a rate limiter)."""
        return FallbackModel(*(wrap(m) for m in self.models), fallback_on=self._fallback_on)

    async def complete(self, call: Call) -> Completion[Any]:
        """The whole call to each model in turn (retries, re-asks and all) until one
        answers; the completion holds every model's attempts and their usage."""
        attempts: list[Attempt] = []

        def collect(attempt: Attempt) -> None:
            attempts.append(attempt)
            if call.report is not None:
                call.report(attempt)

        last = len(self.models) - 1
        for index, model in enumerate(self.models):
            try:
                completion = await call.send(model, collect)
            except BudgetExceeded:
                raise
            except Exception as exc:
                if index == last or not self.should_fall_back(exc):
                    raise
                continue
            completion.attempts = attempts
            completion.usage = sum((a.usage for a in attempts), Usage())
            return completion
        raise AssertionError("unreachable: the last model returns or raises")

    async def request(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> RawResponse:
        """One request to each model in turn until one answers (no retries: ``generate``
        retries each model before falling back)."""
        for model in self.models[:-1]:
            try:
                return await model.request(messages, json_schema=json_schema, settings=settings)
            except Exception as exc:
                if not self.should_fall_back(exc):
                    raise
        last = self.models[-1]
        return await last.request(messages, json_schema=json_schema, settings=settings)
