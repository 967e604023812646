"""The worker: one long-lived process that runs schedules, watched folders and triggered
jobs, within shared provider limits, and survives restarts.

Jobs wait in a durable queue (:class:`~maestro_lite.scheduling.store.ScheduleStore`).
Schedules and watches queue jobs; the worker runs up to ``max_jobs`` of them at once, every
model call of every job through one :class:`~maestro_lite.limits.Limiter`; a finished job
queues what its completion triggers start.

Stopping is graceful: :meth:`request_stop` (SIGTERM for ``maestro worker``) makes
:meth:`run` take no new job and start no new model call, give the calls in flight up to
``grace`` seconds to finish (their answers are recorded, so they are never paid again), then
cancel the jobs; a second request cuts the wait short. The jobs' runs record that they were
interrupted, with every finished step checkpointed in the run store, and the next worker
continues them, resuming each run where it stopped.

Several workers, on one machine or many (``MAESTRO_DATABASE_URL``), share one queue: each
job is leased to the worker that claimed it, and a heartbeat renews the leases while the
jobs run. A worker that dies without stopping (SIGKILL, a lost machine) stops renewing; its
jobs become claimable when their leases expire, and another worker continues them the same
way.

Example::

    worker = Worker(model, settings=settings)
    worker.store.add_schedule(Schedule.create(
        "weekly", cron="0 6 * * 1", timezone="Europe/Oslo",
        job=RunJob(task="What changed in the contracts this week?", corpus="contracts")))
    await worker.run()        # until worker.request_stop()
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..cache import ResponseCache
from ..corpora import Corpora
from ..corpus.corpus import Corpus
from ..embeddings import Embedder, embedder_from_settings
from ..errors import StoreError
from ..events import Event
from ..limits import Limiter
from ..models.base import ChatModel
from ..models.gate import CallGate, gated
from ..orchestrator import CorpusStore
from ..runs import RunStore, open_run_store
from ..settings import Settings
from .clock import Clock, SystemClock, sleep_or_wake
from .events import (
    JobFinished,
    JobQueued,
    JobStarted,
    JobStopped,
    ScheduleFired,
    ScheduleSkipped,
    WatchFailed,
    WorkerEvent,
    WorkerStarted,
    WorkerStopped,
    WorkerStopping,
)
from .execute import JobExecutor, failed_outcome, job_context, run_claimed
from .job_runs import JobRuns
from .jobs import (
    Job,
    JobInputs,
    JobRecord,
    JobRunner,
    RunJob,
    run_job,
    typed_job,
)
from .schedules import Firing, firing
from .store import ScheduleStore, open_schedule_store
from .watch import FolderWatcher, Watch

__all__ = ["Worker", "WorkerEventHandler", "default_runners"]

_log = logging.getLogger(__name__)

WorkerEventHandler = Callable[[WorkerEvent | Event], Awaitable[None] | None]
"""Receives the worker's events and the events of the runs its jobs start."""


def default_runners() -> dict[str, JobRunner[Any]]:
    """The core's own runners (``run``). Pipelines are built on this library and bring their
    own: the CLI's worker adds ``pipelines.jobs.RUNNERS``; so does
    ``Worker(runners={**default_runners(), **RUNNERS})``."""
    return {"run": JobRunner(RunJob, run_job)}


