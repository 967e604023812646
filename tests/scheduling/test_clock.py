"""The manual clock: a sleep counts from the moment it is asked for, and a cancelled one
leaves nothing behind (the watch tests rely on both to be free of races)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from maestro_lite.scheduling import ManualClock
from maestro_lite.scheduling.clock import sleep_or_wake


async def test_a_sleep_counts_from_the_call_even_if_its_task_has_not_run_yet() -> None:
    clock = ManualClock(datetime(2026, 3, 23, 9, 0, tzinfo=UTC))
    sleeper = asyncio.ensure_future(clock.sleep(1.0))  # its task has not run yet
    assert clock.sleepers == 1
    clock.advance(2.0)  # past its deadline before it ever ran
    async with asyncio.timeout(5):
        await sleeper
    assert clock.sleepers == 0


async def test_a_sleep_woken_early_or_cancelled_is_no_longer_a_sleeper() -> None:
    clock = ManualClock(datetime(2026, 3, 23, 9, 0, tzinfo=UTC))
    wake = asyncio.Event()
    task = asyncio.create_task(sleep_or_wake(clock, 60.0, wake))
    async with asyncio.timeout(5):
        await clock.wait_for_sleepers(1)
        wake.set()
        assert await task is True
    assert clock.sleepers == 0 and not wake.is_set()

    cancelled = asyncio.ensure_future(clock.sleep(60.0))
    async with asyncio.timeout(5):
        await clock.wait_for_sleepers(1)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert clock.sleepers == 0
    clock.advance(120.0)  # nothing left to wake
    assert clock.sleepers == 0
