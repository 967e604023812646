"""Cron schedules under a hand-driven clock: the right times, in the right time zone, and
the missed-run policy across a worker restart (never a burst)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from maestro_lite import Settings, UserError
from maestro_lite.scheduling import (
    ManualClock,
    RunJob,
    Schedule,
    ScheduleFired,
    ScheduleSkipped,
    SQLiteScheduleStore,
    firing,
)

from .conftest import Recorder, make_worker, settled, wait_for

OSLO = ZoneInfo("Europe/Oslo")


def test_a_bad_cron_time_zone_name_or_placeholder_is_refused_in_one_line() -> None:
    job = RunJob(task="t")
    with pytest.raises(UserError, match="invalid cron expression '61 \\* \\* \\* \\*'") as bad:
        Schedule.create("x", cron="61 * * * *", job=job)
    assert "0 6 * * 1" in (bad.value.hint or "")
    with pytest.raises(UserError, match="unknown time zone 'Mars/Olympus'"):
        Schedule.create("x", cron="0 6 * * 1", timezone="Mars/Olympus", job=job)
    with pytest.raises(UserError, match="invalid schedule name"):
        Schedule.create("no spaces", cron="@daily", job=job)
    with pytest.raises(UserError, match=r"placeholder \{output\} .* a schedule starts"):
        Schedule.create("x", cron="@daily", job=RunJob(task="Check {output}"))
    with pytest.raises(UserError, match=r"unknown placeholder \{colour\}"):
        Schedule.create("x", cron="@daily", job=RunJob(task="Paint it {colour}"))


def test_backlogs_fire_once_and_the_policy_decides_for_times_missed_while_down() -> None:
    start = datetime(2026, 3, 23, 9, 30, tzinfo=UTC)
    hourly = Schedule.create("h", cron="0 * * * *", job=RunJob(task="t"), now=start)
    now = datetime(2026, 3, 23, 13, 10, tzinfo=UTC)  # 10:00 ... 13:00 have passed
    while_down = firing(hourly, now, up_since=now)
    assert while_down is not None
    assert (while_down.fire, while_down.late, while_down.missed) == (True, True, 3)
    assert while_down.due == datetime(2026, 3, 23, 13, 0, tzinfo=UTC)
    assert while_down.next_due == datetime(2026, 3, 23, 14, 0, tzinfo=UTC)
    skipping = hourly.model_copy(update={"missed": "skip"})
    skipped = firing(skipping, now, up_since=now)
    assert skipped is not None and (skipped.fire, skipped.missed) == (False, 4)
    # Times that came while the worker was up fire (once) whatever the policy.
    up = firing(skipping, now, up_since=start)
    assert up is not None and (up.fire, up.late, up.missed) == (True, False, 3)
    assert firing(hourly, datetime(2026, 3, 23, 9, 59, tzinfo=UTC), up_since=start) is None


async def test_a_schedule_fires_at_its_times_in_its_time_zone(
    settings: Settings, store: SQLiteScheduleStore
) -> None:
    clock = ManualClock(datetime(2026, 3, 23, 5, 0, tzinfo=OSLO))  # a Monday, before DST
    store.add_schedule(
        Schedule.create(
            "weekly",
            cron="0 6 * * 1",
            timezone="Europe/Oslo",
            job=RunJob(task="What changed in the week to {date}?", corpus="contracts"),
            now=clock.now(),
        )
    )
    runner = Recorder()
    events: list[object] = []
    async with make_worker(settings, store, clock, runner=runner, events=events):  # type: ignore[arg-type]
        await settled(clock, 1)
        clock.set(datetime(2026, 3, 23, 5, 59, 59, tzinfo=OSLO))
        await settled(clock, 1)
        assert store.jobs() == [] and runner.jobs == []

        clock.advance(1)
        await wait_for(lambda: len(runner.jobs) == 1)
        job, inputs = runner.jobs[0]
        assert job.task == "What changed in the week to 2026-03-23?"
        assert inputs.source == "schedule" and inputs.name == "weekly"
        assert inputs.fired_at == datetime(2026, 3, 23, 6, 0, tzinfo=OSLO)

        # Through the switch to summer time (29 March): still 06:00 in Oslo, an hour
        # earlier in UTC, and nothing in between.
        clock.set(datetime(2026, 3, 30, 5, 59, tzinfo=OSLO))
        await settled(clock, 1)
        assert len(runner.jobs) == 1
        clock.advance(minutes=1)
        await wait_for(lambda: len(runner.jobs) == 2)
        fired_at = runner.jobs[1][1].fired_at
        assert fired_at is not None
        assert fired_at.astimezone(UTC) == datetime(2026, 3, 30, 4, 0, tzinfo=UTC)
        await wait_for(lambda: all(j.status == "passed" for j in store.jobs()))

    fired = [e for e in events if isinstance(e, ScheduleFired)]
    assert [(e.late, e.missed) for e in fired] == [(False, 0), (False, 0)]
    assert store.schedule("weekly").next_due == datetime(2026, 4, 6, 4, 0, tzinfo=UTC)


async def test_missed_runs_follow_the_policy_across_a_worker_restart(
    settings: Settings, store: SQLiteScheduleStore
) -> None:
    clock = ManualClock(datetime(2026, 3, 23, 10, 30, tzinfo=UTC))
    for name, policy in (("once", "run-once"), ("skip", "skip")):
        store.add_schedule(
            Schedule.create(
                name,
                cron="0 * * * *",
                missed=policy,  # type: ignore[arg-type]
                job=RunJob(task=f"{name} at {{fired_at}}"),
                now=clock.now(),
            )
        )
    runner = Recorder()
    async with make_worker(settings, store, clock, runner=runner):
        await settled(clock, 1)
        clock.advance(minutes=30)  # 11:00, the worker is up: both fire
        await wait_for(lambda: [j.status for j in store.jobs()] == ["passed", "passed"])

    clock.set(datetime(2026, 3, 23, 15, 30, tzinfo=UTC))  # down through 12:00 ... 15:00
    events: list[object] = []
    async with make_worker(settings, store, clock, runner=runner, events=events):  # type: ignore[arg-type]
        await wait_for(lambda: len(runner.jobs) == 3)
        await settled(clock, 1)
        late = runner.jobs[2][0]
        assert late.task == "once at 2026-03-23T15:00:00+00:00"  # once, for the latest time
        fired = [e for e in events if isinstance(e, ScheduleFired)]
        skipped = [e for e in events if isinstance(e, ScheduleSkipped)]
        assert [(e.schedule, e.late, e.missed) for e in fired] == [("once", True, 3)]
        assert [(e.schedule, e.missed) for e in skipped] == [("skip", 4)]

        clock.advance(minutes=30)  # 16:00 with the worker up: each fires once
        await wait_for(lambda: len(runner.jobs) == 5)
        await settled(clock, 1)
    assert sorted(j.task for j, _ in runner.jobs[3:]) == [
        "once at 2026-03-23T16:00:00+00:00",
        "skip at 2026-03-23T16:00:00+00:00",
    ]
    assert len(store.jobs()) == 5


async def test_a_paused_schedule_does_not_fire_and_resumes_from_the_next_time(
    settings: Settings, store: SQLiteScheduleStore
) -> None:
    clock = ManualClock(datetime(2026, 3, 23, 10, 30, tzinfo=UTC))
    store.add_schedule(
        Schedule.create("h", cron="0 * * * *", job=RunJob(task="t"), now=clock.now())
    )
    store.pause_schedule("h", True, now=clock.now())
    runner = Recorder()
    async with make_worker(settings, store, clock, runner=runner):
        await settled(clock, 1)
        clock.advance(hours=3)
        await settled(clock, 1)
        assert runner.jobs == []
        resumed = store.pause_schedule("h", False, now=clock.now())
        assert resumed.next_due == datetime(2026, 3, 23, 14, 0, tzinfo=UTC)
        clock.advance(minutes=30)
        await wait_for(lambda: len(runner.jobs) == 1)


def test_the_hour_that_repeats_when_clocks_go_back_runs_a_fixed_time_job_once() -> None:
    # Oslo goes from 03:00 summer time back to 02:00 on 25 October 2026: 02:00-03:00 twice.
    before = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    nightly = Schedule.create(
        "n", cron="30 2 * * *", timezone="Europe/Oslo", job=RunJob(task="t"), now=before
    )
    times = nightly.upcoming(3)
    assert [t.strftime("%d %H:%M %z") for t in times] == [
        "25 02:30 +0200",  # the first 02:30; not again at 02:30 +0100 an hour later
        "26 02:30 +0100",
        "27 02:30 +0100",
    ]
    # A backlog across the change is still one firing, due at the one 02:30 that counts.
    late = firing(nightly, datetime(2026, 10, 25, 3, 0, tzinfo=UTC), up_since=before)
    assert late is not None and (late.fire, late.missed) == (True, 0)
    assert late.next_due == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    # An hourly job runs in every hour that comes, the repeated one included.
    hourly = Schedule.create(
        "h", cron="0 * * * *", timezone="Europe/Oslo", job=RunJob(task="t"), now=before
    )
    night = hourly.upcoming(4, after=datetime(2026, 10, 24, 23, 30, tzinfo=UTC))
    assert [t.strftime("%H:%M %z") for t in night] == [
        "02:00 +0200",
        "02:00 +0100",
        "03:00 +0100",
        "04:00 +0100",
    ]
