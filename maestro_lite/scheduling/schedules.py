"""Cron schedules: when a job is due, in a time zone, and what happens to missed times.

A :class:`Schedule` keeps ``next_due``, the first scheduled time it has not handled. When
the worker sees that time pass it handles every time up to now at once (:func:`firing`):
the job starts at most once, never in a burst. A time that passed while no worker was
running is *missed*; the schedule's policy says whether it still runs once when a worker
starts (``run-once``) or is dropped (``skip``).

Cron expressions are read by croniter (five fields, ``@daily`` and friends) in the
schedule's IANA time zone, so ``0 6 * * 1`` is 06:00 in Oslo on either side of a daylight
saving change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError
from .jobs import JobSpec, check_name, check_placeholders

__all__ = ["Firing", "MissedPolicy", "Schedule", "firing"]

MissedPolicy = Literal["run-once", "skip"]
"""What a worker that starts after a scheduled time does: run the job once now, or skip
it until the next time. Never more than once, however many times were missed."""

_MAX_WALK = 10_000
"""Scheduled times counted one by one when handling a backlog; past that (an every-minute
schedule down for a week) only the latest is looked up."""


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"unknown time zone {name!r}",
            hint="Use an IANA name such as UTC, Europe/Oslo or America/New_York.",
        ) from None


def _check_cron(expression: str) -> None:
    if not croniter.is_valid(expression):
        raise UserError(
            f"invalid cron expression {expression!r}",
            hint="Use five fields: minute hour day-of-month month day-of-week, for example "
            '"0 6 * * 1" (Mondays at 06:00), or @hourly, @daily, @weekly.',
        )


class Schedule(BaseModel):
    """A job started at the times of a cron expression.

    Create one with :meth:`create` (it validates and computes the first due time)."""

    model_config = ConfigDict(frozen=True)

    name: str
    cron: str
    timezone: str = "UTC"
    """IANA time zone the cron expression is read in."""
    missed: MissedPolicy = "run-once"
    job: JobSpec
    paused: bool = False
    """A paused schedule never fires; resuming it starts from the next time after then."""
    next_due: datetime
    """The first scheduled time not handled yet (UTC)."""
    last_fired: datetime | None = None
    """The scheduled time of the last run it started."""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def create(
        cls,
        name: str,
        *,
        cron: str,
        job: JobSpec,
        timezone: str = "UTC",
        missed: MissedPolicy = "run-once",
        now: datetime | None = None,
    ) -> Schedule:
        """A new schedule, first due at the first time after ``now``.

        Raises:
            UserError: A bad name, cron expression, time zone or placeholder.
        """
        check_name(name, "schedule")
        _check_cron(cron)
        _zone(timezone)
        check_placeholders(job, "schedule")
        now = now or datetime.now(UTC)
        draft = cls(
            name=name,
            cron=cron,
            timezone=timezone,
            missed=missed,
            job=job,
            next_due=now,
            created_at=now,
        )
        return draft.model_copy(update={"next_due": draft.next_after(now)})

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return _zone(self.timezone)

    def next_after(self, when: datetime) -> datetime:
        """The first scheduled time strictly after ``when`` (UTC).

        When clocks go back, the wall-clock hour that repeats is run once, as cron does: a
        job at a fixed hour ("30 2 * * *") does not run again at the second 02:30. A job
        whose hour field is ``*`` runs every hour that comes, the repeated one included.
        """
        zone = self.zone
        every_hour = croniter(self.cron).expanded[1] == ["*"]
        found: datetime = croniter(self.cron, when.astimezone(zone)).get_next(datetime)
        while not every_hour and _second_pass(found, zone):
            found = croniter(self.cron, found).get_next(datetime)
        return found.astimezone(UTC)

    def upcoming(self, count: int, *, after: datetime | None = None) -> list[datetime]:
        """The next ``count`` scheduled times, in the schedule's time zone."""
        times: list[datetime] = []
        when = after or self.next_due - timedelta(microseconds=1)
        for _ in range(count):
            when = self.next_after(when)
            times.append(when.astimezone(self.zone))
        return times


def _second_pass(moment: datetime, zone: ZoneInfo) -> bool:
    """Whether ``moment`` is the second time its wall-clock time comes, in the hour that
    repeats when clocks go back (02:30 in Oslo on the last Sunday of October)."""
    wall = moment.astimezone(zone).replace(tzinfo=None)
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return False  # not in a repeated hour
    # Compared in UTC: aware datetimes of one zone compare by wall clock, ignoring fold.
    return moment.astimezone(UTC) == second.astimezone(UTC)


@dataclass(frozen=True)
class Firing:
    """What to do about a schedule whose time has come (see :func:`firing`)."""

    schedule: str
    due: datetime
    """The latest scheduled time handled, in the schedule's time zone."""
    fire: bool
    """Start the job now."""
    late: bool
    """Every time handled passed while no worker was running."""
    missed: int
    """Scheduled times handled without starting the job (coalesced or skipped)."""
    next_due: datetime
    """The schedule's next time (UTC)."""


def firing(schedule: Schedule, now: datetime, *, up_since: datetime) -> Firing | None:
    """What to do about ``schedule`` at ``now``; ``None`` when nothing is due.

    Times that came while this worker was up (since ``up_since``) start the job once, late
    or coalesced ones counted in ``missed``. Times that all passed before it started follow
    the schedule's ``missed`` policy.
    """
    if schedule.paused or schedule.next_due > now:
        return None
    times = [schedule.next_due]
    while len(times) < _MAX_WALK:
        following = schedule.next_after(times[-1])
        if following > now:
            break
        times.append(following)
    else:  # a long backlog: the latest time is all that matters
        latest: datetime = croniter(
            schedule.cron, (now + timedelta(microseconds=1)).astimezone(schedule.zone)
        ).get_prev(datetime)
        times.append(latest.astimezone(UTC))
    latest_due = times[-1]
    late = latest_due < up_since
    fire = not late or schedule.missed == "run-once"
    return Firing(
        schedule=schedule.name,
        due=latest_due.astimezone(schedule.zone),
        fire=fire,
        late=late,
        missed=len(times) - (1 if fire else 0),
        next_due=schedule.next_after(now),
    )
