"""The order in which a model is wrapped for a run or a job: decided here, and only here.

From the outside in:

1. **the response cache** (whole calls): an identical call is answered before any attempt;
2. **a fallback chain** (whole calls), if the model is one: each model gets the whole call,
   the next one only when it failed for good;
3. per model, **the replay of a run's recorded answers** (requests): on resume, a call the
   run already paid for is answered from its record, before the limiter is asked, so it
   needs no permit;
4. per model, **the provider limits** (requests), shared by every run and job of a process;
5. the model itself.

The wrappers of 1 and 2 act on whole calls through one protocol
(:class:`~maestro_lite.models.calls.CallWrapper`); 3 and 4 wrap each model's requests. A
model given already wrapped (a user's own ``CachedModel`` or ``FallbackModel``) keeps its
wrappers; the per-model ones go inside them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cache import ResponseCache
from .limits import LimitedModel, Limiter
from .models.base import ChatModel
from .models.cached import CachedModel
from .models.calls import acts_on_calls
from .runs.replay import RecordedAnswers, ReplayModel

__all__ = ["ModelStack"]


@dataclass(frozen=True)
class ModelStack:
    """What to wrap a model in (see the module documentation for the order).

    Attributes:
        limiter: Provider limits; ``None``: none.
        caller: Who makes the calls, for fairness between callers at the limiter (a run id,
            a job id, ``pipeline``).
        recorded: The answers a run recorded (empty for a new run): each answer is keyed so
            the run records it, and a call it recorded is answered again from the record.
            ``None``: a run without a run store, or calls outside runs.
        cache: The response cache; ``None``: none.
    """

    limiter: Limiter | None = None
    caller: str = ""
    recorded: RecordedAnswers | None = None
    cache: ResponseCache | None = None

    def wrap(self, model: ChatModel) -> ChatModel:
        """``model`` in this stack."""
        wrapped = self._per_model(model)
        if self.cache is not None:
            wrapped = CachedModel(wrapped, self.cache)
        return wrapped

    def _per_model(self, model: ChatModel) -> ChatModel:
        if acts_on_calls(model):
            return model.map(self._per_model)
        # A model wrapped already (by the user) keeps its wrapper, once.
        if self.limiter is not None and not isinstance(model, LimitedModel | ReplayModel):
            model = LimitedModel(model, self.limiter, run=self.caller)
        if self.recorded is not None and not isinstance(model, ReplayModel):
            model = ReplayModel(model, self.recorded)
        return model
