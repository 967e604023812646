"""Command lines that say what a schedule, watch, trigger or submission starts.

``maestro schedule add weekly --cron "0 6 * * 1" -- research "What changed?" --docs ./in``:
everything after ``--`` (or after ``--then`` for ``maestro watch``) is parsed by the very
command it names (``run``, ``research``, ``compare``, ``extract``, ``summarize``), so it is
validated when declared, and turned into a typed job spec: data, never a shell line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import TyperException

from pipelines import schema_from_json
from pipelines.job_types import CompareJob, ExtractJob, ResearchJob, SummarizeJob
from pipelines.jobs import RUNNERS as PIPELINE_RUNNERS

from ..errors import UserError
from ..scheduling import Job, JobRunner, RunJob, default_runners, typed_job
from ._app import app
from ._checks import DECLARING_JOB
from ._schema import load_schema

__all__ = ["JOB_RUNNERS", "ThenCommand", "describe_job", "job_from_args", "job_from_params"]

JOB_RUNNERS: dict[str, JobRunner[Any]] = {**default_runners(), **PIPELINE_RUNNERS}
"""Every kind of job the CLI's worker runs: the core's and the pipelines'."""


def describe_job(job: Job) -> str:
    """The job's one line, as the runner of its kind types it (a stored job is untyped)."""
    return typed_job(job, JOB_RUNNERS).describe()


_WORKER_LEVEL = {
    "model": "The worker's model is used: start it with `maestro worker --model ...`",
    "concurrency": "Set it on the worker: `maestro worker --concurrency N`",
    "resume": "A scheduled extraction always skips the documents already in --out",
    "ray": "The worker decides where jobs run: start it with `maestro worker --ray ADDRESS`",
}
"""Options of the pipeline commands that the worker, not a job, decides."""


def _path(value: str) -> str:
    """An absolute path (the worker runs elsewhere). One that starts with a placeholder
    (``{file}``, absolute when filled in) is kept; a relative one with a placeholder later
    (``reports/{date}``) is made absolute around it."""
    return value if value.startswith("{") else os.path.abspath(os.path.expanduser(value))


def _document(value: str) -> str:
    """A path made absolute when it exists; otherwise a document id or name, kept."""
    exists = "{" not in value and os.path.exists(os.path.expanduser(value))
    return _path(value) if exists else value


def _budget(params: dict[str, Any]) -> Any:
    budget = params["budget"].value
    limits = {
        "max_tokens": params.get("max_tokens"),
        "max_cost_usd": params.get("max_cost"),
        "max_rounds": params.get("max_rounds"),
        "max_requests": params.get("max_requests"),
    }
    if any(v is not None for v in limits.values()):
        from ..budget import Budget

        return Budget.preset(budget, **{k: v for k, v in limits.items() if v is not None})
    return budget


def _run(params: dict[str, Any], given: set[str]) -> Job:
    return RunJob(
        task=params["task"],
        # Left out, the corpus is the watched folder's for jobs a watch starts.
        corpus=params["corpus"] if "corpus" in given else None,
        requirements=list(params["require"]),
        budget=_budget(params),
        cache=not params["no_cache"],
    )


def _research(params: dict[str, Any], given: set[str]) -> Job:
    return ResearchJob(
        question=params["question"],
        docs=[_path(d) for d in params["docs"]],
        corpus=params["corpus"],
        requirements=list(params["require"]),
        default_requirements=params["defaults"],
        budget=params["budget"].value,
        out=_path(str(params["out"])) if params["out"] is not None else None,
        max_sub_questions=params["sub_questions"],
        plan_mode="planner" if params["planner"] else "decompose",
        sub_question_use=params["sub_question_use"].value,
        cache=not params["no_cache"],
    )


def _compare(params: dict[str, Any], given: set[str]) -> Job:
    return CompareJob(
        documents=[_document(d) for d in params["documents"]],
        aspects=list(params["aspect"]),
        task=params["task"],
        corpus=params["corpus"],
        k=params["k"],
        budget=params["budget"].value,
        out=_path(str(params["out"])) if params["out"] is not None else None,
        cache=not params["no_cache"],
    )


