"""maestro-lite: plan, execute and validate LLM work over documents."""

from __future__ import annotations

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
    RunNotFound,
    StoreError,
    StructuredOutputError,
    UserError,
)
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
from .settings import Settings
from .usage import Usage, UsageLimits

__version__ = "0.1.0"

__all__ = [
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
    "RunNotFound",
    "StoreError",
    "StructuredOutputError",
    "UserError",
]
