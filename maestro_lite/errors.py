"""The exceptions maestro-lite raises.

Everything derives from :class:`MaestroError`. Misuse (a bad argument, a missing setting)
derives from :class:`UserError`; its message says what was wrong and how to fix it. Run-time
failures carry structured fields a caller can act on (``status_code``, ``retry_after``,
``usage``...) and say whether retrying could help through :attr:`MaestroError.is_retryable`.

Every error renders as one actionable line on the CLI: ``str(error)`` says what happened and
``error.hint`` (when set) says what to do about it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

# Type-only: usage.py raises these errors: importing it back is a cycle.
if TYPE_CHECKING:
    from .usage import Usage

__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "CorpusNotFound",
    "DocumentError",
    "EmbeddingMismatch",
    "EmptyCorpus",
    "MaestroError",
    "ModelAPIError",
    "ModelAuthError",
    "ModelConnectionError",
    "ModelError",
    "ModelIntegrityError",
    "ModelNotAvailable",
    "ModelTimeout",
    "ModelUnreachable",
    "PlanError",
    "RequirementsNotMet",
    "RunCancelled",
    "RunInterruptedError",
    "RunNotFound",
    "StoreError",
    "StructuredOutputError",
    "UserError",
    "interrupts_run",
]


class MaestroError(Exception):
    """Root of every error raised by maestro-lite.

    Args:
        message: What happened, in one sentence.
        hint: What the user can do about it, in one sentence (optional).
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    @property
    def is_retryable(self) -> bool:
        """Whether trying the same thing again may succeed."""
        return False

    def __str__(self) -> str:
        return self.message


class UserError(MaestroError):
    """The library was used in a way that cannot work; the message says how to fix it."""


class ConfigError(UserError):
    """A setting is missing or invalid (an API key, a path, a model name)."""


class ModelError(MaestroError):
    """A problem with a language model: not available, unreachable, or misbehaving."""

    def __init__(self, message: str, *, model: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.model = model


class ModelNotAvailable(ModelError):
    """A local model file is not present and could not be pulled."""


class ModelIntegrityError(ModelError):
    """A model file does not match its pinned size or sha256; it is never loaded."""


class ModelAPIError(ModelError):
    """A model endpoint answered with an error or did not answer.

    Attributes:
        status_code: The HTTP status, or ``None`` when no response arrived.
        retry_after: Seconds the server asked us to wait (``Retry-After``), if any.
        body: The error body the server sent, truncated.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        status_code: int | None = None,
        retry_after: float | None = None,
        body: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, model=model, hint=hint)
        self.status_code = status_code
        self.retry_after = retry_after
        self.body = body

    @property
    def is_retryable(self) -> bool:
        # 408 request timeout, 409 conflict, 429 rate limited, 5xx server faults.
        if self.status_code is None:
            return True
        return self.status_code in (408, 409, 429) or self.status_code >= 500


class ModelAuthError(ModelAPIError):
    """The endpoint rejected our credentials (401/403). Retrying will not help."""

    @property
    def is_retryable(self) -> bool:
        return False


class ModelTimeout(ModelAPIError):
    """A model call took longer than its timeout."""

    @property
    def is_retryable(self) -> bool:
        return True


class ModelConnectionError(ModelAPIError):
    """The endpoint could not be reached or dropped the connection."""

    @property
    def is_retryable(self) -> bool:
        return True


class ModelUnreachable(ModelConnectionError):
    """The endpoint could not be reached at all (connection refused, DNS failure, connect
    timeout): nothing was sent, so the provider neither saw nor billed the request. Such an
    attempt is recorded but does not spend the request budget."""


class StructuredOutputError(ModelError):
    """The model's output did not satisfy the requested schema, even after re-asking.

    Attributes:
        schema_name: The name of the output type.
        attempts: How many answers were tried.
        last_output: The last raw text the model produced (truncated).
        errors: The validation errors of the last attempt.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        schema_name: str,
        attempts: int,
        last_output: str,
        errors: str,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, model=model, hint=hint)
        self.schema_name = schema_name
        self.attempts = attempts
        self.last_output = last_output
        self.errors = errors


class BudgetExceeded(MaestroError):
    """A usage limit would be exceeded by the next call; the call was not made.

    Attributes:
        usage: Usage so far when the limit was hit.
        limit: Which limit, for example ``"max_requests=20"``.
    """

    def __init__(self, message: str, *, usage: Usage, limit: str) -> None:
        super().__init__(message, hint="Raise the budget or narrow the task.")
        self.usage = usage
        self.limit = limit


