"""``maestro schedule add|list|remove|pause|resume`` and ``maestro trigger add|list|remove``:
declare what starts when (a `maestro worker` runs them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from ..scheduling import Schedule, ScheduleStore, Trigger
from ..scheduling._sql_store import SQLScheduleStore
from ..scheduling.store import open_schedule_store
from ._app import MaestroGroup, app
from ._common import console, load_settings
from ._jobargs import describe_job, job_from_args

schedule_app = typer.Typer(
    help="Cron schedules that start pipelines.", no_args_is_help=True, cls=MaestroGroup
)
app.add_typer(schedule_app, name="schedule")
trigger_app = typer.Typer(
    help="What starts when a job finishes.", no_args_is_help=True, cls=MaestroGroup
)
app.add_typer(trigger_app, name="trigger")

_JOB = typer.Argument(
    ..., help='After --: the pipeline and its arguments, e.g. -- research "Q" --docs DIR.'
)
_WORKER_NOTE = "[dim]`maestro worker` runs it[/]"


class Missed(StrEnum):
    run_once = "run-once"
    skip = "skip"


class On(StrEnum):
    success = "success"
    failure = "failure"
    always = "always"


def open_schedules() -> SQLScheduleStore:
    """The schedule store the settings name (PostgreSQL at ``MAESTRO_DATABASE_URL``, else
    beside the runs in ``<home>/runs.sqlite3``)."""
    return open_schedule_store(load_settings())


def print_rows(columns: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str) -> None:
    """A table of ``rows``, or ``empty`` when there are none."""
    rows = list(rows)
    if not rows:
        console.print(empty)
        return
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def when(at: datetime | None, schedule: Schedule | None = None) -> str:
    """A time for people: in the schedule's zone (or the local one), with its zone name."""
    if at is None:
        return "-"
    local = at.astimezone(schedule.zone) if schedule else at.astimezone()
    return local.strftime("%Y-%m-%d %H:%M %Z")


@schedule_app.command("add")
def add_schedule(
    name: str = typer.Argument(..., help="A name for the schedule (triggers follow it)."),
    job: list[str] = _JOB,
    cron: str = typer.Option(..., "--cron", help='When: "0 6 * * 1" is Mondays at 06:00.'),
    tz: str = typer.Option("UTC", "--tz", help="IANA time zone of the cron expression."),
    missed: Missed = typer.Option(
        Missed.run_once, "--missed", help="A time missed while no worker ran: run once or skip."
    ),
    replace: bool = typer.Option(False, "--replace", help="Replace a schedule of this name."),
) -> None:
    """Start a pipeline at the times of a cron expression.

    Example: maestro schedule add weekly --cron "0 6 * * 1" --tz Europe/Oslo --
    research "What changed this week?" --docs ./contracts --out reports/{date}
    """
    schedule = Schedule.create(
        name, cron=cron, job=job_from_args(job), timezone=tz, missed=missed.value
    )
    with open_schedules() as store:
        store.add_schedule(schedule, replace=replace)
    times = ", ".join(when(t, schedule) for t in schedule.upcoming(3))
    console.print(
        f"schedule [bold]{escape(name)}[/]: {escape(describe_job(schedule.job))}; next {times}; "
        + _WORKER_NOTE
    )


@schedule_app.command("list")
def list_schedules() -> None:
    """The schedules: when each runs next, what it starts, and when it last did."""
    with open_schedules() as store:
        schedules = store.schedules()
    print_rows(
        ("name", "cron", "next", "last", "missed", "job"),
        (
            (
                escape(s.name),
                f"{escape(s.cron)} ({s.timezone})",
                "[yellow]paused[/]" if s.paused else when(s.next_due, s),
                when(s.last_fired, s),
                s.missed,
                escape(describe_job(s.job)),
            )
            for s in schedules
        ),
        empty="no schedules yet (`maestro schedule add NAME --cron ... -- PIPELINE`)",
    )


@schedule_app.command("remove")
def remove_schedule(name: str = typer.Argument(..., help="The schedule.")) -> None:
    """Remove a schedule (jobs it already started are kept)."""
    with open_schedules() as store:
        store.remove_schedule(name)
    console.print(f"removed schedule {escape(name)}")


def _pause(name: str, paused: bool) -> None:
    with open_schedules() as store:
        schedule = store.pause_schedule(name, paused, now=datetime.now().astimezone())
    state = "paused" if paused else f"resumed; next {when(schedule.next_due, schedule)}"
    console.print(f"schedule {escape(name)} {state}")


@schedule_app.command("pause")
def pause_schedule(name: str = typer.Argument(..., help="The schedule.")) -> None:
    """Stop a schedule from firing until it is resumed."""
    _pause(name, True)


@schedule_app.command("resume")
def resume_schedule(name: str = typer.Argument(..., help="The schedule.")) -> None:
    """Let a paused schedule fire again, from its next time on (paused times never run)."""
    _pause(name, False)


def _check_known(store: ScheduleStore, name: str) -> None:
    """Refuse to follow a name that nothing carries: a trigger on a typo never fires."""
    known = (
        {s.name for s in store.schedules()}
        | {w.name for w in store.watches()}
        | {t.name for t in store.triggers()}
        | {j.name for j in store.jobs(limit=None)}
    )
    if name not in known:
        raise UserError(
            f"--after {name!r}: no schedule, watch, trigger or job has that name",
            hint="Add what it should follow first (`maestro schedule add`, `maestro watch`, "
            "`maestro jobs submit NAME`); `maestro schedule list` shows the names.",
        )


@trigger_app.command("add")
def add_trigger(
    name: str = typer.Argument(..., help="A name for the trigger (others can follow it)."),
    job: list[str] = _JOB,
    after: str = typer.Option(..., "--after", help="The schedule, watch or job it follows."),
    on: On = typer.Option(On.success, "--on", help="success, failure or always."),
    replace: bool = typer.Option(False, "--replace", help="Replace a trigger of this name."),
) -> None:
    """Start a pipeline when a job finishes; {run_id}, {status} and {output} are its result.

    Example: maestro trigger add memo --after weekly -- run "Write a memo from: {output}"
    """
    trigger = Trigger.create(name, after=after, job=job_from_args(job), on=on.value)
    with open_schedules() as store:
        _check_known(store, after)
        store.add_trigger(trigger, replace=replace)
    console.print(
        f"trigger [bold]{escape(name)}[/]: after {escape(after)} ({on.value}), "
        f"{escape(describe_job(trigger.job))}; " + _WORKER_NOTE
    )


@trigger_app.command("list")
def list_triggers() -> None:
    """The completion triggers."""
    with open_schedules() as store:
        triggers = store.triggers()
    print_rows(
        ("name", "after", "on", "job"),
        ((escape(t.name), escape(t.after), t.on, escape(describe_job(t.job))) for t in triggers),
        empty="no triggers yet (`maestro trigger add NAME --after JOB -- PIPELINE`)",
    )


@trigger_app.command("remove")
def remove_trigger(name: str = typer.Argument(..., help="The trigger.")) -> None:
    """Remove a completion trigger."""
    with open_schedules() as store:
        store.remove_trigger(name)
    console.print(f"removed trigger {escape(name)}")
