"""maestro-lite: plan, execute and validate LLM work over documents."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .budget import Budget, BudgetPreset
from .cache import ResponseCache
from .corpora import Corpora
from .corpus import (
    Corpus,
    HybridSearch,
    IngestEvent,
    IngestFailure,
    IngestReport,
    IngestSkipped,
    collect_files,
    list_corpora,
)
from .documents import (
    Chunk,
    Chunker,
    Document,
    DocumentInfo,
    Loader,
    LoaderRegistry,
    Page,
    ParsedFile,
    document_id,
    load_document,
)
from .embeddings import Embedder, embedder_from_settings
from .errors import (
    BudgetExceeded,
    ConfigError,
    CorpusNotFound,
    DocumentError,
    EmbeddingMismatch,
    EmptyCorpus,
    MaestroError,
    ModelAPIError,
    ModelAuthError,
    ModelConnectionError,
    ModelError,
    ModelIntegrityError,
    ModelNotAvailable,
    ModelTimeout,
    ModelUnreachable,
    PlanError,
    RequirementsNotMet,
    RunInterruptedError,
    RunNotFound,
    StoreError,
    StructuredOutputError,
    UserError,
)
from .events import EVENT_ADAPTER, Event
from .grounding import ungrounded_figures
from .limits import Limiter, ProviderLimits
from .models import (
    CachedModel,
    ChatModel,
    Completion,
    FallbackModel,
    Message,
    ModelRegistry,
    ModelSettings,
    RetryPolicy,
    UsageMeter,
    generate,
    model_from_settings,
)
from .orchestrator import CorpusStore, EventHandler, Maestro
from .plan import Plan, Step, StepKind
from .requirements import (
    CheckContext,
    CheckOutcome,
    Requirement,
    RequirementLike,
    RequirementResult,
)
from .result import Citation, Claim, Decision, RunResult, StepResult, ValidationReport
from .retrieval import Retriever, SearchFilter, SearchHit, SearchMode
from .runs import (
    PostgresRunStore,
    RunQuery,
    RunRecord,
    RunStore,
    RunSummary,
    SQLiteRunStore,
    cancel_run,
    export_run,
    open_run_store,
)
from .scheduling import (
    Job,
    JobContext,
    JobOutcome,
    JobRecord,
    JobRunner,
    JobSpec,
    ManualClock,
    PostgresScheduleStore,
    RunJob,
    Schedule,
    ScheduleStore,
    SQLiteScheduleStore,
    Trigger,
    TriggerCycleError,
    Watch,
    Worker,
    WorkerEvent,
    open_schedule_store,
)
from .scheduling.metrics import WorkerMetrics
from .settings import Settings
from .shared_limits import SharedGates, SQLiteGates
from .store import VectorStore, store_from_settings
from .telemetry import RunTracer
from .untrusted import UNTRUSTED_RULE, find_marked, mark_untrusted, one_line
from .usage import Usage, UsageLimits
from .validator import check_citations

__version__ = "0.1.0"

__all__ = [
    "ClusterNode",
    "collect_files",
    # orchestration
    "Maestro",
    "EventHandler",
    "CorpusStore",
    "Corpora",
    "Plan",
    "Step",
    "StepKind",
    "Budget",
    "BudgetPreset",
    "Requirement",
    "RequirementLike",
    "check_citations",
    "ungrounded_figures",
    "CheckContext",
    "CheckOutcome",
    "RunResult",
    "StepResult",
    "RequirementResult",
    "ValidationReport",
    "Decision",
    "Claim",
    "Citation",
    "Event",
    "EVENT_ADAPTER",
    # retrieval protocol
    "Retriever",
    "SearchFilter",
    "SearchHit",
    "SearchMode",
    # documents and retrieval
    "Corpus",
    "HybridSearch",
    "IngestReport",
    "IngestFailure",
    "IngestSkipped",
    "IngestEvent",
    "list_corpora",
    "Document",
    "DocumentInfo",
    "Page",
    "Chunk",
    "Chunker",
    "Loader",
    "LoaderRegistry",
    "ParsedFile",
    "load_document",
    "document_id",
    "Embedder",
    "embedder_from_settings",
    "VectorStore",
    "store_from_settings",
    # durable runs and shared resources
    "RunStore",
    "SQLiteRunStore",
    "PostgresRunStore",
    "open_run_store",
    "RunRecord",
    "RunSummary",
    "export_run",
    "cancel_run",
    "ResponseCache",
    "Limiter",
    "SQLiteGates",
    "SharedGates",
    "ProviderLimits",
    # scheduling and triggers
    "Worker",
    "Schedule",
    "Watch",
    "Trigger",
    "TriggerCycleError",
    "Job",
    "JobSpec",
    "RunJob",
    "JobRecord",
    "JobOutcome",
    "JobContext",
    "JobRunner",
    "ScheduleStore",
    "SQLiteScheduleStore",
    "PostgresScheduleStore",
    "open_schedule_store",
    "WorkerEvent",
    "ManualClock",
    # monitoring: the dashboard's queries, traces, worker metrics
    "RunQuery",
    "RunTracer",
    "WorkerMetrics",
    # untrusted documents
    "UNTRUSTED_RULE",
    "mark_untrusted",
    "find_marked",
    "one_line",
    # configuration
    "Settings",
    # models
    "ChatModel",
    "Completion",
    "FallbackModel",
    "CachedModel",
    "Message",
    "ModelRegistry",
    "ModelSettings",
    "RetryPolicy",
    "UsageMeter",
    "generate",
    "model_from_settings",
    # usage and budgets
    "Usage",
    "UsageLimits",
    # errors
    "BudgetExceeded",
    "ConfigError",
    "CorpusNotFound",
    "EmptyCorpus",
    "DocumentError",
    "EmbeddingMismatch",
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
    "RunInterruptedError",
    "RunNotFound",
    "StoreError",
    "StructuredOutputError",
    "UserError",
]


if TYPE_CHECKING:  # Type-only: served by __getattr__ below (the cluster imports Ray)
    from .cluster.node import Node as ClusterNode

_MOVED_TO_TESTING = frozenset({"FunctionModel", "ModelCall", "ScriptedModel"})


def __getattr__(name: str) -> object:
    # The test doubles left the top level for ``maestro_lite.testing``; the old imports
    # still work for one release, with a warning.
    if name in _MOVED_TO_TESTING:
        import warnings

        from . import testing

        warnings.warn(
            f"import {name} from maestro_lite.testing; maestro_lite.{name} will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(testing, name)
    if name == "ClusterNode":  # loaded on use: the cluster package imports Ray
        from .cluster.node import Node

        return Node
    raise AttributeError(f"module 'maestro_lite' has no attribute {name!r}")
