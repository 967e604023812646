"""Time for the worker: the wall clock in production, a hand-driven clock in tests.

Everything in :mod:`maestro_lite.scheduling` that waits (cron schedules, a watched file
settling) reads and sleeps on a :class:`Clock`, never on ``time`` or ``asyncio.sleep``
directly, so a test can move a week ahead in one call and see exactly which schedules fire::

    clock = ManualClock(datetime(2026, 3, 30, 5, 0, tzinfo=ZoneInfo("Europe/Oslo")))
    async with Worker(model, clock=clock, ...):
        clock.advance(hours=1)            # wakes whatever was due by then
        await clock.wait_for_sleepers(1)  # the worker handled it and sleeps again
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "sleep_or_wake"]


@runtime_checkable
class Clock(Protocol):
    """Wall time (for cron), monotonic time (for durations) and sleeping on either."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Wait ``seconds`` of this clock's time, counted from the call (an ``async def``
        does too)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to (:meth:`advance`, :meth:`set`).

    Sleepers wake when the clock reaches their deadline, in deadline order, so a test
    drives days of schedules in milliseconds and without races. It belongs to one event
    loop at a time (the one its sleepers run in).

    Args:
        start: The time it shows first (timezone-aware).
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._start = start.astimezone(UTC)
        self._offset = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._watchers: list[asyncio.Future[None]] = []

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return self._offset

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock now."""
        return len(self._sleepers)

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Sleep until the clock shows ``seconds`` more than now. The sleeper counts from
        this call on, not from when a task first awaits it, so a test that advances the
        clock in between still wakes it (and :meth:`wait_for_sleepers` sees it)."""
        if seconds <= 0:
            return asyncio.sleep(0)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self._offset + seconds, future)
        self._sleepers.append(entry)
        self._changed()
        future.add_done_callback(lambda _: self._drop(entry))  # cancelled before its deadline
        return future

    def _drop(self, entry: tuple[float, asyncio.Future[None]]) -> None:
        if entry in self._sleepers:
            self._sleepers.remove(entry)
            self._changed()

    def advance(
        self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0
    ) -> None:
        """Move forward and wake every sleeper whose deadline has come."""
        delta = seconds + 60 * minutes + 3600 * hours + 86400 * days
        if delta < 0:
            raise ValueError("a clock does not go back")
        self._offset += delta
        due = sorted((e for e in self._sleepers if e[0] <= self._offset), key=lambda e: e[0])
        for entry in due:
            self._sleepers.remove(entry)
            if not entry[1].done():
                entry[1].set_result(None)
        if due:
            self._changed()

    def set(self, when: datetime) -> None:
        """Move forward to ``when`` (timezone-aware)."""
        self.advance((when - self.now()).total_seconds())

    async def wait_for_sleepers(self, count: int) -> None:
        """Wait until at least ``count`` tasks sleep on this clock: the ones a test expects
        (the worker's scheduler, each watched folder) have handled the present and wait for
        the future. Bound it with ``asyncio.timeout`` in tests."""
        while len(self._sleepers) < count:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._watchers.append(future)
            try:
                await future
            finally:
                if future in self._watchers:
                    self._watchers.remove(future)

    def _changed(self) -> None:
        watchers, self._watchers = self._watchers, []
        for future in watchers:
            if not future.done():
                future.set_result(None)


async def sleep_or_wake(clock: Clock, seconds: float, wake: asyncio.Event) -> bool:
    """Sleep ``seconds`` on ``clock``, or less if ``wake`` is set first (it is cleared).

    Returns:
        Whether ``wake`` ended the sleep.
    """
    if wake.is_set():
        wake.clear()
        return True
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waker = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait([sleeper, waker], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, waker):
            task.cancel()
        await asyncio.gather(sleeper, waker, return_exceptions=True)
    woken = wake.is_set()
    wake.clear()
    return woken
