"""``maestro worker`` (schedules, watches and jobs in one long-lived process) and
``maestro jobs list|show|submit`` (the worker's queue)."""

from __future__ import annotations

import asyncio
import signal
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import UserError
from ..events import Event
from ..limits import Limiter, ProviderLimits
from ..scheduling import (
    FilesDeleted,
    FilesIngested,
    JobFinished,
    JobQueued,
    JobRecord,
    JobStarted,
    JobStopped,
    ScheduleFired,
    ScheduleSkipped,
    WatchFailed,
    WatchStarted,
    Worker,
    WorkerEvent,
    WorkerStarted,
    WorkerStopped,
    WorkerStopping,
)
from ..scheduling.execute import JobExecutor
from ..scheduling.metrics import WorkerMetrics, start_metrics_server
from ..settings import Settings
from ..shared_limits import gates_for
from ._app import MaestroGroup, app
from ._checks import positive
from ._cluster import RAY, ray_session
from ._common import console, err_console, fan_out, load_settings, open_model, shown, traced
from ._jobargs import JOB_RUNNERS, describe_job, job_from_args
from .render import EventPrinter
from .schedule import open_schedules, print_rows, when

jobs_app = typer.Typer(help="The worker's job queue.", no_args_is_help=True, cls=MaestroGroup)
app.add_typer(jobs_app, name="jobs")

_STYLE = {"passed": "green", "unmet": "yellow", "failed": "red", "interrupted": "magenta"}


def _names(paths: list[str], most: int = 5) -> str:
    """File names for a status line; a burst of hundreds is summed up after a few."""
    names = ", ".join(shown(Path(p).name) for p in paths[:most])
    return names + (f" and {len(paths) - most} more" if len(paths) > most else "")


class WorkerPrinter:
    """One status line per worker event (on stderr); run events too with ``verbose``."""

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self.console = console
        self.runs = EventPrinter(console, verbose=True) if verbose else None

    def __call__(self, event: WorkerEvent | Event) -> None:
        line = self.line(event)
        if line is None and self.runs is not None:
            run_line = self.runs.line(event)  # type: ignore[arg-type]
            line = f"[dim]{event.run_id}[/] {run_line}" if run_line else None  # type: ignore[union-attr]
        if line:
            self.console.print(line, highlight=False, soft_wrap=True)

    def line(self, event: WorkerEvent | Event) -> str | None:
        """The line for a worker event (``None`` for run events)."""
        match event:
            case WorkerStarted():
                n = len(event.resumed)
                left = f"; continuing {n} unfinished job(s)" if n else ""
                return (
                    f"[bold]worker started[/]: {len(event.schedules)} schedule(s), "
                    f"{len(event.watches)} watch(es), {len(event.triggers)} trigger(s){left}"
                )
            case WorkerStopping():
                return (
                    f"[bold]stopping[/]: no new job or model call; {event.in_flight} call(s) in "
                    f"flight get up to {event.grace:g}s to finish (signal again to stop now)"
                )
            case WorkerStopped():
                left = (
                    f"; {len(event.interrupted)} job(s) checkpointed, continued at the next start"
                    if event.interrupted
                    else ""
                )
                return f"[bold]worker stopped[/]{left}"
            case ScheduleFired():
                late = " [yellow](missed while no worker ran)[/]" if event.late else ""
                folded = f", {event.missed} earlier time(s) folded in" if event.missed else ""
                return (
                    f"[cyan]schedule {escape(event.schedule)}[/] fired for "
                    f"{event.due.strftime('%Y-%m-%d %H:%M %Z')} -> job {event.job_id}{late}{folded}"
                )
            case ScheduleSkipped():
                return (
                    f"[yellow]schedule {escape(event.schedule)}[/] skipped {event.missed} time(s) "
                    f"missed while no worker ran; next {when(event.next_due)}"
                )
            case WatchStarted():
                waiting = f"; {event.waiting} file(s) new or changed" if event.waiting else ""
                return (
                    f"[cyan]watching[/] {escape(event.directory)} into corpus "
                    f"{escape(event.corpus)}{waiting}"
                )
            case WatchFailed():
                return f"[red]watch {escape(event.watch)} failed[/]: {escape(event.error)}"
            case FilesIngested():
                parts = [
                    f"{label} {_names(paths)}"
                    for label, paths in (
                        ("ingested", event.ingested),
                        ("updated", event.updated),
                        ("unchanged", event.unchanged),
                        ("no text in", event.no_text),
                    )
                    if paths
                ]
                parts += [
                    f"[red]failed {shown(Path(f.path).name)}[/] ({f.reason}: {shown(f.detail)})"
                    for f in event.failed
                ]
                jobs = f" -> {len(event.jobs)} job(s)" if event.jobs else ""
                return f"[cyan]watch {escape(event.watch)}[/]: {'; '.join(parts)}{jobs}"
            case FilesDeleted():
                removed = f", {len(event.removed)} document(s) removed" if event.removed else ""
                fate = (
                    f"taken off the corpus{removed}"
                    if event.pruned
                    else "still in the corpus (watch with --prune to take them off)"
                )
                return (
                    f"[yellow]watch {escape(event.watch)}[/]: deleted {_names(event.paths)}; {fate}"
                )
            case JobQueued():
                after = f" after job {event.after}" if event.after else ""
                return f"job {event.job_id} queued{after}: {escape(event.description)}"
            case JobStarted():
                resumed = " (continuing its runs)" if event.resumed else ""
                return f"job {event.job_id} started: {escape(event.description)}{resumed}"
            case JobFinished():
                colour = _STYLE.get(event.status, "white")
                runs = f" (runs {', '.join(event.run_ids)})" if event.run_ids else ""
                error = f": {escape(event.error)}" if event.error else ""
                return (
                    f"[{colour}]job {event.job_id} {event.status}[/] in {event.seconds:.1f}s"
                    f"{runs}{error}"
                )
            case JobStopped():
                return f"[magenta]job {event.job_id} stopped[/]; checkpointed, continues later"
        return None


