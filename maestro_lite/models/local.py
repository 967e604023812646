"""A GGUF model running in-process with llama-cpp-python. The only module importing it.

Structured output is enforced with a grammar: llama-cpp-python compiles a JSON schema into a
grammar only for ``response_format={"type": "json_object", "schema": ...}``. The OpenAI form
(``{"type": "json_schema", ...}``) is accepted but NOT enforced, so we never send it here.
``tests/models/test_local.py`` proves the enforcement with a schema the model would not
follow unaided.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ModelAPIError, ModelIntegrityError, ModelNotAvailable
from .base import Message, ModelSettings, RawResponse
from .registry import ModelRegistry, Progress, is_gguf

__all__ = ["LocalModel", "cpu_has_amx", "cpu_threads", "grammar_safe", "repacks"]

_DEFAULT_MAX_TOKENS = 1024
# A mild penalty keeps small models from looping inside a JSON string until max_tokens.
_REPEAT_PENALTY = 1.1
_MAX_GRAMMAR_ITEMS = 20


_PARAMS_LOCK = threading.Lock()


def cpu_threads() -> int:
    """The cores this process may run on (llama-cpp-python's own default is half of them:
    one thread of two on a 2-core machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _prefix_cache(entries: int) -> Any:
    """llama-cpp-python's RAM cache of model states keyed by token prefix, bounded by a
    number of entries rather than bytes: each saved state also copies the logits buffer
    (hundreds of MB for a 150k-token vocabulary), which the byte count leaves out."""
    from llama_cpp.llama_cache import LlamaRAMCache

    class PrefixCache(LlamaRAMCache):
        def __setitem__(self, key: Any, value: Any) -> None:
            super().__setitem__(key, value)
            while len(self.cache_state) > entries:
                self.cache_state.popitem(last=False)

    return PrefixCache(capacity_bytes=1 << 40)


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has AMX matrix tiles (Intel Sapphire Rapids and later)."""
    try:
        with cpuinfo.open() as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_int8" in line.split()
    except OSError:
        pass
    return False


def repacks(repack: bool | None) -> bool:
    """Whether a local model loaded with ``repack`` repacks its weights: as asked, or by
    default everywhere but on CPUs with AMX."""
    return not cpu_has_amx() if repack is None else repack


@contextmanager
def _weights_repacked(repack: bool) -> Iterator[None]:
    """Load models with llama.cpp's extra weight buffers (repacking) on or off.

    llama-cpp-python does not expose ``llama_model_params.use_extra_bufts``; ``Llama``
    takes its model parameters from ``llama_model_default_params()``, so the defaults are
    adjusted while a model loads.
    """
    if repack:
        yield
        return
    import llama_cpp.llama_cpp as native

    with _PARAMS_LOCK:
        defaults = native.llama_model_default_params

        def params() -> Any:
            out = defaults()
            out.use_extra_bufts = False
            return out

        native.llama_model_default_params = params
        try:
            yield
        finally:
            native.llama_model_default_params = defaults


def grammar_safe(schema: Any) -> Any:
    """``schema`` without the bounds llama-cpp-python cannot compile.

    Its schema-to-grammar converter writes ``maxLength: n`` as ``n`` nested optional rules
    (it has no ``{m,n}`` form), which llama.cpp rejects for a few hundred characters and
    then crashes on (segmentation fault). String lengths and large ``maxItems`` are dropped
    from the grammar; pydantic still enforces them on the answer, and violations are
    re-asked like any other validation error.
    """
    if isinstance(schema, dict):
        out = {k: grammar_safe(v) for k, v in schema.items() if k not in ("minLength", "maxLength")}
        if isinstance(out.get("maxItems"), int) and out["maxItems"] > _MAX_GRAMMAR_ITEMS:
            del out["maxItems"]
        return out
    if isinstance(schema, list):
        return [grammar_safe(v) for v in schema]
    return schema


class LocalModel:
    """A local GGUF model, loaded on first use.

    Args:
        model: A registry name (``qwen2.5-coder-1.5b``) or the path of any ``.gguf`` file.
            A registry model that is not pulled yet is pulled (and verified) on first use.
        registry: Where registry models live; required for a registry name.
        n_ctx: Context window in tokens.
        n_threads: CPU threads for generation and prompt processing (default: every core
            this process may use; llama-cpp-python alone would use half).
        prefix_cache: Model states kept after calls (0: none). A call whose prompt starts
            like an earlier one (the same system prompt and evidence, as a fix round's or a
            judge's) resumes from the longest such state instead of reading the whole prompt
            again, even with other calls in between. Each state holds a few hundred MB.
        progress: Reports bytes while a model is pulled on first use.
        repack: Let llama.cpp repack weights into its faster CPU layouts. ``None`` (the
            default): yes, except on CPUs with AMX, where llama.cpp's AMX kernels crash the
            process with a segmentation fault in the first inference (llama.cpp issue
            20824; seen here with llama-cpp-python 0.3.36 on a Xeon with AMX).

    Calls run one at a time in a worker thread (a llama.cpp context is not thread-safe), so
    the event loop stays free while the model computes.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        registry: ModelRegistry | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        prefix_cache: int = 4,
        progress: Progress | None = None,
        repack: bool | None = None,
    ) -> None:
        spec = str(model)
        self._is_path = spec.endswith(".gguf") or os.sep in spec
        if not self._is_path and registry is None:
            raise ModelNotAvailable(
                f"{spec!r} is not a .gguf path and no model registry was given",
                model=spec,
                hint="Pass registry=ModelRegistry(settings.models_dir) or a .gguf path.",
            )
        if not self._is_path and registry is not None:
            registry.get(spec)  # fail early on an unknown name
        self.spec = spec
        self.registry = registry
        self.n_ctx = n_ctx
        self.n_threads = n_threads or cpu_threads()
        self.prefix_cache = prefix_cache
        self.progress = progress
        self.repack = repacks(repack)
        self._llama: Any = None
        # A thread lock, not an asyncio one: the model may be shared by several event loops
        # (tests, run_sync), and calls wait for it inside their worker thread.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"local:{Path(self.spec).stem if self._is_path else self.spec}"

    @property
    def cache_identity(self) -> str:
        """A registry model is pinned by its sha256: its name suffices. A file given by
        path is named by its absolute path, size and modification time, so answers
        cached for one file are never served for another with the same name."""
        if not self._is_path:
            return self.name
        path = Path(self.spec).expanduser().absolute()
        try:
            stat = path.stat()
        except OSError:
            return f"{self.name}@{path}"
        return f"{self.name}@{path}:{stat.st_size}:{stat.st_mtime_ns}"

    @property
    def context_window(self) -> int:
        return self.n_ctx

    def resolve_path(self) -> Path:
        """The verified file to load (pulling a registry model first if needed)."""
        if not self._is_path:
            assert self.registry is not None
            return self.registry.ensure(self.spec, progress=self.progress)
        path = Path(self.spec).expanduser()
        if not path.is_file():
            raise ModelNotAvailable(
                f"model file {path} does not exist",
                model=self.name,
                hint="Check MAESTRO_LOCAL_MODEL, or unset it to use the default model.",
            )
        if not is_gguf(path):
            raise ModelIntegrityError(
                f"{path} is not a GGUF file (bad magic bytes)",
                model=self.name,
                hint="Point MAESTRO_LOCAL_MODEL at a .gguf model file (a partial download "
                "fails this check too), or unset it to use the default model.",
            )
        return path

    def _load(self) -> Any:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ModelNotAvailable(
                "llama-cpp-python is not installed",
                model=self.name,
                hint="pip install 'maestro-lite[local]' (compiles llama.cpp, ~5 minutes).",
            ) from None
        path = self.resolve_path()
        with _weights_repacked(self.repack):
            llama = Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                seed=0,
                verbose=False,
            )
        if self.prefix_cache > 0:
            llama.set_cache(_prefix_cache(self.prefix_cache))
        return llama

    def _ensure_loaded(self) -> Any:
        if self._llama is None:
            self._llama = self._load()
        return self._llama

    async def load(self) -> None:
        """Load the weights now rather than on the first request."""

        def locked_load() -> None:
            with self._lock:
                self._ensure_loaded()

        await asyncio.to_thread(locked_load)

    def close(self) -> None:
        """Free the model's memory; a later request loads it again."""
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def _complete(
        self,
        messages: list[dict[str, str]],
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "messages": messages,
            # Deterministic unless asked otherwise: answers must be reproducible.
            "temperature": 0.0 if settings.temperature is None else settings.temperature,
            "max_tokens": settings.max_tokens or _DEFAULT_MAX_TOKENS,
            "repeat_penalty": _REPEAT_PENALTY,
        }
        if settings.seed is not None:
            kwargs["seed"] = settings.seed
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": grammar_safe(json_schema)}
        with self._lock:
            llama = self._ensure_loaded()
            result: dict[str, Any] = llama.create_chat_completion(**kwargs)
        return result

    async def request(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> RawResponse:
        payload = [{"role": m.role, "content": m.content} for m in messages]
        try:
            result = await asyncio.to_thread(self._complete, payload, json_schema, settings)
        except ValueError as exc:
            # llama.cpp raises ValueError when the prompt does not fit the context.
            raise ModelAPIError(
                f"{self.name}: {exc}",
                model=self.name,
                status_code=400,
                hint=f"Shorten the input or raise MAESTRO_N_CTX (now {self.n_ctx}).",
            ) from None
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return RawResponse(
            text=choice["message"].get("content") or "",
            model=self.name,
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            finish_reason=choice.get("finish_reason"),
        )
