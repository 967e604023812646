"""maestro-lite: plan, execute and validate LLM work over documents."""

from __future__ import annotations

from .budget import Budget
from .errors import (
    BudgetExceeded,
    ConfigError,
    DocumentError,
    EmbeddingMismatch,
    MaestroError,
    ModelAPIError,
    ModelAuthError,
    ModelConnectionError,
    ModelError,
    ModelIntegrityError,
    ModelNotAvailable,
    ModelTimeout,
    PlanError,
    RequirementsNotMet,
    RunNotFound,
    StoreError,
    StructuredOutputError,
    UserError,
)
from .events import EVENT_ADAPTER, Event
from .models import (
    ChatModel,
    Completion,
    FunctionModel,
    Message,
    ModelCall,
    ModelRegistry,
    ModelSettings,
    RetryPolicy,
    ScriptedModel,
    UsageMeter,
    generate,
    model_from_settings,
)
from .orchestrator import CorpusStore, Maestro
from .plan import Plan, Step, StepKind
from .requirements import CheckContext, CheckOutcome, Requirement, RequirementResult
from .result import Citation, Claim, Decision, RunResult, StepResult, ValidationReport
from .retrieval import Retriever, SearchFilter, SearchHit, SearchMode
from .settings import Settings
from .usage import Usage, UsageLimits

__version__ = "0.1.0"

__all__ = [
    # orchestration
    "Maestro",
    "CorpusStore",
    "Plan",
    "Step",
    "StepKind",
    "Budget",
    "Requirement",
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
    # configuration
    "Settings",
    # models
    "ChatModel",
    "Completion",
    "FunctionModel",
    "Message",
    "ModelCall",
    "ModelRegistry",
    "ModelSettings",
    "RetryPolicy",
    "ScriptedModel",
    "UsageMeter",
    "generate",
    "model_from_settings",
    # usage and budgets
    "Usage",
    "UsageLimits",
    # errors
    "BudgetExceeded",
    "ConfigError",
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
    "PlanError",
    "RequirementsNotMet",
    "RunNotFound",
    "StoreError",
    "StructuredOutputError",
    "UserError",
]
