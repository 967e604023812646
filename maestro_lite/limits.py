"""Resource limits per provider, shared by every run that uses one :class:`Limiter`.

A provider (an endpoint, or a provider name such as ``openai``) gets a
:class:`ProviderLimits`: calls in flight at once, requests per minute, tokens per minute.
Every call acquires a permit from the provider's gate first, so any number of runs sharing
the limiter never exceed the limits together. Waiting calls are served round-robin between
runs (first come, first served within a run), so one run with many parallel steps cannot
starve another.

Rates are token buckets refilled continuously: a burst of about one second's worth, then a
steady rate just under ``requests_per_minute / 60`` per second, so that no 60-second window
ever holds more than the limit. A call's tokens are estimated before it starts
(prompt tokens counted with tiktoken, plus ``max_tokens``) and corrected when the provider
reports what it really used.

Create one and pass it to every :class:`~maestro_lite.orchestrator.Maestro` that should
share it::

    limiter = Limiter({"openai": ProviderLimits(max_concurrent=8, requests_per_minute=500)})
    maestro = Maestro(model, limiter=limiter)

:meth:`Limiter.from_settings` (what the CLI, the worker and ``Maestro.from_settings`` use)
returns one limiter per process for equal limits, so everything configured from the same
settings shares the provider's limits without passing the limiter around.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import StoreError
from .models.base import ChatModel, Message, ModelSettings, RawResponse, WrappedModel
from .rates import ProviderLimits, RateBucket
from .settings import Settings
from .shared_limits import Lease, SharedGates, gates_for
from .tokens import count_tokens

__all__ = ["GateStats", "LimitedModel", "Limiter", "Permit", "ProviderLimits"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateStats:
    """What a provider's gate has seen (for monitoring, tests and benchmarks)."""

    in_flight: int
    max_in_flight: int
    """The most calls it ever let run at once."""
    granted: int
    waiting: int
    delayed: int = 0
    """Calls that could not start at once (a limit made them wait)."""
    waited_seconds: float = 0.0
    """Time calls spent waiting for a permit, summed over calls."""


@dataclass(eq=False)
class _Waiter:
    run: str
    tokens: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    since: float = 0.0
    """When it started waiting (the gate's clock)."""
    granted: bool = False

    def wake(self) -> None:
        def set_result() -> None:
            if not self.future.done():
                self.future.set_result(None)

        try:
            self.loop.call_soon_threadsafe(set_result)
        except RuntimeError:  # its loop is closed: nobody is waiting any more
            pass


@dataclass(eq=False)
class _Gate:
    limits: ProviderLimits
    clock: Callable[[], float]
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    max_in_flight: int = 0
    granted: int = 0
    delayed: int = 0
    waited_seconds: float = 0.0
    # Runs with waiting calls, in service order; a served run goes to the back.
    queues: dict[str, deque[_Waiter]] = field(default_factory=dict)
    requests: RateBucket | None = None
    tokens: RateBucket | None = None
    timer_due: float | None = None

    def __post_init__(self) -> None:
        if self.limits.requests_per_minute is not None:
            self.requests = RateBucket(self.limits.requests_per_minute, self.clock)
        if self.limits.tokens_per_minute is not None:
            self.tokens = RateBucket(self.limits.tokens_per_minute, self.clock)

    def dispatch(self) -> float | None:
        """Grant permits while the limits allow (call with ``lock`` held). Returns the seconds
        until the next waiter's rate allows it, or ``None`` when nothing waits on a rate."""
        cap = self.limits.max_concurrent
        while self.queues:
            if cap is not None and self.in_flight >= cap:
                return None  # a release will dispatch again
            run = next(iter(self.queues))
            waiter = self.queues[run][0]
            wait = 0.0
            if self.requests is not None:
                wait = self.requests.wait_for(1)
            if self.tokens is not None and waiter.tokens:
                wait = max(wait, self.tokens.wait_for(waiter.tokens))
            if wait > 0:
                return wait
            if self.requests is not None:
                self.requests.take(1)
            if self.tokens is not None:
                self.tokens.take(waiter.tokens)
            queue = self.queues.pop(run)
            queue.popleft()
            if queue:
                self.queues[run] = queue  # round-robin: this run goes to the back
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.granted += 1
            self.waited_seconds += max(0.0, self.clock() - waiter.since)
            waiter.granted = True
            waiter.wake()
        return None