def _extract(params: dict[str, Any], given: set[str]) -> Job:
    loaded = load_schema(params["schema"])
    schema = loaded if isinstance(loaded, dict) else loaded.model_json_schema()
    schema_from_json(schema)  # a schema the pipeline cannot use fails now, not at 06:00
    return ExtractJob(
        documents=[_document(d) for d in params["documents"]],
        record_schema=schema,
        out=_path(str(params["out"])),
        formats=[f.strip() for f in params["formats"].split(",") if f.strip()],
        table=params["table"],
        corpus=params["corpus"],
        k=params["k"],
        fields_per_step=params["fields_per_step"],
        budget=params["budget"].value,
        per_item=params["per_item"],
        cache=not params["no_cache"],
    )


def _summarize(params: dict[str, Any], given: set[str]) -> Job:
    return SummarizeJob(
        files=[_path(f) for f in params["files"]],
        corpus=params["corpus"],
        k=params["k"],
        budget=params["budget"].value,
        out=_path(str(params["out"])) if params["out"] is not None else None,
        cache=not params["no_cache"],
    )


_TAKEN: dict[str, set[str]] = {
    "run": {"task", "corpus", "require", "budget", "max_tokens", "max_cost", "max_rounds"}
    | {"max_requests", "no_cache"},
    "research": {"question", "docs", "corpus", "require", "defaults", "budget", "out"}
    | {"sub_questions", "planner", "sub_question_use", "no_cache"},
    "compare": {"documents", "aspect", "task", "corpus", "k", "budget", "out", "no_cache"},
    "extract": {"documents", "schema", "out", "formats", "table", "corpus", "k", "budget"}
    | {"fields_per_step", "per_item", "no_cache"},
    "summarize": {"files", "corpus", "k", "budget", "out", "no_cache"},
}
"""The options each job kind carries; any other option given is refused, never dropped."""

_DISPLAY_ONLY = {"verbose", "as_json"}
"""Options that only change what the foreground command prints: a job has no screen."""

_BUILDERS: dict[str, Callable[[dict[str, Any], set[str]], Job]] = {
    "run": _run,
    "research": _research,
    "compare": _compare,
    "extract": _extract,
    "summarize": _summarize,
}


def job_from_args(args: Sequence[str]) -> Job:
    """The job a command line names, e.g. ``["research", "What changed?", "--docs", "in"]``.

    Raises:
        UserError: No command, an unknown one, arguments its command refuses, or an option
            the worker decides rather than the job.
    """
    kinds = ", ".join(_BUILDERS)
    if not args:
        raise UserError(
            "nothing to start: name a pipeline and its arguments after --",
            hint=f'One of {kinds}; for example: -- research "What changed?" --docs ./inbox',
        )
    name, rest = args[0], list(args[1:])
    if name not in _BUILDERS:
        raise UserError(
            f"{name!r} cannot be scheduled or triggered",
            hint=f"Start one of {kinds}, with the arguments of its own command.",
        )
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    command = group.commands[name]
    try:
        ctx = command.make_context(f"maestro {name}", rest, obj=DECLARING_JOB)
    except TyperException as exc:  # a usage error, worded as the command itself words it
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        raise UserError(f"{name}: {message}", hint=f"See `maestro {name} --help`.") from None
    given = {p for p in ctx.params if getattr(ctx.get_parameter_source(p), "name", "") != "DEFAULT"}
    for option, why in _WORKER_LEVEL.items():
        if option in given:
            raise UserError(f"--{option} cannot be part of a scheduled job", hint=why + ".")
    dropped = sorted(given - _TAKEN[name] - _DISPLAY_ONLY)
    if dropped:
        flags = ", ".join("--" + d.replace("_", "-") for d in dropped)
        raise UserError(
            f"{flags} cannot be part of a scheduled {name} job",
            hint=f"Leave it out, or run `maestro {name} ...` in the foreground.",
        )
    return _BUILDERS[name](ctx.params, given)


def job_from_params(name: str, params: dict[str, Any]) -> Job:
    """The job of a pipeline command's parsed options (``ctx.params``): what a foreground
    command runs is built the way a scheduled one is, so the two never differ."""
    return _BUILDERS[name](params, set(params))


class ThenCommand(TyperCommand):
    """A command whose arguments after ``--then`` say what it starts (kept unparsed in
    ``ctx.meta["then"]``)."""

    # The context is typer's vendored click Context, which typer does not export.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--then" in args:
            at = args.index("--then")
            ctx.meta["then"] = args[at + 1 :]
            args = args[:at]
        return super().parse_args(ctx, args)
