"""Provider limits shared by runs: concurrency, request and token rates, fairness."""

from __future__ import annotations

import asyncio
import bisect
from typing import Any

import pytest

from maestro_lite import Limiter, ProviderLimits
from maestro_lite.limits import LimitedModel, Permit
from maestro_lite.models import FunctionModel, Message, ModelCall, ModelSettings
from maestro_lite.orchestrator import Maestro
from maestro_lite.settings import Settings

from .orchestration.conftest import MemoryRetriever, contracts, step_of
from .orchestration.test_orchestrator import answer_notice, judge_mentions, notice_plan, routed

__all__ = ["contracts"]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def until(condition: Any) -> None:
    """Yield to the event loop until ``condition()`` holds (observable state, not time)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def test_limits_are_looked_up_by_endpoint_then_provider() -> None:
    limiter = Limiter(
        {"openai": ProviderLimits(max_concurrent=2), "http://h:1/v1": ProviderLimits()},
        default=ProviderLimits(max_concurrent=1),
    )

    class Remote:
        name = "openai:gpt-4o-mini"
        context_window = 1000
        base_url: str | None = None

    remote, local_server, other = Remote(), Remote(), Remote()
    local_server.base_url = "http://h:1/v1"
    other.name = "local:qwen"
    assert limiter.key_for(remote) == "openai"  # type: ignore[arg-type]
    assert limiter.key_for(local_server) == "http://h:1/v1"  # type: ignore[arg-type]
    assert limiter.key_for(other) == "local"  # type: ignore[arg-type]
    assert limiter.limits_for("local").max_concurrent == 1


async def test_waiting_calls_are_served_round_robin_between_runs() -> None:
    limiter = Limiter(default=ProviderLimits(max_concurrent=1))
    holder = await limiter.acquire("p", run="x")
    order: list[str] = []

    async def call(run: str, name: str) -> None:
        permit = await limiter.acquire("p", run=run)
        order.append(name)
        permit.release()

    tasks = [asyncio.create_task(call("A", n)) for n in ("a1", "a2", "a3")]
    await until(lambda: limiter.stats("p").waiting == 3)
    tasks.append(asyncio.create_task(call("B", "b1")))
    await until(lambda: limiter.stats("p").waiting == 4)
    holder.release()
    await asyncio.gather(*tasks)
    # FIFO would give a1 a2 a3 b1: run B would wait for all of run A.
    assert order == ["a1", "b1", "a2", "a3"]
    assert limiter.stats("p").max_in_flight == 1


async def test_the_request_rate_is_enforced_by_the_clock() -> None:
    clock = Clock()
    # A burst of 2, then 2 per second: at most 2 + 60 * 2 = 122 in any minute.
    limiter = Limiter(
        default=ProviderLimits(max_concurrent=None, requests_per_minute=122), clock=clock
    )
    burst = [await limiter.acquire("p") for _ in range(2)]
    third = asyncio.create_task(limiter.acquire("p"))
    await until(lambda: limiter.stats("p").waiting == 1)
    burst[0].release()
    await asyncio.sleep(0)
    assert not third.done()  # a free slot is not enough: the rate says wait
    clock.now = 0.5  # half a second later there is room for one more request
    burst[1].release()  # any release dispatches again
    permit = await third
    assert limiter.stats("p").granted == 3
    permit.release()


async def test_tokens_are_estimated_before_and_corrected_after() -> None:
    clock = Clock()
    limiter = Limiter(
        default=ProviderLimits(max_concurrent=None, tokens_per_minute=610), clock=clock
    )
    # A bucket of 10 tokens, refilled at 10 per second; the clock stands still, so only
    # releases change what is left.
    big = await limiter.acquire("p", tokens=10)  # the estimate takes the whole bucket
    small = asyncio.create_task(limiter.acquire("p", tokens=5))
    await until(lambda: limiter.stats("p").waiting == 1)
    await asyncio.sleep(0)
    assert not small.done()  # the estimate of 10 left nothing for 5
    assert limiter.stats("p").granted == 1
    big.release(tokens_used=4)  # the call used 4: 6 come back, enough for 5
    await until(small.done)  # fails, rather than hangs, if the correction were ignored
    permit = small.result()
    assert limiter.stats("p").granted == 2
    # Corrected figure: 10 - 4 - 5 = 1 token left, so a call of 1 passes and the next waits.
    one = await limiter.acquire("p", tokens=1)
    another = asyncio.create_task(limiter.acquire("p", tokens=1))
    await until(lambda: limiter.stats("p").waiting == 1)
    assert not another.done() and limiter.stats("p").granted == 3
    permit.release(tokens_used=3)  # 2 of the 5 estimated come back: the waiting call passes
    await until(another.done)
    another.result().release()
    one.release()
    assert limiter.stats("p").granted == 4 and limiter.stats("p").waiting == 0


async def test_a_cancelled_wait_gives_its_place_back() -> None:
    limiter = Limiter(default=ProviderLimits(max_concurrent=1))
    holder = await limiter.acquire("p")
    waiting = asyncio.create_task(limiter.acquire("p", run="r"))
    await until(lambda: limiter.stats("p").waiting == 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert limiter.stats("p").waiting == 0
    holder.release()
    assert limiter.stats("p").in_flight == 0
    again: Permit = await limiter.acquire("p")
    again.release()


async def test_runs_sharing_a_limiter_never_exceed_it_together(
    contracts: MemoryRetriever,
) -> None:
    in_flight = 0
    peak = 0

    async def step(call: ModelCall) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)  # a model call that takes a moment
        in_flight -= 1
        return answer_notice(call)

    model = routed(notice_plan, step, judge_mentions())
    limiter = Limiter({"routed": ProviderLimits(max_concurrent=3)})
    maestro = Maestro(model, concurrency=4, limiter=limiter)
    results = await asyncio.gather(*(maestro.run("notice?", corpus=contracts) for _ in range(4)))
    assert all(r.status == "passed" for r in results)
    assert peak == limiter.stats("routed").max_in_flight == 3
    assert limiter.stats("routed").granted == len(model.calls)


async def test_a_limited_model_passes_through_name_window_and_answers() -> None:
    inner = FunctionModel(lambda call: step_of(call) or "ok", name="openai:x")
    limited = LimitedModel(inner, Limiter(default=ProviderLimits(tokens_per_minute=10_000)))
    assert (limited.name, limited.context_window) == ("openai:x", inner.context_window)
    raw = await limited.request(
        [Message.user("hello")], json_schema=None, settings=ModelSettings(max_tokens=5)
    )
    assert raw.text == "ok"


@pytest.mark.parametrize(("per_minute", "used"), [(2, 0.5), (10, 0.9), (122, 0.98), (1200, 0.98)])
def test_no_minute_ever_holds_more_than_the_limit(per_minute: float, used: float) -> None:
    from maestro_lite.rates import RateBucket

    clock = Clock()
    bucket = RateBucket(per_minute, clock)
    granted: list[float] = []
    while clock.now < 300:  # a greedy client, asking every 10 ms for 5 minutes
        if bucket.wait_for(1) == 0:
            bucket.take(1)
            granted.append(clock.now)
        clock.now = round(clock.now + 0.01, 2)
    busiest = max(bisect.bisect_left(granted, t + 60) - i for i, t in enumerate(granted))
    assert busiest <= per_minute + 1e-9
    assert len(granted) >= used * per_minute * 5  # and how much of the limit is used


def test_a_limiter_is_built_from_the_settings_only_when_they_set_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MAX_CONCURRENT", "REQUESTS_PER_MINUTE", "TOKENS_PER_MINUTE"):
        monkeypatch.delenv(f"MAESTRO_{name}", raising=False)
    assert Limiter.from_settings(Settings()) is None  # unset: unlimited, no limiter at all
    monkeypatch.setenv("MAESTRO_MAX_CONCURRENT", "2")
    monkeypatch.setenv("MAESTRO_TOKENS_PER_MINUTE", "90000")
    limiter = Limiter.from_settings(Settings())
    assert limiter is not None
    limits = limiter.limits_for(limiter.key_for(FunctionModel(lambda c: "", name="openai:x")))
    assert limits == ProviderLimits(
        max_concurrent=2, requests_per_minute=None, tokens_per_minute=90_000
    )
    only_rate = Limiter.from_settings(Settings(max_concurrent=None, requests_per_minute=30))
    assert only_rate is not None and only_rate.default.max_concurrent is None

    # One limiter per process for equal limits: orchestrators configured apart share it.
    assert Limiter.from_settings(Settings()) is limiter
    assert Limiter.from_settings(Settings(max_concurrent=3)) is not limiter
