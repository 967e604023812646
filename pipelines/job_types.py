"""The pipelines' jobs: what a schedule, watch, trigger or submission can ask a pipeline
to do, as data.

Each is a :class:`~maestro_lite.scheduling.Job` of its own kind whose parameters the
pipeline's runner (:data:`pipelines.jobs.RUNNERS`) checks; the core stores them as a kind
and parameters and knows none of them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from maestro_lite import BudgetPreset, Job

__all__ = ["CompareJob", "ExtractJob", "ResearchJob", "SummarizeJob"]


class ResearchJob(Job):
    """The research pipeline: a cited report answering a (multi-part) question."""

    model_config = ConfigDict(extra="forbid")

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


class CompareJob(Job):
    """The comparison pipeline: documents compared aspect by aspect, with citations."""

    model_config = ConfigDict(extra="forbid")

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


class ExtractJob(Job):
    """The extraction pipeline: one validated record per document."""

    model_config = ConfigDict(extra="forbid")

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


class SummarizeJob(Job):
    """The summary pipeline: each earnings call a cited bullet summary, by section."""

    model_config = ConfigDict(extra="forbid")

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