class Permit:
    """The right to make one call; release it when the call is over."""

    def __init__(
        self,
        limiter: Limiter,
        gate: _Gate,
        tokens: int,
        waited: float = 0.0,
        lease: tuple[str, Lease] | None = None,
    ) -> None:
        self._limiter = limiter
        self._gate = gate
        self._tokens = tokens
        self._released = False
        self._lease = lease
        self.waited = waited
        """Seconds the call waited for this permit (0 when a limit did not hold it back)."""

    def release(self, tokens_used: int | None = None) -> None:
        """Free the slot; ``tokens_used`` corrects the estimate made before the call
        (``None`` keeps the estimate, 0 refunds it)."""
        if self._released:
            return
        self._released = True
        gate = self._gate
        with gate.lock:
            gate.in_flight -= 1
            if gate.tokens is not None and tokens_used is not None:
                gate.tokens.take(tokens_used - self._tokens)
            delay = gate.dispatch()
        self._limiter._schedule(gate, delay)
        if self._lease is not None and self._limiter.shared is not None:
            key, lease = self._lease
            correction = 0 if tokens_used is None else tokens_used - self._tokens
            try:
                self._limiter.shared.release(lease, key, gate.limits, correction)
            except StoreError as exc:  # the call is over; its lease ages out of the store
                _log.warning("could not return a %s lease to the shared limits: %s", key, exc)


_SHARED: dict[tuple[ProviderLimits, str], Limiter] = {}
"""The limiters :meth:`Limiter.from_settings` made in this process, by their limits and
where the gates they share with other processes are (a database URL or a file)."""
_SHARED_LOCK = threading.Lock()


