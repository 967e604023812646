"""What the worker starts: jobs (a kind and its parameters), their inputs, outcomes, runners.

A schedule, a watched folder or a completion trigger starts a *job*: data that names a
kind (the core's ``run``, or a pipeline's, such as ``research``) and its parameters, never
a shell command. The runner registered for a kind checks its parameters and runs it. A
job's text fields may hold placeholders that are filled in when the job is queued, from
what started it:

==============  ====================================================================
``{name}``      the schedule, watch, trigger or submission that started the job
``{fired_at}``  when the schedule was due (ISO 8601, in the schedule's time zone)
``{date}``      that day (``2026-03-30``)
``{file}``      the file a watched folder ingested (one job per file)
``{files}``     the files of the batch, one per line; as a whole list item, one item each
``{corpus}``    the watched folder's corpus
``{job_id}``    the job that finished (completion triggers)
``{run_id}``    its last run
``{status}``    its status: ``passed``, ``unmet`` or ``failed``
``{output}``    its output (the answer, the report, the extraction summary)
==============  ====================================================================

Write ``{{`` and ``}}`` for literal braces. A placeholder the source cannot fill is refused
when the schedule, watch or trigger is declared.

Example::

    job = RunJob(task="Summarise {file} in three bullet points", corpus="inbox")
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, TypeAdapter, ValidationError

from ..budget import Budget, BudgetPreset
from ..embeddings.base import Embedder
from ..errors import UserError
from ..orchestrator import CorpusStore, EventHandler, Maestro
from ..result import RunResult
from ..settings import Settings

__all__ = [
    "JOB_ADAPTER",
    "Job",
    "JobContext",
    "JobInputs",
    "JobOutcome",
    "JobRecord",
    "JobRunner",
    "JobSource",
    "JobSpec",
    "JobStatus",
    "PreviousJob",
    "RunJob",
    "check_name",
    "check_placeholders",
    "render_job",
    "run_job",
    "typed_job",
]

DEFAULT_CORPUS = "default"

J = TypeVar("J", bound="Job")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(name: str, what: str) -> str:
    """``name`` if it can name a schedule, watch, trigger or submission.

    Raises:
        UserError: It cannot.
    """
    if not _NAME.fullmatch(name):
        raise UserError(
            f"invalid {what} name {name!r}",
            hint="Use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    return name


JobSource = Literal["schedule", "watch", "trigger", "manual"]
"""What queued a job: a cron schedule, a watched folder, a completion trigger, or a direct
submission."""


class Job(BaseModel):
    """A job: a kind and its parameters, as data.

    The core knows one kind of its own (:class:`RunJob`); any other kind is a job of a
    pipeline built on this library, whose parameters the runner registered for that kind
    checks (:class:`JobRunner`). A job read back from a store is a plain :class:`Job` with
    its parameters as extra fields until a runner types it (:func:`typed_job`); a typed
    job's subclass fixes ``kind`` and forbids unknown parameters.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    kind: str
    """Which runner runs it (``run``, or a pipeline's kind such as ``research``)."""
    cache: bool = True
    """Answer identical model calls from the worker's response cache."""

    @property
    def params(self) -> dict[str, Any]:
        """The parameters: every field but ``kind``."""
        return {k: v for k, v in self.model_dump().items() if k != "kind"}

    def describe(self) -> str:
        """One line for lists and status lines (a typed job says more)."""
        return f"{self.kind} job"

    # A job is its kind and parameters: typed or read back from a store, it is the same job.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Job):
            return NotImplemented
        return self.model_dump(mode="json") == other.model_dump(mode="json")

    def __hash__(self) -> int:
        return hash(self.model_dump_json())


class RunJob(Job):
    """``Maestro.run``: plan, execute and validate a task over a corpus."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["run"] = "run"
    task: str
    corpus: str | None = None
    """``None``: the watched folder's corpus for jobs a watch starts, else ``default``."""
    requirements: list[str] = Field(default_factory=list)
    budget: BudgetPreset | Budget = "medium"

    def describe(self) -> str:
        return f"run {self.task!r}"


JobSpec: TypeAlias = SerializeAsAny[Job]
"""A field holding any job: a typed one is kept as given and stored with all its
parameters; one read back is a plain :class:`Job`."""

JOB_ADAPTER: TypeAdapter[Job] = TypeAdapter(JobSpec)
"""Serialises and parses any job spec."""


