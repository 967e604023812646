"""``maestro worker --ray``: the worker's claimed jobs run as Ray tasks on a cluster.

The worker keeps its queue, schedules and watches; each job it claims becomes a Ray task
that gets the job's id and the settings, opens the stores itself (:class:`Node`), reads the
job's record and runs the runner registered for its kind. A task whose worker process or
node dies is run again on a live node (Ray's ``max_retries``); the retried task reads the
runs the job recorded so far and resumes them from their checkpoints, so no finished step is
paid for again. It takes those runs over even though their owner process cannot be checked
from another machine: Ray retries a task only once its previous attempt is dead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..scheduling.execute import failed_outcome, job_context, run_claimed
from ..scheduling.job_runs import JobRuns
from ..scheduling.jobs import JobOutcome, JobRecord, JobRunner
from ..settings import Settings
from ._ray import connect, on_node
from .node import Node

__all__ = ["RayJobExecutor", "execute_job"]


async def execute_job(
    node: Node, job_id: str, runners: Mapping[str, JobRunner[Any]], concurrency: int
) -> JobOutcome:
    """Run the claimed job ``job_id`` on this node (the body of a worker's Ray task); its
    outcome, with the job's runs. A job whose runner raised is a ``failed`` outcome."""
    store = node.schedule_store
    job = store.job(job_id)  # as recorded now: a retried task sees the runs started before
    runs = JobRuns(job.job_id, job.run_ids, store, node.run_store)
    context = job_context(
        job,
        runs,
        model=node.model,
        settings=node.settings,
        run_store=node.run_store,
        corpora=node.corpora,
        embedder=node.embedder,
        cache=node.cache,
        limiter=node.limiter,
        concurrency=concurrency,
    )
    try:
        outcome = await run_claimed(job, context, runners)
    except Exception as exc:  # recorded as the job's failure, as in the worker's process
        outcome = failed_outcome(exc)
    return outcome.model_copy(update={"run_ids": runs.run_ids})


class RayJobExecutor:
    """Runs a worker's claimed jobs on the Ray cluster at ``address`` (a
    :class:`~maestro_lite.scheduling.JobExecutor`).

    Args:
        address: The head's ``HOST:PORT`` (``ray start --head`` prints it), or ``auto``.
        settings: What each task opens (stores, model, limits). Every node must reach the
            same run store and job queue, corpora and limits.
        runners: Runners by job kind; the functions must be importable on every node
            (``maestro-lite`` installed there).
        concurrency: Steps in flight per run.
        max_retries: Times a job's task is run again after its worker process or node died.

    Raises:
        UserError: Ray is not installed or the cluster cannot be reached.
    """

    def __init__(
        self,
        address: str,
        *,
        settings: Settings,
        runners: Mapping[str, JobRunner[Any]],
        concurrency: int = 4,
        max_retries: int = 3,
    ) -> None:
        connect(address)
        self.settings = settings
        self.runners = dict(runners)
        self.concurrency = concurrency
        self.max_retries = max_retries

    async def run(self, job: JobRecord) -> JobOutcome:
        outcome: JobOutcome = await on_node(
            execute_job,
            self.settings,
            job.job_id,
            self.runners,
            self.concurrency,
            max_retries=self.max_retries,
        )
        return outcome
