"""What a run produces: cited claims, step results, validation reports, and the run result."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._derived import DerivedModel
from .changes import Change
from .conflicts import Conflict
from .models.generate import Attempt
from .plan import Plan, StepKind
from .requirements import RequirementResult
from .retrieval import SearchHit
from .usage import Usage

__all__ = [
    "Citation",
    "Claim",
    "Decision",
    "RoundRecord",
    "RunResult",
    "RunStatus",
    "StepResult",
    "StepStatus",
    "ValidationReport",
]


class Citation(BaseModel):
    """An exact span of a source document supporting a claim."""

    model_config = ConfigDict(frozen=True)

    evidence_id: str
    """The id the model was shown and chose (``c2.s3``)."""
    chunk_id: str
    document_id: str
    title: str
    path: str
    page: int
    start: int
    """Offset of the quote in its page's text."""
    end: int
    quote: str
    """The exact source text, ``page_text[start:end]``."""


class Claim(BaseModel):
    """A statement of the output and the evidence the model cited for it."""

    model_config = ConfigDict(frozen=True)

    text: str
    citations: list[Citation] = Field(default_factory=list)


StepStatus = Literal["done", "failed", "skipped"]


class StepResult(DerivedModel):
    """What one step did, with everything needed to audit it."""

    model_config = ConfigDict(frozen=True)

    step_id: str
    kind: StepKind
    status: StepStatus
    round: int = 1
    answer: str = ""
    data: dict[str, Any] | None = None
    """The structured record of an ``extract`` step (or of a typed final step)."""
    claims: list[Claim] = Field(default_factory=list)
    missing: dict[str, str] = Field(default_factory=dict)
    """For extraction: fields left empty, with the model's reason."""
    retrieved: list[SearchHit] = Field(default_factory=list)
    """Every chunk retrieved for the step, best first."""
    evidence_ids: list[str] = Field(default_factory=list)
    """The evidence ids the model could cite."""
    prompt: list[dict[str, str]] = Field(default_factory=list)
    """The messages sent for the step (its inputs)."""
    feedback: str | None = None
    """Failure reasons given to the model when the step was re-run."""
    conflicts: list[Conflict] = Field(default_factory=list)
    """Where the step's evidence disagrees with itself (shown to the model, checked on the
    final step's answer)."""
    added: list[str] = Field(default_factory=list)
    """Sentences the framework added to the model's answer: conflicts among the evidence
    that the answer left untold (each also a claim citing both sides)."""
    changes: list[Change] = Field(default_factory=list)
    """For a ``compare`` step: its documents' clauses aligned, changed or not (shown to the
    model, checked on its answer)."""
    attempts: list[Attempt] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    model: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @cached_property
    def citations(self) -> list[Citation]:
        """Every distinct citation of the step's claims."""
        seen: dict[tuple[str, int, int], Citation] = {}
        for claim in self.claims:
            for c in claim.citations:
                seen.setdefault((c.chunk_id, c.start, c.end), c)
        return list(seen.values())


class ValidationReport(DerivedModel):
    """Every check of one round, as data; the orchestrator decides what to do with it."""

    model_config = ConfigDict(frozen=True)

    round: int
    results: list[RequirementResult]

    # A report is immutable and a round holds several checks per step: computed once.
    @cached_property
    def passed(self) -> bool:
        return not self.failed

    @cached_property
    def score(self) -> float:
        """Mean score over the run-level results (1.0 when there are none)."""
        final = [r.score for r in self.results if r.step_id is None]
        return sum(final) / len(final) if final else 1.0

    @cached_property
    def failed(self) -> list[RequirementResult]:
        return [r for r in self.results if not r.passed]


class Decision(BaseModel):
    """What the orchestrator chose after a round, and why."""

    model_config = ConfigDict(frozen=True)

    action: Literal["finish", "fix", "replan"]
    reason: str
    step_ids: list[str] = Field(default_factory=list)
    """Steps to re-run (fix) or kept (replan)."""


class RoundRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    round: int
    plan: Plan
    report: ValidationReport
    decision: Decision


RunStatus = Literal["passed", "unmet", "failed"]
"""``passed``: every requirement met; ``unmet``: a result, with requirements marked unmet
(budget spent); ``failed``: no usable output."""


class RunResult(BaseModel):
    """Everything a run produced."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    run_id: str
    task: str
    status: RunStatus
    output: Any = None
    """Text, or an instance of the run's ``output_type``."""
    output_text: str = ""
    claims: list[Claim] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)
    requirements: list[RequirementResult] = Field(default_factory=list)
    """The final report: each requirement (and built-in check) with score and reason."""
    plan: Plan | None = None
    steps: dict[str, StepResult] = Field(default_factory=dict)
    rounds: list[RoundRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    wall_seconds: float = 0.0
    budget_exhausted: str | None = None
    """Which limit ended the run early, if one did."""
    error: str | None = None
    events: list[Any] = Field(default_factory=list)
    """Every event of the run (see :mod:`maestro_lite.events`)."""

    @property
    def unmet(self) -> list[RequirementResult]:
        return [r for r in self.requirements if not r.passed]

    @property
    def passed(self) -> bool:
        return self.status == "passed"
