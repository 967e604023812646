"""The model stack: one order for every run and job (cache, fallback, replay, limits)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from maestro_lite.cache import ResponseCache
from maestro_lite.limits import LimitedModel, Limiter
from maestro_lite.model_stack import ModelStack
from maestro_lite.models import CachedModel, FallbackModel, Message, ScriptedModel, generate
from maestro_lite.runs import RecordedAnswers, ReplayModel


class City(BaseModel):
    name: str


def test_the_cache_is_outermost_and_each_model_of_a_chain_is_replayed_then_limited(
    tmp_path: Path,
) -> None:
    first, second = ScriptedModel([], name="first"), ScriptedModel([], name="second")
    limiter, recorded = Limiter(), RecordedAnswers()
    with ResponseCache(tmp_path / "cache.sqlite3") as cache:
        stack = ModelStack(limiter=limiter, caller="run-1", recorded=recorded, cache=cache)
        wrapped = stack.wrap(FallbackModel(first, second))
        assert isinstance(wrapped, CachedModel) and wrapped.cache is cache
        chain = wrapped.inner
        assert isinstance(chain, FallbackModel)
        for model, inner in zip(chain.models, (first, second), strict=True):
            assert isinstance(model, ReplayModel) and model.answers is recorded
            limited = model.inner
            assert isinstance(limited, LimitedModel) and limited.inner is inner
            assert limited.run == "run-1" and limited.limiter is limiter


def test_a_users_own_wrappers_are_kept_once_with_the_per_model_ones_inside(
    tmp_path: Path,
) -> None:
    inner = ScriptedModel([], name="m")
    with ResponseCache(tmp_path / "mine.sqlite3") as mine:
        stack = ModelStack(limiter=Limiter(), caller="job")
        wrapped = stack.wrap(CachedModel(inner, mine))
        assert isinstance(wrapped, CachedModel) and wrapped.cache is mine
        assert isinstance(wrapped.inner, LimitedModel) and wrapped.inner.inner is inner
        # Wrapping again adds nothing: the stack's own wrappers are recognised.
        again = stack.wrap(wrapped)
        assert isinstance(again, CachedModel) and isinstance(again.inner, LimitedModel)
        assert again.inner.inner is inner


def test_without_limits_records_or_cache_the_model_is_itself() -> None:
    model = ScriptedModel([], name="m")
    assert ModelStack().wrap(model) is model


async def test_a_cached_call_through_the_stack_makes_no_request_and_counts_as_cached(
    tmp_path: Path,
) -> None:
    model = ScriptedModel([{"name": "Oslo"}], name="m")
    with ResponseCache(tmp_path / "cache.sqlite3") as cache:
        stack = ModelStack(limiter=Limiter(), caller="run", cache=cache)
        first = await generate(stack.wrap(model), [Message.user("q")], output_type=City)
        again = await generate(stack.wrap(model), [Message.user("q")], output_type=City)
    assert first.output == again.output == City(name="Oslo")
    assert [a.outcome for a in again.attempts] == ["cached"]
    assert again.usage.requests == 0 and again.usage.cached_requests == 1
    model.assert_complete()
