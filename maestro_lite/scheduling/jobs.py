"""What the worker starts: typed job specs, their inputs and outcomes, and the runners.

A schedule, a watched folder or a completion trigger starts a *job*: data that names a
pipeline (``run``, ``research``, ``compare``, ``extract``) and its arguments, never a shell
command. A job's text fields may hold placeholders that are filled in when the job is
queued, from what started it:

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
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..budget import Budget, BudgetPreset
from ..embeddings.base import Embedder
from ..errors import UserError
from ..orchestrator import CorpusStore, EventHandler, Maestro
from ..result import RunResult
from ..settings import Settings

__all__ = [
    "JOB_ADAPTER",
    "CompareJob",
    "ExtractJob",
    "JobContext",
    "JobInputs",
    "JobOutcome",
    "JobRecord",
    "JobRunner",
    "JobSource",
    "JobSpec",
    "JobStatus",
    "PreviousJob",
    "ResearchJob",
    "RunJob",
    "SummarizeJob",
    "check_name",
    "check_placeholders",
    "render_job",
    "run_job",
]

DEFAULT_CORPUS = "default"

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


class _Job(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cache: bool = True
    """Answer identical model calls from the worker's response cache."""

    def describe(self) -> str:
        """One line for lists and status lines."""
        raise NotImplementedError


class RunJob(_Job):
    """``Maestro.run``: plan, execute and validate a task over a corpus."""

    kind: Literal["run"] = "run"
    task: str
    corpus: str | None = None
    """``None``: the watched folder's corpus for jobs a watch starts, else ``default``."""
    requirements: list[str] = Field(default_factory=list)
    budget: BudgetPreset | Budget = "medium"

    def describe(self) -> str:
        return f"run {self.task!r}"


class ResearchJob(_Job):
    """The research pipeline: a cited report answering a (multi-part) question."""

    kind: Literal["research"] = "research"
    question: str
    docs: list[str] = Field(default_factory=list)
    """Files or folders to ingest first (unchanged files cost one hash)."""
    corpus: str | None = None
    requirements: list[str] = Field(default_factory=list)
    default_requirements: bool = True
    """Every claim cited, every part addressed, contradictions called out."""
    budget: BudgetPreset = "low"
    out: str | None = None
    """Folder for ``research.md`` and ``research.json``."""
    max_sub_questions: int = Field(default=3, ge=1, le=3)
    """Most sub-questions (1: answer in one step)."""
    plan_mode: Literal["decompose", "planner"] = "decompose"
    sub_question_use: Literal["steps", "queries", "hops"] = "steps"
    """Answer each sub-question in a step, only search with them, or search with the entity
    each hop names (see ``Research``)."""

    def describe(self) -> str:
        return f"research {self.question!r}"


class CompareJob(_Job):
    """The comparison pipeline: documents compared aspect by aspect, with citations."""

    kind: Literal["compare"] = "compare"
    documents: list[str]
    """Files or folders (ingested), or ids, paths or file names of documents in ``corpus``."""
    aspects: list[str] = Field(default_factory=list)
    task: str | None = None
    corpus: str | None = None
    k: int = Field(default=3, ge=1)
    budget: BudgetPreset = "low"
    out: str | None = None

    def describe(self) -> str:
        return f"compare {', '.join(self.documents)}"


class ExtractJob(_Job):
    """The extraction pipeline: one validated record per document."""

    kind: Literal["extract"] = "extract"
    documents: list[str]
    record_schema: dict[str, Any]
    """The JSON schema of one record (stored as data, so a schedule needs no Python code)."""
    out: str
    formats: list[str] = Field(default_factory=lambda: ["jsonl", "csv", "sqlite"])
    table: str = "records"
    corpus: str | None = None
    k: int = Field(default=2, ge=1)
    fields_per_step: int | None = None
    concurrency: int = Field(default=2, ge=1)
    budget: BudgetPreset = "low"
    per_item: bool = False
    """A record per item of the schema found in each document, not one per document."""

    def describe(self) -> str:
        title = self.record_schema.get("title", "records")
        return f"extract {title} from {', '.join(self.documents)}"


class SummarizeJob(_Job):
    """The summary pipeline: each earnings call a cited bullet summary, by section."""

    kind: Literal["summarize"] = "summarize"
    files: list[str]
    """Transcripts to ingest and summarize, each in a run of its own."""
    corpus: str | None = None
    k: int = Field(default=3, ge=1)
    """Chunks read per section query."""
    budget: BudgetPreset = "low"
    out: str | None = None
    """Folder for ``summary.md`` and ``summary.json`` (a subfolder per file when several)."""

    def describe(self) -> str:
        return f"summarize {', '.join(self.files)}"


JobSpec: TypeAlias = Annotated[
    RunJob | ResearchJob | CompareJob | ExtractJob | SummarizeJob, Field(discriminator="kind")
]

JOB_ADAPTER: TypeAdapter[JobSpec] = TypeAdapter(JobSpec)
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


def _texts(job: JobSpec) -> dict[str, str | list[str]]:
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
    job: JobSpec, source: JobSource, *, allowed: Sequence[str] | None = None
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


def render_job(job: JobSpec, inputs: JobInputs) -> JobSpec:
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
    return JOB_ADAPTER.validate_python({**job.model_dump(), **update})


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
    def queue(cls, template: JobSpec, inputs: JobInputs) -> JobRecord:
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
    def submission(cls, job: JobSpec, *, name: str) -> JobRecord:
        """A job submitted directly under ``name`` (its completion triggers follow it).

        Raises:
            UserError: A bad name, or a placeholder a submission cannot fill.
        """
        check_name(name, "job")
        check_placeholders(job, "manual")
        return cls.queue(job, JobInputs(source="manual", name=name))


JobRunner: TypeAlias = Callable[[Any, JobContext], Awaitable[JobOutcome]]
"""Runs one kind of job: ``async def runner(job, context) -> JobOutcome``. A runner raises
to fail the job (the worker records the error); it must let cancellation through, so a
worker that stops leaves its runs checkpointed."""


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
