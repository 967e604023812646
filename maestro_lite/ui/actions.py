"""What the dashboard's buttons do, through the same code paths as the CLI, and what its
operations page reads.

- **Resume a run**: starts ``maestro resume RUN_ID`` in the background (the CLI command
  itself, with the settings of the environment), its output in ``<home>/logs``.
- **Cancel a run**: :func:`~maestro_lite.runs.cancel_run`, as ``maestro runs cancel``.
- **Pause or resume a schedule**, **submit a job**: the schedule store calls
  ``maestro schedule pause|resume`` and ``maestro jobs submit`` make.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..runs import FINISHED, RunStore
from ..runs.sql import _alive
from ..scheduling import Job, JobRecord, JobStatus, ScheduleStore
from ..settings import Settings

__all__ = [
    "Launcher",
    "bad_job",
    "launch",
    "operations",
    "pause_schedule",
    "resume_run",
    "submit_job",
]

Launcher = Callable[[list[str], Path], int]
"""Starts a command in the background with its output in a log file; returns its pid."""

QUEUE_STATES: tuple[JobStatus, ...] = ("pending", "running", "interrupted", "failed")


def launch(argv: list[str], log: Path) -> int:
    """Start ``argv`` detached from the dashboard (it outlives it), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    return process.pid


def resume_run(store: RunStore, run_id: str, launcher: Launcher, *, home: Path) -> str:
    """Start ``maestro resume RUN_ID`` for a stopped run.

    Raises:
        UserError: The run is finished, or still running in a live process.
    """
    summary = store.get(run_id).summary
    if summary.status in FINISHED:
        raise UserError(f"run {run_id} already finished ({summary.status}); nothing to resume")
    if summary.status == "running" and _alive(summary.owner):
        raise UserError(
            f"run {run_id} is still running in process {summary.owner}",
            hint="Cancel it first, or wait for it to stop.",
        )
    log = home / "logs" / f"resume-{run_id}.log"
    pid = launcher([sys.executable, "-m", "maestro_lite", "resume", run_id], log)
    return f"started `maestro resume {run_id}` (process {pid}); its output goes to {log}"


def pause_schedule(store: ScheduleStore, name: str, paused: bool) -> str:
    """``maestro schedule pause|resume NAME``."""
    schedule = store.pause_schedule(name, paused, now=datetime.now().astimezone())
    if paused:
        return f"schedule {name} paused"
    return f"schedule {name} resumed; next {schedule.next_due.isoformat(timespec='minutes')}"


def bad_job(reason: str) -> UserError:
    return UserError(f"cannot read the job's command line: {reason}")


JobParser = Callable[[Sequence[str]], Job]
"""Reads a job's command line (``["research", "What changed?", "--docs", "in"]``): the
``maestro`` command's, which knows the pipelines' commands."""


def submit_job(
    store: ScheduleStore, name: str, args: Sequence[str], parse: JobParser | None
) -> str:
    """``maestro jobs submit NAME -- ARGS``.

    Raises:
        UserError: No ``parse`` (a dashboard not started by ``maestro ui``), or a bad job.
    """
    if parse is None:
        raise UserError(
            "this dashboard cannot read job command lines",
            hint="Start it with `maestro ui`, or pass DashboardConfig(job_parser=...).",
        )
    spec = parse(args)
    record = store.submit(JobRecord.submission(spec, name=name))
    return f"queued job {record.job_id}: {spec.describe()}; `maestro worker` runs it"


async def _corpora(settings: Settings) -> list[dict[str, Any]]:
    from ..corpus.corpus import Corpus, list_corpora
    from ..store import store_from_settings

    store = store_from_settings(settings)  # one store for every corpus listed
    out = []
    try:
        for name in await list_corpora(settings, vector_store=store):
            corpus = await Corpus.open(name, settings=settings, vector_store=store, create=False)
            try:
                documents = await corpus.documents()
                last = await corpus.last_ingestion()
            finally:
                await corpus.close()
            out.append(
                {
                    "name": name,
                    "documents": len(documents),
                    "pages": sum(d.pages for d in documents),
                    "chunks": sum(d.chunks for d in documents),
                    "last_at": last[0] if last else None,
                    "last": last[1] if last else None,
                }
            )
    finally:
        await store.close()
    return out


def operations(store: ScheduleStore, settings: Settings, *, corpora: bool = True) -> dict[str, Any]:
    """The worker's queue, schedules, watches (with what they ingested last), triggers and
    corpora."""
    watches = []
    for watch in store.watches():
        seen = store.seen_files(watch.name).values()
        last = max((f.at for f in seen), default=None)
        counts = Counter(f.status for f in seen)
        failed = [f for f in seen if f.status == "failed"]
        watches.append({"watch": watch, "last": last, "counts": dict(counts), "failed": failed})
    listed: list[dict[str, Any]] = []
    corpora_error = None
    if corpora:
        try:
            listed = asyncio.run(_corpora(settings))
        except Exception as exc:  # the page still shows the rest
            corpora_error = f"{type(exc).__name__}: {exc}"
    return {
        "jobs": store.jobs(status=list(QUEUE_STATES), limit=100),
        "schedules": store.schedules(),
        "watches": watches,
        "triggers": store.triggers(),
        "corpora": listed,
        "corpora_error": corpora_error,
    }