def worker_limiter(
    settings: Settings, *, max_calls: int | None = None, rpm: float | None = None
) -> Limiter:
    """The limits a worker shares between its jobs: the options when given, else the
    settings', and at most 8 calls in flight per provider when neither says. They hold
    together with every other process on the same home (workers, CLI runs)."""
    return Limiter(
        default=ProviderLimits(
            max_concurrent=max_calls or settings.max_concurrent or 8,
            requests_per_minute=rpm if rpm is not None else settings.requests_per_minute,
            tokens_per_minute=settings.tokens_per_minute,
        ),
        shared=gates_for(settings),
    )


def serve(
    settings: Settings,
    *,
    schedules: bool = True,
    watches: list[str] | None = None,
    max_jobs: int = 2,
    concurrency: int = 4,
    max_calls: int | None = None,
    rpm: float | None = None,
    settle: float = 2.0,
    grace: float | None = None,
    verbose: bool = False,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    ray_address: str | None = None,
) -> None:
    """Run a worker until SIGTERM or Ctrl-C, printing its events. Stopping lets model calls
    in flight finish within ``grace`` seconds (``MAESTRO_STOP_GRACE`` when ``None``); a second
    signal stops at once. With ``metrics_port``, serve Prometheus metrics at
    ``http://metrics_host:metrics_port/metrics``.

    Provider limits: ``max_calls`` and ``rpm`` when given, else the settings'
    (``MAESTRO_MAX_CONCURRENT``, ``MAESTRO_REQUESTS_PER_MINUTE``, ``MAESTRO_TOKENS_PER_MINUTE``),
    and at most 8 calls in flight when neither says.

    With ``ray_address`` (else ``MAESTRO_RAY_ADDRESS``), the jobs run as Ray tasks on that
    cluster, within the same limits; the queue, schedules and watches stay here.
    """
    chat = open_model(settings)
    limiter = worker_limiter(settings, max_calls=max_calls, rpm=rpm)

    metrics = WorkerMetrics(limiter=limiter)

    async def go() -> None:
        worker = Worker(
            chat,
            settings=settings,
            runners=JOB_RUNNERS,
            limiter=limiter,
            max_jobs=max_jobs,
            concurrency=concurrency,
            schedules=schedules,
            watches=watches,
            settle=settle,
            grace=settings.stop_grace if grace is None else grace,
            on_event=traced(fan_out(WorkerPrinter(err_console, verbose=verbose), metrics)),
            executor=_ray_executor(address, settings, limiter, concurrency=concurrency),
        )
        metrics.job_counts = getattr(worker.store, "job_counts", None)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        server = None
        if metrics_port is not None:
            server = await start_metrics_server(metrics, host=metrics_host, port=metrics_port)
            bound = server.sockets[0].getsockname()[1]
            err_console.print(f"metrics at http://{metrics_host}:{bound}/metrics", highlight=False)
        try:
            await worker.run()
        finally:
            if server is not None:
                server.close()
                await server.wait_closed()

    with ray_session(ray_address, settings, "running jobs") as address:
        asyncio.run(go())


