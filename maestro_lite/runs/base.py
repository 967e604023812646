"""What the run store keeps, and the :class:`RunStore` protocol every backend implements.

A store receives a run's :class:`RunSpec` when it starts and then every event of the run, in
order (:meth:`RunStore.append`). Each event is written with what it implies, in one
transaction: a plan, a step's checkpointed result, a round's report and decision, the run's
status and usage. Reading a run back (:meth:`RunStore.get`) gives a :class:`RunRecord`, from
which a crashed or interrupted run resumes and the CLI shows it.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError
from ..events import Event
from ..plan import Plan
from ..requirements import RequirementResult
from ..result import RoundRecord, StepResult
from ..usage import Usage
from .spec import RunSpec

__all__ = [
    "FINISHED",
    "PlanRecord",
    "RunRecord",
    "RunSpec",
    "RunState",
    "RunStore",
    "RunSummary",
    "finished_error",
]

RunState = Literal["running", "interrupted", "passed", "unmet", "failed"]
"""``running``: started and not stopped (or its process died: see ``owner``);
``interrupted``: stopped by an error or a cancel, resumable; the others are the final
statuses of :class:`~maestro_lite.result.RunResult`."""

FINISHED: frozenset[str] = frozenset({"passed", "unmet", "failed"})
"""States of runs that are over (they cannot be resumed)."""


def finished_error(run_id: str, status: str) -> UserError:
    """The error for resuming a run that is over."""
    return UserError(
        f"run {run_id} already finished ({status}); there is nothing to resume",
        hint=f"See its result with `maestro runs show {run_id}`.",
    )


class RunSummary(BaseModel):
    """One line of ``maestro runs list``."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    task: str
    corpus: str | None = None
    status: RunState
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    active_seconds: float = 0.0
    """Time the run spent running, over every session (resumes included)."""
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    owner: str | None = None
    """``host:pid`` of the process that last ran it."""


class PlanRecord(BaseModel):
    """A plan of a run, as created (by the user, the planner, or a replan)."""

    model_config = ConfigDict(frozen=True)

    version: int
    round: int
    source: Literal["planner", "user", "replan", "versions"]
    plan: Plan
    at: datetime


class RunRecord(BaseModel):
    """Everything stored about one run."""

    model_config = ConfigDict(frozen=True)

    summary: RunSummary
    spec: RunSpec
    plans: list[PlanRecord] = Field(default_factory=list)
    """Oldest first."""
    steps: list[StepResult] = Field(default_factory=list)
    """Every checkpointed step result (done, failed or skipped), by round then plan order."""
    running: list[tuple[int, str]] = Field(default_factory=list)
    """``(round, step_id)`` of steps started and never finished."""
    reports: dict[int, list[RequirementResult]] = Field(default_factory=dict)
    """Requirement results of each validated round."""
    rounds: list[RoundRecord] = Field(default_factory=list)
    """Rounds that reached a decision, in order."""

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    @property
    def status(self) -> RunState:
        return self.summary.status

    def step(self, step_id: str, round: int) -> StepResult | None:
        """The result of ``step_id`` checkpointed in ``round``, if any."""
        for s in self.steps:
            if s.step_id == step_id and s.round == round:
                return s
        return None


@runtime_checkable
class RunStore(Protocol):
    """Where runs are recorded. :class:`~maestro_lite.runs.SQLiteRunStore` is the default.

    Writes are synchronous and durable when they return: the orchestrator calls
    :meth:`append` from its event stream, so a step's result is committed before the run
    moves on, and a process killed at any point leaves a consistent record behind.
    """

    def create(self, spec: RunSpec) -> None:
        """Record a new run, owned by this process.

        Raises:
            UserError: A run with this id already exists.
        """
        ...

    def claim(self, run_id: str, *, force: bool = False, reopen: bool = False) -> RunRecord:
        """Take over a stopped run to resume it, and return what is stored about it.

        ``reopen``: a finished run may be taken too (one that stopped on its budget, resumed
        with a larger one).

        Raises:
            RunNotFound: No such run.
            UserError: The run is finished (unless ``reopen``), or still running in a live
                process (unless ``force``).
        """
        ...

    def append(self, event: Event) -> None:
        """Store one event of a run and what it implies, atomically."""
        ...

    def get(self, run_id: str) -> RunRecord:
        """Everything stored about a run.

        Raises:
            RunNotFound: No such run.
        """
        ...

    def list(self, *, limit: int | None = 50, status: RunState | None = None) -> list[RunSummary]:
        """Runs, most recently started first."""
        ...

    def events(self, run_id: str) -> builtins.list[Event]:
        """Every event of a run, in order (step events without their full result, which
        :meth:`get` returns in ``steps``)."""
        ...

    def request_cancel(self, run_id: str) -> None:
        """Ask the process running ``run_id`` to stop it (it polls :meth:`take_cancel`).

        Raises:
            RunNotFound: No such run.
        """
        ...

    def take_cancel(self, run_id: str) -> bool:
        """Whether a cancel of ``run_id`` was requested; the request is consumed, so a
        resumed run is not cancelled again by it."""
        ...

    def close(self) -> None:
        """Release the store's connections."""
        ...
