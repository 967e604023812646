"""The orchestrator a job runs with: each run it starts is recorded under the job, and a
job continued after a restart resumes its unfinished runs instead of starting them over.

Pipelines call ``maestro.run(...)`` (one or many times) and know nothing of jobs. When a
worker stops mid-job, the job's runs are checkpointed in the run store; the next worker runs
the job's pipeline again with a :class:`JobMaestro` that, for each ``run(...)`` call,
looks for an unfinished run of the job asked exactly the same thing (same stored
:class:`~maestro_lite.runs.RunSpec`) and resumes it from its checkpoints. Calls made
outside runs (a pipeline's decomposition, say) are answered by the worker's response
cache, so nothing finished is paid for twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from ..budget import Budget, BudgetPreset
from ..cache import ResponseCache
from ..errors import RunNotFound
from ..limits import Limiter
from ..models.base import ChatModel
from ..models.cached import CachedModel
from ..orchestrator import EventHandler, Maestro
from ..plan import Plan
from ..requirements import RequirementLike
from ..result import RunResult
from ..retrieval import Retriever
from ..runs import FINISHED, RunSpec
from .store import ScheduleStore

__all__ = ["JobMaestro"]


class JobMaestro(Maestro):
    """A :class:`Maestro` whose runs belong to one job (see the module documentation).

    Args:
        model: The model of every call of the job.
        job_id: The job.
        previous_runs: Runs the job started before (in a stopped worker).
        schedule_store: Where the job's runs are recorded as they start.
        cache: Answers identical calls, in runs and outside them.
        limiter: Every call of the job goes through it (as the job's, for fairness).
        **kwargs: As for :class:`Maestro` (a ``run_store`` is needed to resume).
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        job_id: str,
        previous_runs: Sequence[str],
        schedule_store: ScheduleStore,
        cache: ResponseCache | None = None,
        limiter: Limiter | None = None,
        **kwargs: Any,
    ) -> None:
        # Pipelines also call `maestro.model` outside runs (splitting a question, proposing
        # aspects): wrapped here, those calls share the limits and the cache of the runs, so
        # a job continued after a restart does not pay for them again either.
        if limiter is not None:
            model = limiter.wrap(model, run=job_id)
        if cache is not None:
            model = CachedModel(model, cache)
        super().__init__(model, limiter=limiter, **kwargs)
        self.job_id = job_id
        self.run_ids = list(previous_runs)
        self._schedule_store = schedule_store
        self._resumable = list(previous_runs)
        self._lock = asyncio.Lock()

    async def run(
        self,
        task: str,
        *,
        corpus: str | Retriever | None = None,
        requirements: Sequence[RequirementLike] = (),
        budget: Budget | BudgetPreset | None = "medium",
        output_type: type[BaseModel] | None = None,
        plan: Plan | None = None,
        data_types: Mapping[str, type[BaseModel]] | None = None,
        run_id: str | None = None,
        on_event: EventHandler | None = None,
        cache: bool = True,
    ) -> RunResult:
        spec = RunSpec.of(
            run_id="",
            task=task,
            model=self.model.name,
            corpus=corpus,
            requirements=requirements,
            budget=Budget.of(budget),
            plan=plan,
            output_type=output_type,
            data_types=data_types or {},
            cache=cache,
        )
        async with self._lock:  # concurrent runs of one job must not pick the same one
            earlier = self._unfinished(spec)
            if earlier is None:
                run_id = run_id or f"{self.job_id}-{len(self.run_ids) + 1}"
                await asyncio.to_thread(self._schedule_store.add_run, self.job_id, run_id)
                self.run_ids.append(run_id)
        if earlier is not None:
            return await self.resume(
                earlier,
                corpus=corpus if isinstance(corpus, Retriever) else None,
                requirements=requirements,
                output_type=output_type,
                data_types=data_types,
                on_event=on_event,
            )
        return await super().run(
            task,
            corpus=corpus,
            requirements=requirements,
            budget=budget,
            output_type=output_type,
            plan=plan,
            data_types=data_types,
            run_id=run_id,
            on_event=on_event,
            cache=cache,
        )

    def _unfinished(self, spec: RunSpec) -> str | None:
        """An unfinished run of the job's earlier worker that was asked exactly ``spec``
        (taken: each is resumed once)."""
        if self.run_store is None:
            return None
        for run_id in self._resumable:
            try:
                record = self.run_store.get(run_id)
            except RunNotFound:
                continue  # recorded under the job, but its worker stopped before creating it
            if record.status in FINISHED:
                continue
            if record.spec.model_copy(update={"run_id": ""}) == spec:
                self._resumable.remove(run_id)
                return run_id
        return None
