"""Running one claimed job: what the worker's own process and a cluster node share.

The worker claims jobs from its queue. It runs each in its own process, or hands it to a
:class:`JobExecutor` (``maestro worker --ray``: a Ray task on a cluster node), which opens
the stores itself and builds the same :class:`~maestro_lite.scheduling.JobContext` with
:func:`job_context`. Either way the job's runs are recorded under the job
(:class:`~maestro_lite.scheduling.job_runs.JobRuns`) and a job continued later resumes them
from their checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..cache import ResponseCache
from ..embeddings.base import Embedder
from ..limits import Limiter
from ..models.base import ChatModel
from ..orchestrator import CorpusStore, EventHandler, Maestro
from ..runs import RunStore
from ..settings import Settings
from .job_runs import JobRuns
from .jobs import JobContext, JobOutcome, JobRecord, JobRunner

__all__ = ["JobExecutor", "failed_outcome", "job_context", "run_claimed"]


@runtime_checkable
class JobExecutor(Protocol):
    """Runs the worker's claimed jobs outside its process (on a cluster)."""

    async def run(self, job: JobRecord) -> JobOutcome:
        """Run ``job`` to its outcome, whose ``run_ids`` are the job's runs. A failure of
        the job itself comes back as a ``failed`` outcome; raising means it could not be
        run at all. Cancelled, it stops the job, leaving its runs checkpointed."""
        ...


def job_context(
    job: JobRecord,
    runs: JobRuns,
    *,
    model: ChatModel,
    settings: Settings,
    run_store: RunStore,
    corpora: CorpusStore,
    embedder: Embedder | None,
    cache: ResponseCache | None,
    limiter: Limiter | None,
    concurrency: int,
    on_event: EventHandler | None = None,
) -> JobContext:
    """The context a runner gets for ``job``: an orchestrator whose runs are the job's
    (``runs``) and every call of which, in runs or outside them, goes through ``limiter``
    as the job's, and through the response cache unless the job turns it off."""
    maestro = Maestro(
        model,
        store=corpora,
        run_store=run_store,
        cache=cache if job.spec.cache else None,
        limiter=limiter,
        concurrency=concurrency,
        on_event=on_event,
        caller=job.job_id,
        claims=runs,
    )
    return JobContext(
        job_id=job.job_id,
        inputs=job.inputs,
        maestro=maestro,
        settings=settings,
        corpora=corpora,
        embedder=embedder,
    )


async def run_claimed(
    job: JobRecord, context: JobContext, runners: Mapping[str, JobRunner[Any]]
) -> JobOutcome:
    """Run ``job`` with the runner registered for its kind.

    Raises:
        LookupError: No runner for its kind.
    """
    runner = runners.get(job.spec.kind)
    if runner is None:
        raise LookupError(f"this worker has no runner for {job.spec.kind!r} jobs")
    return await runner(job.spec, context)


def failed_outcome(exc: BaseException) -> JobOutcome:
    """The outcome recorded for a job whose runner raised."""
    return JobOutcome(status="failed", error=f"{type(exc).__name__}: {exc}")