class DocumentError(MaestroError):
    """A document could not be read; names the file and the reason.

    Attributes:
        path: The file.
        reason: A short machine-friendly reason such as ``"encrypted"``, ``"empty"``,
            ``"malformed"``, ``"no_text"``, ``"unsupported"``.
    """

    def __init__(self, path: str | Path, reason: str, detail: str, *, hint: str | None = None):
        super().__init__(f"{path}: {detail}", hint=hint)
        self.path = str(path)
        self.reason = reason
        self.detail = detail


class StoreError(MaestroError):
    """The vector store failed or is unreachable."""


class EmbeddingMismatch(UserError):
    """A corpus was built with a different embedding model than the one used to query it."""

    def __init__(self, corpus: str, stored: str, requested: str) -> None:
        super().__init__(
            f"corpus {corpus!r} was embedded with {stored!r}, not {requested!r}",
            hint=f"Query it with embedder {stored!r}, or re-ingest it into a new corpus.",
        )
        self.corpus = corpus
        self.stored = stored
        self.requested = requested


class PlanError(MaestroError):
    """A plan is invalid (cycle, unknown dependency, unknown document...).

    Attributes:
        problems: One line per problem found.
    """

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        super().__init__("invalid plan: " + "; ".join(problems), hint=hint)
        self.problems = problems


class RunInterruptedError(MaestroError):
    """A run stopped before finishing. With a run store its state is saved, and it resumes
    from there.

    Attributes:
        run_id: The run, for ``Maestro.resume(run_id)`` or ``maestro resume RUN_ID``.
        cause: What stopped it (for example the model endpoint being unreachable).
    """

    def __init__(self, run_id: str, cause: BaseException, *, resumable: bool = True) -> None:
        if not resumable:
            hint = "Record runs with Maestro(run_store=...) to be able to resume them."
        elif isinstance(cause, RunCancelled):
            hint = f"Its finished steps are kept; `maestro resume {run_id}` continues it."
        elif cause_hint := getattr(cause, "hint", None):
            hint = f"{cause_hint} Then resume it: `maestro resume {run_id}`."
        else:
            hint = f"Resume it once that is fixed: `maestro resume {run_id}`."
        super().__init__(f"run {run_id} stopped: {cause}", hint=hint)
        self.run_id = run_id
        self.cause = cause

    @property
    def is_retryable(self) -> bool:
        return True


class RunCancelled(MaestroError):
    """Someone asked the run to stop (``maestro runs cancel``, the dashboard's Cancel). It
    stops as an outage would: interrupted, checkpointed, resumable."""

    def __init__(self, run_id: str) -> None:
        super().__init__("cancelled by request")
        self.run_id = run_id


def interrupts_run(error: BaseException) -> bool:
    """Whether ``error`` stops a run rather than failing one step: a model endpoint that
    stayed unreachable, overloaded or too slow through every retry (and fallback). Nothing is
    wrong with the step, so re-running it in a fix round would not help; the run stops with
    its state saved and resumes when the endpoint is back."""
    return isinstance(error, RunCancelled) or (
        isinstance(error, ModelAPIError) and error.is_retryable
    )


class RunNotFound(UserError):
    """No run with this id is in the run store."""

    def __init__(self, run_id: str, **kwargs: Any) -> None:
        super().__init__(f"no run with id {run_id!r}", hint="List runs with `maestro runs list`.")
        self.run_id = run_id


class CorpusNotFound(UserError):
    """No corpus with this name in the store.

    Attributes:
        corpus: The name asked for.
        available: The corpora that do exist.
    """

    def __init__(self, corpus: str, available: list[str]) -> None:
        listed = ", ".join(available) if available else "none yet"
        super().__init__(
            f"no corpus named {corpus!r} (corpora: {listed})",
            hint="Ingest documents into it first (`maestro ingest PATH --corpus NAME`).",
        )
        self.corpus = corpus
        self.available = available


class EmptyCorpus(UserError):
    """A run was asked to search a corpus that holds no documents: every answer would be
    "the evidence does not say", so no model is asked.

    Attributes:
        corpus: The corpus's name.
    """

    def __init__(self, corpus: str) -> None:
        super().__init__(
            f"corpus {corpus!r} has no documents to search",
            hint="Ingest documents into it first (`maestro ingest PATH --corpus NAME`), or "
            "check the ingest report: files without text are skipped.",
        )
        self.corpus = corpus


class RequirementsNotMet(MaestroError):
    """A run ended with requirements unmet and its budget asked to raise rather than return.

    Attributes:
        result: The best result the run produced, with ``result.unmet`` listing what failed.
    """

    def __init__(self, result: Any) -> None:
        unmet = ", ".join(r.id for r in result.unmet) or "none"
        super().__init__(
            f"run {result.run_id} ended {result.status} with requirements unmet: {unmet}",
            hint="Raise the budget, relax the requirements, or use a stronger model.",
        )
        self.result = result