class Limiter:
    """Concurrency, request-rate and token-rate limits per provider.

    Args:
        limits: Limits by provider key: an endpoint's base URL (``http://127.0.0.1:8000/v1``)
            or a provider name (``openai``, ``local``: the part of the model name before the
            colon). A base URL entry wins over a provider entry.
        default: Limits of providers not listed.
        shared: Gates shared with other processes (:class:`SQLiteGates`,
            :class:`PostgresGates`): a call also takes
            a lease there, so the limits hold for every process using them together.
        clock: Monotonic seconds (for tests).
    """

    SHARED_POLL = 0.05
    """Seconds between two asks of the shared gates while a call in flight elsewhere holds
    the last slot (doubling up to :attr:`SHARED_POLL_MAX`)."""
    SHARED_POLL_MAX = 0.5

    def __init__(
        self,
        limits: Mapping[str, ProviderLimits] | None = None,
        *,
        default: ProviderLimits | None = None,
        shared: SharedGates | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = dict(limits or {})
        self.default = default or ProviderLimits()
        self.shared = shared
        self._clock = clock
        self._gates: dict[str, _Gate] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Limiter | None:
        """The limiter the settings describe (``MAESTRO_MAX_CONCURRENT``,
        ``MAESTRO_REQUESTS_PER_MINUTE``, ``MAESTRO_TOKENS_PER_MINUTE``): those limits for
        every provider, each through its own gate; ``None`` when none is set. Equal limits
        give the same limiter within a process, so every orchestrator configured from the
        settings shares it. The CLI's commands build theirs this way.

        The limits hold across processes too: every process on the same home shares them
        through ``MAESTRO_HOME/limits.sqlite3``, and with ``MAESTRO_DATABASE_URL`` every
        process on every machine through PostgreSQL (:func:`gates_for`)."""
        limits = ProviderLimits(
            max_concurrent=settings.max_concurrent,
            requests_per_minute=settings.requests_per_minute,
            tokens_per_minute=settings.tokens_per_minute,
        )
        if limits == ProviderLimits(max_concurrent=None):
            return None
        where = settings.database_url or str(settings.limits_db)
        with _SHARED_LOCK:
            limiter = _SHARED.get((limits, where))
            if limiter is None:
                gates = gates_for(settings)
                limiter = _SHARED[(limits, where)] = cls(default=limits, shared=gates)
            return limiter

    def key_for(self, model: ChatModel) -> str:
        """The gate a model's calls go through."""
        base_url = getattr(model, "base_url", None)
        provider = model.name.split(":", 1)[0]
        if base_url and base_url in self.limits:
            return str(base_url)
        if provider in self.limits:
            return provider
        return str(base_url or provider)

    def limits_for(self, key: str) -> ProviderLimits:
        return self.limits.get(key, self.default)

    def _gate(self, key: str) -> _Gate:
        with self._lock:
            gate = self._gates.get(key)
            if gate is None:
                gate = self._gates[key] = _Gate(self.limits_for(key), self._clock)
            return gate

    def stats(self, key: str) -> GateStats:
        gate = self._gate(key)
        with gate.lock:
            waiting = sum(len(q) for q in gate.queues.values())
            return GateStats(
                gate.in_flight,
                gate.max_in_flight,
                gate.granted,
                waiting,
                gate.delayed,
                gate.waited_seconds,
            )

    def gates(self) -> list[str]:
        """The keys of the gates calls have gone through so far (see :meth:`stats`)."""
        with self._lock:
            return sorted(self._gates)

    def _schedule(self, gate: _Gate, delay: float | None) -> None:
        """Dispatch again once a rate allows the next waiter, unless a timer already will."""
        if delay is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # the waiters' own polling picks it up
        due = self._clock() + delay
        with gate.lock:
            if gate.timer_due is not None and gate.timer_due <= due:
                return
            gate.timer_due = due

        def tick() -> None:
            with gate.lock:
                gate.timer_due = None
                again = gate.dispatch()
            self._schedule(gate, again)

        loop.call_later(delay, tick)

    async def acquire(self, key: str, *, run: str = "", tokens: int = 0) -> Permit:
        """Wait for a permit for one call through gate ``key``.

        Args:
            run: Who is asking; waiting calls are served round-robin between runs.
            tokens: Estimated tokens of the call (only used with a tokens-per-minute limit).
        """
        gate = self._gate(key)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(run, tokens, loop, loop.create_future(), since=self._clock())
        with gate.lock:
            gate.queues.setdefault(run, deque()).append(waiter)
            delay = gate.dispatch()
            queued = not waiter.granted
            if queued:
                gate.delayed += 1
        self._schedule(gate, delay)
        try:
            while not waiter.granted:
                # The timer normally wakes us; polling covers a timer lost with its loop.
                await asyncio.wait([waiter.future], timeout=delay if delay else 1.0)
                if waiter.granted:
                    break
                with gate.lock:
                    delay = gate.dispatch()
                self._schedule(gate, delay)
        except BaseException:
            with gate.lock:
                if not waiter.granted:
                    queue = gate.queues.get(run)
                    if queue is not None and waiter in queue:
                        queue.remove(waiter)
                        if not queue:
                            del gate.queues[run]
            if waiter.granted:
                Permit(self, gate, tokens).release(0)
            raise
        lease = None
        if self.shared is not None:
            try:
                lease, held_back = await self._lease(key, gate, tokens)
            except BaseException:
                Permit(self, gate, tokens).release(0)
                raise
            queued = queued or held_back
        waited = self._clock() - waiter.since if queued else 0.0
        return Permit(self, gate, tokens, waited, None if lease is None else (key, lease))

    async def _lease(self, key: str, gate: _Gate, tokens: int) -> tuple[Lease, bool]:
        """A lease from the shared gates, waiting while other processes hold the limits;
        and whether it had to wait."""
        assert self.shared is not None
        poll, since = self.SHARED_POLL, self._clock()
        while True:
            lease, wait = await asyncio.to_thread(self.shared.try_acquire, key, gate.limits, tokens)
            if lease is not None:
                break
            await asyncio.sleep(wait if wait > 0 else poll)
            poll = min(poll * 2, self.SHARED_POLL_MAX)
        held_back = poll > self.SHARED_POLL  # it asked more than once
        if held_back:
            with gate.lock:
                gate.delayed += 1
                gate.waited_seconds += self._clock() - since
        return lease, held_back


def _estimate(messages: Sequence[Message], settings: ModelSettings) -> int:
    return sum(count_tokens(m.content) + 4 for m in messages) + (settings.max_tokens or 0)


class LimitedModel(WrappedModel):
    """``model`` whose calls wait for a permit from ``limiter``.

    Args:
        model: The model to limit.
        limiter: The shared limiter.
        run: Who makes the calls (the orchestrator passes the run id, for fairness).
    """

    def __init__(self, model: ChatModel, limiter: Limiter, *, run: str = "") -> None:
        super().__init__(model)
        self.limiter = limiter
        self.run = run
        self.key = limiter.key_for(model)

    async def request(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> RawResponse:
        metered = self.limiter.limits_for(self.key).tokens_per_minute is not None
        estimate = _estimate(messages, settings) if metered else 0
        permit = await self.limiter.acquire(self.key, run=self.run, tokens=estimate)
        try:
            raw = await self.inner.request(messages, json_schema=json_schema, settings=settings)
        except BaseException:
            permit.release(0)  # providers do not count the tokens of failed requests
            raise
        used = None
        if metered:
            prompt = raw.input_tokens
            if prompt is None:
                prompt = estimate - (settings.max_tokens or 0)
            completion = raw.output_tokens
            if completion is None:
                completion = count_tokens(raw.text)
            used = prompt + completion
        permit.release(used)
        if permit.waited > 0:
            return raw.model_copy(update={"waited": raw.waited + permit.waited})
        return raw