def _ray_executor(
    address: str | None, settings: Settings, limiter: Limiter, *, concurrency: int
) -> JobExecutor | None:
    """The Ray executor of the worker's jobs (``None``: they run in this process). Its
    tasks get the settings with the worker's limits written in, so a job's calls on any
    node count against the same limits as here."""
    if address is None:
        return None
    from ..cluster import RayJobExecutor

    limits = limiter.default
    node_settings = settings.model_copy(
        update={
            "max_concurrent": limits.max_concurrent,
            "requests_per_minute": limits.requests_per_minute,
            "tokens_per_minute": limits.tokens_per_minute,
        }
    )
    return RayJobExecutor(
        address, settings=node_settings, runners=JOB_RUNNERS, concurrency=concurrency
    )


@app.command("worker")
def worker_command(
    model: str | None = typer.Option(None, "--model", "-m", help="provider:model to use."),
    max_jobs: int = typer.Option(2, "--max-jobs", help="Jobs run at once.", min=1),
    concurrency: int = typer.Option(4, "--concurrency", help="Steps in flight per run.", min=1),
    max_calls: int | None = typer.Option(
        None,
        "--max-calls",
        help="Model calls in flight at once, per provider, over all jobs "
        "(default: MAESTRO_MAX_CONCURRENT, else 8).",
        min=1,
    ),
    rpm: float | None = typer.Option(
        None,
        "--rpm",
        help="Requests per minute per provider (default: MAESTRO_REQUESTS_PER_MINUTE).",
        callback=positive,
    ),
    settle: float = typer.Option(
        2.0,
        "--settle",
        help="Seconds a watched file must stay unchanged before it is read.",
        min=0.0,
    ),
    grace: float | None = typer.Option(
        None,
        "--grace",
        help="Seconds model calls in flight get to finish after SIGTERM (default: "
        "MAESTRO_STOP_GRACE, else 30).",
        min=0.0,
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print every run event."),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        help="Serve Prometheus metrics at /metrics on this port (0: any free one).",
        min=0,
        max=65535,
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1", "--metrics-host", help="Address of the metrics endpoint (loopback)."
    ),
    ray: str | None = RAY,
) -> None:
    """Run schedules, watched folders and queued jobs until stopped (SIGTERM, Ctrl-C).

    On the first signal it takes no new job and starts no new model call, lets the calls in
    flight finish within --grace seconds, checkpoints its jobs and exits 0; a second signal
    stops at once. Checkpointed jobs continue at the next start, without repeating finished
    steps or paying again for answered calls.
    """
    if metrics_host != "127.0.0.1" and metrics_port is None:
        raise UserError("--metrics-host needs --metrics-port")
    serve(
        load_settings(model),
        max_jobs=max_jobs,
        concurrency=concurrency,
        max_calls=max_calls,
        rpm=rpm,
        settle=settle,
        grace=grace,
        verbose=verbose,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        ray_address=ray,
    )


class JobStatusName(StrEnum):
    pending = "pending"
    running = "running"
    interrupted = "interrupted"
    passed = "passed"
    unmet = "unmet"
    failed = "failed"


@jobs_app.command("list")
def list_jobs(
    limit: int = typer.Option(20, "--limit", "-n", help="How many, newest first.", min=1),
    status: JobStatusName | None = typer.Option(None, "--status", help="Only this status."),
) -> None:
    """The jobs schedules, watches, triggers and submissions queued."""
    with open_schedules() as store:
        jobs = store.jobs(status=[status.value] if status else None, limit=limit)
    print_rows(
        ("job", "status", "from", "job spec", "queued", "runs"),
        (
            (
                job.job_id,
                f"[{_STYLE.get(job.status, 'cyan')}]{job.status}[/]",
                f"{job.source} {escape(job.name)}",
                escape(describe_job(job.spec)),
                when(job.created_at),
                ", ".join(job.run_ids),
            )
            for job in jobs
        ),
        empty="no jobs yet",
    )


@jobs_app.command("show")
def show_job(job_id: str = typer.Argument(..., help="The job id.")) -> None:
    """One job as JSON: what it ran, what started it, and its outcome."""
    with open_schedules() as store:
        typer.echo(store.job(job_id).model_dump_json(indent=2))


@jobs_app.command("submit")
def submit_job(
    name: str = typer.Argument(..., help="A name for it (triggers after NAME follow it)."),
    job: list[str] = typer.Argument(..., help="After --: the pipeline and its arguments."),
) -> None:
    """Queue a pipeline for the worker now.

    Example: maestro jobs submit nightly -- run "What changed?" --corpus contracts
    """
    spec = job_from_args(job)
    with open_schedules() as store:
        record = store.submit(JobRecord.submission(spec, name=name))
    console.print(
        f"queued job {record.job_id}: {escape(describe_job(spec))}; `maestro worker` runs it"
    )
