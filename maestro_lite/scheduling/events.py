"""The worker's typed event stream: schedules firing, files ingested, jobs started and done.

Like a run's events (:mod:`maestro_lite.events`), these are frozen pydantic models with a
``kind`` discriminator in one union, :data:`WorkerEvent`, serialised by
:data:`WORKER_EVENT_ADAPTER`. They are a union of their own because they belong to no run:
every run event carries the ``run_id`` the run store files it under, and a schedule firing
or a file arriving has none. ``Worker(on_event=...)`` receives both kinds; the CLI prints
one status line per worker event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..corpus.ingest import IngestFailure
from .jobs import JobSource, JobStatus

__all__ = [
    "WORKER_EVENT_ADAPTER",
    "FilesDeleted",
    "FilesIngested",
    "JobFinished",
    "JobQueued",
    "JobStarted",
    "JobStopped",
    "ScheduleFired",
    "ScheduleSkipped",
    "WatchFailed",
    "WatchStarted",
    "WorkerEvent",
    "WorkerStarted",
    "WorkerStopping",
    "WorkerStopped",
]


def _now() -> datetime:
    return datetime.now(UTC)


class _WorkerEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime = Field(default_factory=_now)


class WorkerStarted(_WorkerEvent):
    """A worker started, with what it runs."""

    kind: Literal["worker_started"] = "worker_started"
    schedules: list[str] = Field(default_factory=list)
    watches: list[str] = Field(default_factory=list)
    triggers: list[str] = Field(default_factory=list)
    resumed: list[str] = Field(default_factory=list)
    """Jobs a stopped worker left unfinished; this one continues them."""


class WorkerStopping(_WorkerEvent):
    """A worker asked to stop takes no new job and starts no new model call; the calls in
    flight get up to ``grace`` seconds to finish (a second stop request cuts it short)."""

    kind: Literal["worker_stopping"] = "worker_stopping"
    in_flight: int
    """Model calls in flight when the stop was asked for."""
    grace: float


class WorkerStopped(_WorkerEvent):
    """A worker stopped (SIGTERM, ``request_stop()``)."""

    kind: Literal["worker_stopped"] = "worker_stopped"
    interrupted: list[str] = Field(default_factory=list)
    """Jobs stopped mid-way, checkpointed; the next worker continues them."""


class ScheduleFired(_WorkerEvent):
    """A schedule's time came and its job was queued."""

    kind: Literal["schedule_fired"] = "schedule_fired"
    schedule: str
    due: datetime
    """The scheduled time, in the schedule's time zone."""
    job_id: str
    late: bool = False
    """It was due while no worker ran (the ``run-once`` policy)."""
    missed: int = 0
    """Earlier scheduled times folded into this one (never run one by one)."""


class ScheduleSkipped(_WorkerEvent):
    """Scheduled times passed while no worker ran; the ``skip`` policy drops them."""

    kind: Literal["schedule_skipped"] = "schedule_skipped"
    schedule: str
    missed: int
    next_due: datetime


class WatchStarted(_WorkerEvent):
    """A watched folder is watched (again)."""

    kind: Literal["watch_started"] = "watch_started"
    watch: str
    directory: str
    corpus: str
    waiting: int = 0
    """Files new or changed since the folder was last watched, picked up now."""


class WatchFailed(_WorkerEvent):
    """A watched folder cannot be watched (gone, unreadable); the worker goes on."""

    kind: Literal["watch_failed"] = "watch_failed"
    watch: str
    error: str


class FilesIngested(_WorkerEvent):
    """A batch of settled files went into the watch's corpus."""

    kind: Literal["files_ingested"] = "files_ingested"
    watch: str
    corpus: str
    ingested: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    """Content the corpus already had (a copy, or a file touched but not changed)."""
    no_text: list[str] = Field(default_factory=list)
    failed: list[IngestFailure] = Field(default_factory=list)
    """Files that could not be read, and why; the watch goes on."""
    jobs: list[str] = Field(default_factory=list)
    """Jobs queued for the batch."""


class FilesDeleted(_WorkerEvent):
    """Files the watch had seen were deleted from its folder."""

    kind: Literal["files_deleted"] = "files_deleted"
    watch: str
    corpus: str
    paths: list[str] = Field(default_factory=list)
    pruned: bool = False
    """Whether the paths were taken off the corpus (the watch's ``prune``); if not, their
    documents are still in it."""
    removed: list[str] = Field(default_factory=list)
    """Ids of the documents removed because no other file held them."""


class JobQueued(_WorkerEvent):
    """A job was queued by a submission or a completion trigger (schedules and watches
    say so in their own events)."""

    kind: Literal["job_queued"] = "job_queued"
    job_id: str
    name: str
    source: JobSource
    description: str
    after: str | None = None
    """The job whose completion queued it (completion triggers)."""


class JobStarted(_WorkerEvent):
    """A worker took a job from the queue."""

    kind: Literal["job_started"] = "job_started"
    job_id: str
    name: str
    description: str
    resumed: bool = False
    """It continues where a stopped worker left it."""


class JobFinished(_WorkerEvent):
    """A job ended; completion triggers have queued what follows it."""

    kind: Literal["job_finished"] = "job_finished"
    job_id: str
    name: str
    status: JobStatus
    run_ids: list[str] = Field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


class JobStopped(_WorkerEvent):
    """The worker stopped while the job ran; its runs are checkpointed."""

    kind: Literal["job_stopped"] = "job_stopped"
    job_id: str
    name: str
    run_ids: list[str] = Field(default_factory=list)


WorkerEvent: TypeAlias = Annotated[
    WorkerStarted
    | WorkerStopping
    | WorkerStopped
    | ScheduleFired
    | ScheduleSkipped
    | WatchStarted
    | WatchFailed
    | FilesIngested
    | FilesDeleted
    | JobQueued
    | JobStarted
    | JobFinished
    | JobStopped,
    Field(discriminator="kind"),
]

WORKER_EVENT_ADAPTER: TypeAdapter[WorkerEvent] = TypeAdapter(WorkerEvent)
"""Serialises and parses any worker event."""