class Worker:
    """Runs schedules, watched folders and the job queue (see the module documentation).

    Args:
        model: The model every job's runs use.
        settings: Where the stores and corpora live; ``Settings.from_env()`` when ``None``.
        schedule_store: The schedule store; the settings' (PostgreSQL at ``database_url``,
            else ``runs_db``) when ``None`` (``store``: its old name, still accepted).
        run_store: The run store (resuming needs one); the settings' when ``None``.
        cache: The response cache; ``settings.cache_dir`` when ``None``.
        limiter: Provider limits shared by every job's calls; default limits when ``None``.
        embedder: The embedder of watched and job corpora; the settings' when ``None``.
        corpora: Opens the corpora jobs name; ``Corpora(settings, embedder=embedder)`` when
            ``None``.
        clock: Time for schedules and settling files.
        runners: Runners by job kind; :func:`default_runners` when ``None``.
        max_jobs: Jobs run at once.
        concurrency: Steps in flight at once within a run.
        schedules: Run the schedules (a worker for one watch does not).
        watches: Names of the watches to run; every watch when ``None``.
        settle: Seconds a watched file must stay unchanged before it is read.
        poll: Seconds between checks of settling files.
        refresh: Clock seconds between looks at the store for schedules and watches added
            by other processes.
        queue_poll: Real seconds between looks for jobs queued by other processes.
        grace: Seconds :meth:`run` lets model calls in flight finish once a stop is asked
            for (0: cancel them at once).
        on_event: Receives worker events and the events of every run (of the jobs run in
            this process).
        executor: Runs the claimed jobs elsewhere (``maestro_lite.cluster.RayJobExecutor``:
            on a Ray cluster); in this process when ``None``. The queue, schedules and
            watches stay here.
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        settings: Settings | None = None,
        schedule_store: ScheduleStore | None = None,
        run_store: RunStore | None = None,
        cache: ResponseCache | None = None,
        limiter: Limiter | None = None,
        embedder: Embedder | None = None,
        corpora: CorpusStore | None = None,
        clock: Clock | None = None,
        runners: Mapping[str, JobRunner[Any]] | None = None,
        max_jobs: int = 2,
        concurrency: int = 4,
        schedules: bool = True,
        watches: list[str] | None = None,
        settle: float = 2.0,
        poll: float = 0.5,
        refresh: float = 30.0,
        queue_poll: float = 1.0,
        grace: float = 30.0,
        on_event: WorkerEventHandler | None = None,
        executor: JobExecutor | None = None,
        store: ScheduleStore | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.model = model
        self._owned: list[Any] = []
        self.store: ScheduleStore = (
            schedule_store or store or self._own(open_schedule_store(self.settings))
        )
        self.run_store: RunStore = run_store or self._own(open_run_store(self.settings))
        self.cache = cache if cache is not None else self._own(ResponseCache.open(self.settings))
        self.limiter = limiter or Limiter()
        self.embedder = embedder or embedder_from_settings(self.settings)
        self.clock: Clock = clock or SystemClock()
        self.runners = dict(runners) if runners is not None else default_runners()
        self.max_jobs = max_jobs
        self.concurrency = concurrency
        self.run_schedules = schedules
        self.watch_names = watches
        self.settle = settle
        self.poll = poll
        self.refresh = refresh
        self.queue_poll = queue_poll
        self.grace = grace
        self.on_event = on_event
        self.executor = executor
        self.started_at: datetime | None = None
        self._own_corpora = Corpora(self.settings, embedder=self.embedder)
        self.corpora: CorpusStore = corpora or self._own_corpora
        self.watchers: dict[str, FolderWatcher] = {}
        self._watch_tasks: dict[str, asyncio.Task[None]] = {}
        self._watch_corpora: dict[str, Corpus] = {}
        self._corpus_locks: dict[str, asyncio.Lock] = {}
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._queue_wake = asyncio.Event()
        self._schedules_wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stop_now = asyncio.Event()
        self._gate = CallGate()
        self._stopped: list[str] = []
        self._handler_tasks: set[asyncio.Future[None]] = set()

    @property
    def schedule_store(self) -> ScheduleStore:
        """The schedule store (``store``, its old name, is the same object)."""
        return self.store

    def _own(self, resource: Any) -> Any:
        self._owned.append(resource)
        return resource

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Continue what a stopped worker left, then start the schedules, watches and queue."""
        self.started_at = self.clock.now()
        resumed = await asyncio.to_thread(self.store.recover)
        unfinished = await asyncio.to_thread(self.store.jobs, status=["interrupted"], limit=None)
        schedules = await asyncio.to_thread(self.store.schedules) if self.run_schedules else []
        triggers = await asyncio.to_thread(self.store.triggers)
        watches = await self._wanted_watches()
        self.emit(
            WorkerStarted(
                schedules=[s.name for s in schedules],
                watches=[w.name for w in watches],
                triggers=[t.name for t in triggers],
                resumed=sorted({*resumed, *(j.job_id for j in unfinished)}),
            )
        )
        self._loops = [asyncio.create_task(self._dispatch(), name="maestro-jobs")]
        self._loops.append(asyncio.create_task(self._schedule_loop(), name="maestro-schedules"))
        self._loops.append(asyncio.create_task(self._heartbeat(), name="maestro-leases"))

    async def stop(self, *, grace: float = 0.0) -> None:
        """Stop: no new job or model call starts; the calls in flight get up to ``grace``
        seconds to finish (or until a second :meth:`request_stop`); then the jobs are
        interrupted (checkpointed) and the watches released."""
        loops = [*self._loops, *self._watch_tasks.values()]
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        self._gate.close()
        if self._jobs and self._gate.in_flight and grace > 0 and not self._stop_now.is_set():
            self.emit(WorkerStopping(in_flight=self._gate.in_flight, grace=grace))
            await self._drain(grace)
        jobs = list(self._jobs.values())
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        for name in list(self._watch_tasks):
            await asyncio.to_thread(self.store.release_watch, name)
        self._watch_tasks.clear()
        self.emit(WorkerStopped(interrupted=list(self._stopped)))
        if self._handler_tasks:
            await asyncio.gather(*self._handler_tasks, return_exceptions=True)
        for corpus in self._watch_corpora.values():
            await corpus.close()
        self._watch_corpora.clear()
        await self._own_corpora.aclose()
        for resource in self._owned:
            resource.close()
        self._owned.clear()

    async def _drain(self, grace: float) -> None:
        """Wait until no model call is in flight, ``grace`` seconds pass, or a second stop
        request comes."""
        waits = [
            asyncio.ensure_future(self._gate.drained()),
            asyncio.ensure_future(self._stop_now.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop gracefully; asked again, to stop at once (safe from a
        signal handler)."""
        if self._stop.is_set():
            self._stop_now.set()
        self._stop.set()

    async def run(self) -> None:
        """Start, run until :meth:`request_stop`, then stop within ``grace``."""
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.stop(grace=self.grace)

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- events ---------------------------------------------------------------------------

    def emit(self, event: WorkerEvent | Event) -> None:
        """Send ``event`` to the handler."""
        if self.on_event is None:
            return
        outcome = self.on_event(event)
        if inspect.isawaitable(outcome):
            task = asyncio.ensure_future(outcome)
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)

    # -- the queue ------------------------------------------------------------------------

    def submit(self, job: Job, *, name: str) -> JobRecord:
        """Queue ``job`` now (its completion triggers follow ``name``).

        Raises:
            UserError: A bad name, a placeholder a submission cannot fill, or parameters
                the runner of its kind refuses.
        """
        runner = self.runners.get(job.kind)
        if runner is not None:
            job = runner.validate(job)
        record = self.store.submit(JobRecord.submission(job, name=name))
        self._queued([record])
        return record

    def describe(self, job: Job) -> str:
        """``job.describe()`` as the runner of its kind types it."""
        return typed_job(job, self.runners).describe()

    def _queued(self, jobs: Sequence[JobRecord], after: str | None = None) -> None:
        for job in jobs:
            if after is not None or job.source == "manual":
                self.emit(
                    JobQueued(
                        job_id=job.job_id,
                        name=job.name,
                        source=job.source,
                        description=self.describe(job.spec),
                        after=after,
                    )
                )
        self._queue_wake.set()

    async def _dispatch(self) -> None:
        while True:
            self._queue_wake.clear()
            while len(self._jobs) < self.max_jobs:
                job = await asyncio.to_thread(self.store.claim_next)
                if job is None:
                    break
                task = asyncio.create_task(self._run(job), name=f"maestro-job-{job.job_id}")
                self._jobs[job.job_id] = task
                task.add_done_callback(functools.partial(self._job_done, job.job_id))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancel
            # that stops the worker when the event is set at the same moment.
            try:
                async with asyncio.timeout(self.queue_poll):
                    await self._queue_wake.wait()
            except TimeoutError:
                pass

    async def _heartbeat(self) -> None:
        """Renew the leases of the jobs this worker runs, three times per lease; a job
        whose lease another worker took (this one stalled past it) is stopped here."""
        while True:
            await asyncio.sleep(self.store.lease_seconds / 3)
            if not self._jobs:
                continue
            try:
                lost = await asyncio.to_thread(self.store.renew_leases, list(self._jobs))
            except StoreError as exc:  # the next beat tries again, within the lease
                _log.warning("cannot renew the leases of this worker's jobs: %s", exc)
                continue
            for job_id in lost:
                task = self._jobs.get(job_id)
                if task is not None:
                    task.cancel()

    def _job_done(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self._jobs.pop(job_id, None)
        self._queue_wake.set()

    async def _run(self, job: JobRecord) -> None:
        runs = JobRuns(job.job_id, job.run_ids, self.store, self.run_store)
        self.emit(
            JobStarted(
                job_id=job.job_id,
                name=job.name,
                description=self.describe(job.spec),
                resumed=bool(job.run_ids),
            )
        )
        started = time.perf_counter()
        try:
            if self.executor is not None:
                outcome = await self.executor.run(job)
            else:
                context = job_context(
                    job,
                    runs,
                    model=self.model,
                    settings=self.settings,
                    run_store=self.run_store,
                    corpora=self.corpora,
                    embedder=self.embedder,
                    cache=self.cache,
                    limiter=self.limiter,
                    concurrency=self.concurrency,
                    on_event=self.emit if self.on_event else None,
                )
                with gated(self._gate):
                    outcome = await run_claimed(job, context, self.runners)
        except asyncio.CancelledError:
            self.store.stop_job(job.job_id)
            self._stopped.append(job.job_id)
            run_ids = self._run_ids(job, runs)
            self.emit(JobStopped(job_id=job.job_id, name=job.name, run_ids=run_ids))
            raise
        except Exception as exc:  # a failed job is recorded; the worker goes on
            outcome = failed_outcome(exc)
        # From here to the record of the outcome nothing awaits, so a stop cannot land
        # between a finished runner and its record (the job would be run again).
        outcome = outcome.model_copy(update={"run_ids": self._run_ids(job, runs)})
        follow_ups = [
            JobRecord.queue(t.job, t.inputs(job.job_id, job.name, outcome, job.inputs))
            for t in self.store.triggers()
            if t.matches(job.name, outcome)
        ]
        self.store.finish_job(job.job_id, outcome, follow_ups)
        self.emit(
            JobFinished(
                job_id=job.job_id,
                name=job.name,
                status=outcome.status,
                run_ids=outcome.run_ids,
                error=outcome.error,
                seconds=time.perf_counter() - started,
            )
        )
        if follow_ups:
            self._queued(follow_ups, after=job.job_id)

    def _run_ids(self, job: JobRecord, runs: JobRuns) -> list[str]:
        """The job's runs: this process's record of them, or, when an executor ran the job
        elsewhere, the store's."""
        if self.executor is None:
            return runs.run_ids
        return self.store.job(job.job_id).run_ids

    # -- schedules and watches ------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        assert self.started_at is not None
        while True:
            await self._sync_watches()
            now = self.clock.now()
            wake = self.refresh
            if self.run_schedules:
                for schedule in await asyncio.to_thread(self.store.schedules):
                    due = firing(schedule, now, up_since=self.started_at)
                    if due is not None:
                        await self._fire(due, schedule.job, schedule.name)
                        next_due = due.next_due
                    else:
                        next_due = schedule.next_due
                    if not schedule.paused:
                        wake = min(wake, (next_due - now).total_seconds())
            await sleep_or_wake(self.clock, wake, self._schedules_wake)

    async def _fire(self, due: Firing, template: Job, name: str) -> None:
        job = None
        if due.fire:
            job = JobRecord.queue(
                template, JobInputs(source="schedule", name=name, fired_at=due.due)
            )
        if not await asyncio.to_thread(self.store.fire, due, job):
            return  # another worker handled this time
        if job is None:
            self.emit(ScheduleSkipped(schedule=name, missed=due.missed, next_due=due.next_due))
            return
        self.emit(
            ScheduleFired(
                schedule=name, due=due.due, job_id=job.job_id, late=due.late, missed=due.missed
            )
        )
        self._queued([job])

    @property
    def watching(self) -> list[str]:
        """The watches this worker runs now."""
        return sorted(self._watch_tasks)

    def wake(self) -> None:
        """Look at the store for new schedules and watches now (not at the next refresh)."""
        self._schedules_wake.set()

    async def _wanted_watches(self) -> list[Watch]:
        watches = await asyncio.to_thread(self.store.watches)
        if self.watch_names is None:
            return watches
        return [w for w in watches if w.name in self.watch_names]

    async def _sync_watches(self) -> None:
        """Start the watches not running yet (new ones, or ones that failed), and stop the
        ones removed or changed since they started (a changed one starts again)."""
        wanted = {w.name: w for w in await self._wanted_watches()}
        for name, task in list(self._watch_tasks.items()):
            if task.done():
                error = task.exception() if not task.cancelled() else None
                self.emit(WatchFailed(watch=name, error=f"{type(error).__name__}: {error}"))
            elif wanted.get(name) != self.watchers[name].watch:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            else:
                continue
            del self._watch_tasks[name]
            await asyncio.to_thread(self.store.release_watch, name)
        for watch in wanted.values():
            if watch.name in self._watch_tasks:
                continue
            if not await asyncio.to_thread(self.store.claim_watch, watch.name):
                continue  # another live process watches it
            try:
                corpus = self._watch_corpora.get(watch.corpus)
                if corpus is None:
                    corpus = await Corpus.open(
                        watch.corpus, settings=self.settings, embedder=self.embedder
                    )
                    self._watch_corpora[watch.corpus] = corpus
            except Exception as exc:  # reported; tried again at the next refresh
                self.emit(WatchFailed(watch=watch.name, error=f"{type(exc).__name__}: {exc}"))
                await asyncio.to_thread(self.store.release_watch, watch.name)
                continue
            watcher = FolderWatcher(
                watch,
                corpus=corpus,
                store=self.store,
                clock=self.clock,
                emit=self.emit,
                queued=self._queued,
                lock=self._corpus_locks.setdefault(watch.corpus, asyncio.Lock()),
                settle=self.settle,
                poll=self.poll,
            )
            self.watchers[watch.name] = watcher
            self._watch_tasks[watch.name] = asyncio.create_task(
                watcher.run(), name=f"maestro-watch-{watch.name}"
            )