class JobOutcome(BaseModel):
    """What a finished job produced: what a completion trigger passes on."""

    model_config = ConfigDict(frozen=True)

    status: Literal["passed", "unmet", "failed"]
    """``passed``: every requirement met; ``unmet``: an answer, some requirement unmet;
    ``failed``: no usable result (or an error)."""
    run_ids: list[str] = Field(default_factory=list)
    """The runs of the job, in order (``maestro runs show RUN_ID``)."""
    output: str = ""
    """The answer, report or summary as text."""
    data: dict[str, Any] | None = None
    """The output as data, when the job produced a typed output."""
    files: list[str] = Field(default_factory=list)
    """Files the job wrote."""
    error: str | None = None

    @property
    def run_id(self) -> str | None:
        """The job's last run."""
        return self.run_ids[-1] if self.run_ids else None

    @classmethod
    def of(cls, result: RunResult, *, files: Sequence[str] = ()) -> JobOutcome:
        """The outcome of a job that was one run."""
        output: Any = result.output
        data = output.model_dump(mode="json") if isinstance(output, BaseModel) else None
        return cls(
            status=result.status,
            run_ids=[result.run_id],
            output=result.output_text,
            data=data,
            files=list(files),
            error=result.error,
        )


class PreviousJob(BaseModel):
    """The finished job a completion trigger follows."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    name: str
    outcome: JobOutcome


class JobInputs(BaseModel):
    """What started a job, and what it was given (the values of its placeholders)."""

    model_config = ConfigDict(frozen=True)

    source: JobSource
    name: str
    """The schedule, watch, trigger or submission."""
    fired_at: datetime | None = None
    """When the schedule was due, in its time zone."""
    file: str | None = None
    files: list[str] = Field(default_factory=list)
    corpus: str | None = None
    previous: PreviousJob | None = None
    """The job whose completion started this one."""

    def values(self) -> dict[str, str | list[str] | None]:
        """Placeholder values (``None``: this job has no value for it)."""
        prev = self.previous
        return {
            "name": self.name,
            "fired_at": self.fired_at.isoformat() if self.fired_at else None,
            "date": self.fired_at.date().isoformat() if self.fired_at else None,
            "file": self.file,
            "files": list(self.files) if self.files else None,
            "corpus": self.corpus,
            "job_id": prev.job_id if prev else None,
            "run_id": prev.outcome.run_id if prev else None,
            "status": prev.outcome.status if prev else None,
            "output": prev.outcome.output if prev else None,
        }


_ALLOWED: dict[str, frozenset[str]] = {
    "schedule": frozenset({"name", "fired_at", "date"}),
    "watch": frozenset({"name", "file", "files", "corpus"}),
    "manual": frozenset({"name"}),
    # What a trigger can use depends on what starts its upstream job; a missing value
    # fails that job with a message naming the placeholder.
    "trigger": frozenset(
        {
            "name",
            "fired_at",
            "date",
            "file",
            "files",
            "corpus",
            "job_id",
            "run_id",
            "status",
            "output",
        }
    ),
}
PLACEHOLDERS: frozenset[str] = _ALLOWED["trigger"]
"""Every placeholder name."""

_PATTERN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def _texts(job: Job) -> dict[str, str | list[str]]:
    """The job's text fields (the ones placeholders may appear in)."""
    out: dict[str, str | list[str]] = {}
    for key, value in job.model_dump().items():
        if isinstance(value, str) and key != "kind":
            out[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = value
    return out


def _names(text: str) -> list[str]:
    return [m.group(1) for m in _PATTERN.finditer(text) if m.group(1) is not None]


def check_placeholders(
    job: Job, source: JobSource, *, allowed: Sequence[str] | None = None
) -> None:
    """Refuse placeholders ``source`` cannot fill (``allowed`` narrows them further).

    Raises:
        UserError: An unknown placeholder, or one this source has no value for.
    """
    permitted = _ALLOWED[source] if allowed is None else frozenset(allowed) & _ALLOWED[source]
    for key, value in _texts(job).items():
        for text in [value] if isinstance(value, str) else value:
            for name in _names(text):
                if name not in PLACEHOLDERS:
                    raise UserError(
                        f"unknown placeholder {{{name}}} in the job's {key}",
                        hint=f"Use one of {{{'}, {'.join(sorted(PLACEHOLDERS))}}}, or write "
                        "{{ and }} for literal braces.",
                    )
                if name not in permitted:
                    raise UserError(
                        f"placeholder {{{name}}} in the job's {key} has no value for a job a "
                        f"{source} starts",
                        hint=f"A {source} fills {{{'}, {'.join(sorted(permitted))}}}.",
                    )


def _fill(text: str, values: Mapping[str, str | list[str] | None], key: str) -> str:
    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        value = values.get(match.group(1))
        if value is None:
            raise UserError(
                f"placeholder {token} in the job's {key} has no value for this job",
                hint="Only use placeholders that what starts the job can fill "
                "(see maestro_lite.scheduling.jobs).",
            )
        return "\n".join(value) if isinstance(value, list) else value

    return _PATTERN.sub(one, text)


def render_job(job: J, inputs: JobInputs) -> J:
    """``job`` with its placeholders filled from ``inputs``. In a list field, an item that
    is exactly ``{files}`` becomes one item per file.

    Raises:
        UserError: A placeholder has no value for these inputs.
    """
    values = inputs.values()
    update: dict[str, Any] = {}
    for key, value in _texts(job).items():
        if isinstance(value, str):
            update[key] = _fill(value, values, key)
            continue
        items: list[str] = []
        for item in value:
            if item == "{files}" and values["files"] is not None:
                items.extend(values["files"])
            else:
                items.append(_fill(item, values, key))
        update[key] = items
    return type(job).model_validate({**job.model_dump(), **update})


@dataclass
class JobContext:
    """What a runner gets besides the job: the orchestrator to run it with, and where
    corpora live."""

    job_id: str
    inputs: JobInputs
    maestro: Maestro
    """Its runs are recorded under the job, and resumed from their checkpoints when the
    job continues after a restart."""
    settings: Settings
    corpora: CorpusStore
    """Existing corpora by name (kept open by the worker)."""
    embedder: Embedder | None = None
    """The embedder for corpora a job creates (the settings' one when ``None``)."""
    on_event: EventHandler | None = None

    def corpus_name(self, given: str | None) -> str:
        """The corpus a job means: its own, else its watch's, else ``default``."""
        return given or self.inputs.corpus or DEFAULT_CORPUS


JobStatus = Literal["pending", "running", "interrupted", "passed", "unmet", "failed"]
"""``pending``: queued; ``running``: a worker has it; ``interrupted``: its worker stopped
(its runs are checkpointed) and the next worker continues it; the rest: finished."""

FINISHED_JOBS: frozenset[str] = frozenset({"passed", "unmet", "failed"})


def new_job_id() -> str:
    """A fresh job id."""
    return uuid.uuid4().hex[:12]


class JobRecord(BaseModel):
    """One job in the worker's durable queue."""

    model_config = ConfigDict(frozen=True)

    job_id: str = Field(default_factory=new_job_id)
    name: str
    """The schedule, watch, trigger or submission that queued it (triggers follow it)."""
    source: JobSource
    spec: JobSpec
    """The job, its placeholders filled."""
    inputs: JobInputs
    status: JobStatus = "pending"
    run_ids: list[str] = Field(default_factory=list)
    """Runs started for it so far, in order."""
    outcome: JobOutcome | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    owner: str | None = None
    """``host:pid`` of the worker running it."""

    @classmethod
    def queue(cls, template: Job, inputs: JobInputs) -> JobRecord:
        """A pending job for ``template`` filled from ``inputs``; a job whose placeholders
        cannot be filled is recorded failed, with the reason."""
        try:
            spec = render_job(template, inputs)
        except UserError as exc:
            outcome = JobOutcome(status="failed", error=str(exc))
            return cls(
                name=inputs.name,
                source=inputs.source,
                spec=template,
                inputs=inputs,
                status="failed",
                outcome=outcome,
                error=str(exc),
            )
        return cls(name=inputs.name, source=inputs.source, spec=spec, inputs=inputs)

    @classmethod
    def submission(cls, job: Job, *, name: str) -> JobRecord:
        """A job submitted directly under ``name`` (its completion triggers follow it).

        Raises:
            UserError: A bad name, or a placeholder a submission cannot fill.
        """
        check_name(name, "job")
        check_placeholders(job, "manual")
        return cls.queue(job, JobInputs(source="manual", name=name))


class JobRunner(Generic[J]):
    """Runs one kind of job: checks a job's parameters against ``params`` and hands the
    typed job to ``run`` (``async def run(job, context) -> JobOutcome``).

    ``run`` raises to fail the job (the worker records the error); it must let
    cancellation through, so a worker that stops leaves its runs checkpointed.

    Example::

        RUNNERS = {"research": JobRunner(ResearchJob, run_research)}
        Worker(model, runners={**default_runners(), **RUNNERS})
    """

    def __init__(
        self, params: type[J], run: Callable[[J, JobContext], Awaitable[JobOutcome]]
    ) -> None:
        self.params = params
        self.run = run

    def validate(self, job: Job) -> J:
        """``job`` as its typed job.

        Raises:
            UserError: Its parameters are not this kind's.
        """
        if isinstance(job, self.params):
            return job
        try:
            return self.params.model_validate(job.model_dump())
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'job'}: {e['msg']}" for e in exc.errors()
            )
            raise UserError(
                f"invalid {job.kind} job: {problems}",
                hint=f"See the parameters of {self.params.__name__}.",
            ) from None

    async def __call__(self, job: Job, context: JobContext) -> JobOutcome:
        return await self.run(self.validate(job), context)


def typed_job(job: Job, runners: Mapping[str, JobRunner[Any]]) -> Job:
    """``job`` typed by the runner of its kind; as it is when none is registered or its
    parameters do not fit (running it then fails with the reason)."""
    runner = runners.get(job.kind)
    if runner is None:
        return job
    try:
        typed: Job = runner.validate(job)
    except UserError:
        return job
    return typed


async def run_job(job: RunJob, context: JobContext) -> JobOutcome:
    """The runner of :class:`RunJob`."""
    result = await context.maestro.run(
        job.task,
        corpus=context.corpus_name(job.corpus),
        requirements=job.requirements,
        budget=job.budget,
        on_event=context.on_event,
        cache=job.cache,
    )
    return JobOutcome.of(result)
