"""The runs of one job: each run a job starts is recorded under the job, and a job continued
after a restart resumes its unfinished runs instead of starting them over.

Pipelines call ``maestro.run(...)`` (one or many times) and know nothing of jobs. When a
worker stops mid-job, the job's runs are checkpointed in the run store; the next worker runs
the job's pipeline again with a :class:`~maestro_lite.Maestro` whose ``claims`` are the
job's :class:`JobRuns`: for each ``run(...)`` call, an unfinished run of the job asked
exactly the same thing (same stored :class:`~maestro_lite.runs.RunSpec`) is resumed from its
checkpoints. Calls made outside runs (a pipeline's decomposition, say) are answered by the
worker's response cache, so nothing finished is paid for twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ..errors import RunNotFound
from ..orchestrator import RunClaim
from ..runs import FINISHED, RunSpec, RunStore
from .store import ScheduleStore

__all__ = ["JobRuns"]


class JobRuns:
    """The runs of one job, for ``Maestro(claims=...)`` (see the module documentation).

    Args:
        job_id: The job.
        previous_runs: Runs the job started before (in a stopped worker).
        schedule_store: Where the job's runs are recorded as they start.
        run_store: Where runs are recorded (resuming needs one).
        takeover: Resume the job's unfinished runs even when their recorded owner process
            seems alive. For a caller that knows every earlier attempt of the job is dead:
            a cluster retries a task only after its worker or node died, and on another
            machine the store cannot tell.
    """

    def __init__(
        self,
        job_id: str,
        previous_runs: Sequence[str],
        schedule_store: ScheduleStore,
        run_store: RunStore | None,
        *,
        takeover: bool = False,
    ) -> None:
        self.job_id = job_id
        self.run_ids = list(previous_runs)
        """The job's runs so far, in order."""
        self._schedule_store = schedule_store
        self._run_store = run_store
        self._resumable = list(previous_runs)
        self._lock = asyncio.Lock()
        self._takeover = takeover

    async def claim(self, spec: RunSpec, run_id: str | None) -> RunClaim:
        """An unfinished earlier run asked ``spec``, or a new run of the job, recorded."""
        async with self._lock:  # concurrent runs of one job must not pick the same one
            earlier = self._unfinished(spec)
            if earlier is not None:
                return RunClaim(earlier, resume=True, force=self._takeover)
            run_id = run_id or f"{self.job_id}-{len(self.run_ids) + 1}"
            await asyncio.to_thread(self._schedule_store.add_run, self.job_id, run_id)
            self.run_ids.append(run_id)
            return RunClaim(run_id, resume=False)

    def _unfinished(self, spec: RunSpec) -> str | None:
        """An unfinished run of the job's earlier worker that was asked exactly ``spec``
        (taken: each is resumed once)."""
        if self._run_store is None:
            return None
        for run_id in self._resumable:
            try:
                record = self._run_store.get(run_id)
            except RunNotFound:
                continue  # recorded under the job, but its worker stopped before creating it
            if record.status in FINISHED:
                continue
            if record.spec.model_copy(update={"run_id": ""}) == spec:
                self._resumable.remove(run_id)
                return run_id
        return None
