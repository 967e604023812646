"""Scheduling and triggers: cron schedules, watched folders, completion triggers, a worker.

What starts is always a job (:class:`Job`: a kind and its parameters, such as the core's
:class:`RunJob`; pipelines register runners for kinds of their own), kept in a durable
queue beside the runs. A
:class:`Worker` fires schedules, watches folders, runs queued jobs within shared provider
limits, and queues what completion triggers start; stopped (SIGTERM), it leaves its jobs
checkpointed and the next worker continues them. See the README for the CLI
(``maestro schedule``, ``maestro watch``, ``maestro trigger``, ``maestro worker``).
"""

from .clock import Clock, ManualClock, SystemClock
from .events import (
    WORKER_EVENT_ADAPTER,
    FilesDeleted,
    FilesIngested,
    JobFinished,
    JobQueued,
    JobStarted,
    JobStopped,
    ScheduleFired,
    ScheduleSkipped,
    WatchFailed,
    WatchStarted,
    WorkerEvent,
    WorkerStarted,
    WorkerStopped,
    WorkerStopping,
)
from .execute import JobExecutor, failed_outcome, job_context, run_claimed
from .job_runs import JobRuns
from .jobs import (
    JOB_ADAPTER,
    PLACEHOLDERS,
    Job,
    JobContext,
    JobInputs,
    JobOutcome,
    JobRecord,
    JobRunner,
    JobSource,
    JobSpec,
    JobStatus,
    PreviousJob,
    RunJob,
    check_placeholders,
    render_job,
    run_job,
    typed_job,
)
from .schedules import Firing, MissedPolicy, Schedule, firing
from .store import PostgresScheduleStore, ScheduleStore, SQLiteScheduleStore, open_schedule_store
from .triggers import Trigger, TriggerCycleError, TriggerOn, check_triggers
from .watch import FolderWatcher, SeenFile, Watch
from .worker import Worker, WorkerEventHandler, default_runners

__all__ = [
    # jobs
    "Job",
    "JobSpec",
    "RunJob",
    "JOB_ADAPTER",
    "PLACEHOLDERS",
    "JobInputs",
    "JobOutcome",
    "JobRecord",
    "JobStatus",
    "JobSource",
    "PreviousJob",
    "JobContext",
    "JobRunner",
    "check_placeholders",
    "render_job",
    "run_job",
    "typed_job",
    # schedules, triggers, watches
    "Schedule",
    "MissedPolicy",
    "Firing",
    "firing",
    "Trigger",
    "TriggerOn",
    "TriggerCycleError",
    "check_triggers",
    "Watch",
    "SeenFile",
    "FolderWatcher",
    # store and worker
    "ScheduleStore",
    "SQLiteScheduleStore",
    "PostgresScheduleStore",
    "open_schedule_store",
    "Worker",
    "WorkerEventHandler",
    "default_runners",
    # running a claimed job (in the worker, or on a cluster node)
    "JobExecutor",
    "JobRuns",
    "job_context",
    "run_claimed",
    "failed_outcome",
    # time
    "Clock",
    "SystemClock",
    "ManualClock",
    # events
    "WorkerEvent",
    "WORKER_EVENT_ADAPTER",
    "WorkerStarted",
    "WorkerStopped",
    "WorkerStopping",
    "ScheduleFired",
    "ScheduleSkipped",
    "WatchStarted",
    "WatchFailed",
    "FilesDeleted",
    "FilesIngested",
    "JobQueued",
    "JobStarted",
    "JobFinished",
    "JobStopped",
]
