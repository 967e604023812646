"""The response cache: an identical model call is answered from disk instead of the model.

A call is identified by everything that determines its answer: the model's name, the
messages, the JSON schema the answer must follow, and the sampling settings (temperature,
max_tokens, seed; not the timeout). Wrap a model in
:class:`~maestro_lite.models.CachedModel` and
:func:`~maestro_lite.models.generate` looks the call up before making it and stores the
answer it accepted (after any retries, re-asks or fallbacks), so re-running an identical run
makes no model calls at all. Hits are counted in ``Usage.cached_requests``, not in
``requests``, and cost nothing against a budget.

**Sampled calls.** A call with ``temperature > 0`` and no ``seed`` asks for a fresh sample;
serving a stored one would silently turn a sampling pipeline into a deterministic one. Such
calls bypass the cache unless it is built with ``include_sampled=True``. Calls with the
backend's default temperature (``None``), temperature 0, or a seed are cached.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._sqlite import open_database
from .settings import Settings

# Type-only: the models package imports this module: no import back at run time.
if TYPE_CHECKING:
    from .models.base import Message, ModelSettings

__all__ = ["CachedAnswer", "ResponseCache"]

# Part of every key: bump it when what a cached answer means changes.
_KEY_VERSION = "maestro-lite/cache/1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    created_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class CachedAnswer:
    """A stored answer."""

    text: str
    model: str
    """The model that produced it (in a fallback chain, the one that answered)."""
    input_tokens: int | None = None
    output_tokens: int | None = None


class ResponseCache:
    """Answers of past model calls, in a SQLite file (or in memory).

    Safe to share between runs, threads and processes.

    Args:
        path: The database file, created if missing; ``":memory:"`` for a cache that lives
            as long as the object.
        include_sampled: Also cache calls with ``temperature > 0`` and no seed (see the module
            documentation).

    Example::

        cache = ResponseCache.open(settings)            # <home>/cache/responses.sqlite3
        maestro = Maestro(model, cache=cache)
        await maestro.run(task, cache=False)            # this run asks the model afresh
    """

    def __init__(self, path: str | Path = ":memory:", *, include_sampled: bool = False) -> None:
        self.path = str(path)
        self.include_sampled = include_sampled
        self.hits = 0
        self.misses = 0
        self._db = open_database(self.path, _SCHEMA, "response cache")
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings | None = None, **kwargs: Any) -> ResponseCache:
        """The cache under ``settings.cache_dir``."""
        return cls((settings or Settings.from_env()).cache_dir / "responses.sqlite3", **kwargs)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cacheable(self, settings: ModelSettings) -> bool:
        """Whether a call with these settings may be answered from the cache."""
        sampled = (settings.temperature or 0.0) > 0 and settings.seed is None
        return self.include_sampled or not sampled

    @staticmethod
    def key(
        model: str,
        messages: Sequence[Message],
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> str:
        """The cache key of a call: a sha256 over everything that determines the answer."""
        payload = {
            "v": _KEY_VERSION,
            "model": model,
            "messages": [[m.role, m.content] for m in messages],
            "schema": json_schema,
            "settings": settings.model_dump(exclude={"timeout"}),
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, model, input_tokens, output_tokens FROM answers WHERE key = ?",
                (key,),
            ).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return CachedAnswer(text=row[0], model=row[1], input_tokens=row[2], output_tokens=row[3])

    def put(self, key: str, answer: CachedAnswer) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers "
                "(key, model, text, input_tokens, output_tokens, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    answer.model,
                    answer.text,
                    answer.input_tokens,
                    answer.output_tokens,
                    datetime.now(UTC).isoformat(),
                ),
            )

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM answers").fetchone()
        return int(count)

    def clear(self) -> None:
        """Forget every answer."""
        with self._lock:
            self._db.execute("DELETE FROM answers")
