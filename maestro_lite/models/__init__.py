"""Chat models: the interface, the backends, the test doubles, and :func:`generate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..settings import Settings
from ..usage import UsageMeter
from .base import ChatModel, Message, ModelSettings, RawResponse, cache_identity
from .cached import CachedModel
from .calls import Attempt, Call, CallWrapper, Completion
from .fallback import FallbackModel
from .gate import CallGate, gated
from .generate import generate
from .output import json_schema_for
from .registry import KNOWN_MODELS, KnownModel, ModelInfo, ModelPart, ModelRegistry, Progress
from .retry import RetryPolicy
from .scripted import FunctionModel, ModelCall, ScriptedModel

# Type-only: the backends import openai or llama_cpp, loaded when asked for.
if TYPE_CHECKING:
    from .local import LocalModel
    from .openai import OpenAIModel

__all__ = [
    "KNOWN_MODELS",
    "Attempt",
    "CachedModel",
    "Call",
    "CallGate",
    "CallWrapper",
    "ChatModel",
    "Completion",
    "FallbackModel",
    "FunctionModel",
    "KnownModel",
    "LocalModel",
    "Message",
    "ModelCall",
    "ModelInfo",
    "ModelPart",
    "ModelRegistry",
    "ModelSettings",
    "OpenAIModel",
    "Progress",
    "RawResponse",
    "RetryPolicy",
    "ScriptedModel",
    "UsageMeter",
    "cache_identity",
    "fallback_settings",
    "gated",
    "generate",
    "json_schema_for",
    "model_from_settings",
    "parse_model_spec",
]


def __getattr__(name: str) -> object:
    # The backends import heavy SDKs; load them only when asked for.
    if name == "LocalModel":
        from .local import LocalModel

        return LocalModel
    if name == "OpenAIModel":
        from .openai import OpenAIModel

        return OpenAIModel
    raise AttributeError(name)


def parse_model_spec(spec: str, settings: Settings) -> Settings:
    """Settings for a ``provider:model`` string, e.g. ``openai:gpt-4o-mini``,
    ``local:qwen2.5-coder-0.5b`` or ``local:/models/x.gguf``. A bare name keeps the provider."""
    provider, sep, name = spec.partition(":")
    if not (name if sep else spec).strip() or (sep and not provider.strip()):
        raise ConfigError(
            f"model {spec!r} names no model",
            hint="Use 'local:<name or .gguf path>', 'openai:<model>' or a bare model name.",
        )
    if not sep:
        return settings.model_copy(update={"model": spec})
    if provider not in ("local", "openai"):
        raise ConfigError(
            f"unknown provider {provider!r} in model {spec!r}",
            hint="Use 'local:<name or .gguf path>' or 'openai:<model>'.",
        )
    return settings.model_copy(update={"provider": provider, "model": name})


def model_from_settings(settings: Settings, *, progress: Progress | None = None) -> ChatModel:
    """The chat model the settings describe (nothing is loaded or contacted yet): a
    :class:`LocalModel` or an :class:`OpenAIModel`, or with ``fallback_model`` set a
    :class:`FallbackModel` of it and the fallback."""
    fallback = fallback_settings(settings)
    if fallback is not None:
        return FallbackModel(_single_model(settings, progress), _single_model(fallback, progress))
    return _single_model(settings, progress)


def fallback_settings(settings: Settings) -> Settings | None:
    """The settings of ``settings``' fallback model, if it names one."""
    if not settings.fallback_model:
        return None
    spec = parse_model_spec(settings.fallback_model, settings.model_copy(update={"model": None}))
    update: dict[str, object] = {"fallback_model": None}
    if settings.fallback_base_url:
        update["openai_base_url"] = settings.fallback_base_url
    return spec.model_copy(update=update)


def _single_model(settings: Settings, progress: Progress | None) -> LocalModel | OpenAIModel:
    if settings.provider == "openai":
        from .openai import OpenAIModel

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAIModel(
            settings.resolved_model,
            base_url=settings.openai_base_url,
            api_key=key,
            timeout=settings.request_timeout,
            structured_mode=settings.structured_mode,
        )
    from .local import LocalModel

    return LocalModel(
        settings.resolved_model,
        registry=ModelRegistry(settings.models_dir, allow_download=settings.allow_download),
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        prefix_cache=settings.local_prefix_cache,
        progress=progress,
        repack=settings.local_repack,
    )
