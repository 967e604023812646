"""Durable runs: the run store, resume points, and traces.

Every run, plan, step, attempt, validation, decision and event is recorded in a
:class:`RunStore` (SQLite by default, at ``settings.runs_db``; PostgreSQL when
``settings.database_url`` is set: :func:`open_run_store`), so a run that was interrupted
or killed resumes from its checkpoints (``Maestro.resume``, ``maestro resume RUN_ID``)
without running finished steps again, and answers the calls it had made since its last
checkpoint from its own record of them (:class:`ReplayModel`).
"""

from .base import FINISHED, PlanRecord, RunRecord, RunState, RunStore, RunSummary, finished_error
from .cancel import cancel_run, until_cancelled
from .export import export_run
from .postgres import PostgresRunStore, open_run_store
from .query import RunPage, RunQuery, RunRow
from .replay import RecordedAnswers, ReplayModel
from .resume import (
    CompletedRound,
    ResumePoint,
    budget_of,
    exhausted_limit,
    raise_budget_hint,
    resume_point,
)
from .spec import RunSpec
from .sqlite import SQLiteRunStore

__all__ = [
    "FINISHED",
    "CompletedRound",
    "PlanRecord",
    "PostgresRunStore",
    "RecordedAnswers",
    "ReplayModel",
    "ResumePoint",
    "RunPage",
    "RunQuery",
    "RunRecord",
    "RunRow",
    "RunSpec",
    "RunState",
    "RunStore",
    "RunSummary",
    "SQLiteRunStore",
    "cancel_run",
    "until_cancelled",
    "export_run",
    "open_run_store",
    "finished_error",
    "budget_of",
    "exhausted_limit",
    "raise_budget_hint",
    "resume_point",
]
