"""The harness the answer evals share: the model, per-item results cached on disk as they
finish (an interrupted eval resumes where it stopped), a retriever scoped to some documents,
and the results table appended to BENCHMARKS.md.

The model comes from the settings, so the same eval runs against the local GGUF model or any
OpenAI-compatible endpoint: ``MAESTRO_PROVIDER=openai OPENAI_BASE_URL=... MAESTRO_MODEL=...``
or ``--model openai:gpt-4o-mini``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from maestro_lite import (
    ChatModel,
    Chunk,
    DocumentInfo,
    Event,
    ModelRegistry,
    Retriever,
    SearchFilter,
    SearchHit,
    SearchMode,
    Settings,
    model_from_settings,
)
from maestro_lite.models import parse_model_spec

from .common import machine, today

__all__ = [
    "BENCHMARKS",
    "ItemCache",
    "ScopedRetriever",
    "add_common_arguments",
    "append_benchmarks",
    "eval_model",
    "markdown_table",
    "publish",
    "settings_from_args",
    "store_settings",
    "step_logger",
]

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def add_common_arguments(parser: argparse.ArgumentParser, *, limit: int) -> None:
    """Options every answer eval takes."""
    parser.add_argument("--limit", type=int, default=limit, help=f"items (default {limit})")
    parser.add_argument("--model", help="provider:model, e.g. openai:gpt-4o-mini")
    parser.add_argument(
        "--fresh", action="store_true", help="ignore the results cached by earlier runs"
    )
    parser.add_argument(
        "--no-benchmarks", action="store_true", help="do not append the table to BENCHMARKS.md"
    )
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with ``--model`` on top."""
    settings = Settings.from_env()
    return parse_model_spec(args.model, settings) if args.model else settings


def store_settings(settings: Settings) -> Settings:
    """Settings whose vector store and caches are the evals' own (under the cache folder), so
    eval corpora never mix with the user's."""
    return settings.model_copy(update={"home": settings.cache_dir / "eval-stores"})


def publish(
    args: argparse.Namespace,
    summary: BaseModel,
    table: Sequence[str],
    *,
    title: str,
    model: str,
    data: str,
    seconds: float,
    notes: Sequence[str] = (),
) -> None:
    """Print the table, write the summary as JSON when ``--json`` says, and append the table
    to BENCHMARKS.md unless ``--no-benchmarks``."""
    print("\n".join(table))
    if args.json:
        args.json.write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    if not args.no_benchmarks:
        append_benchmarks(title, table, model=model, data=data, seconds=seconds, notes=notes)


def eval_model(settings: Settings) -> ChatModel:
    """The model the settings name; a local registry model is pulled and verified first, so
    the first item does not pay for it."""
    if settings.provider == "local":
        registry = ModelRegistry(settings.models_dir, allow_download=settings.allow_download)
        if settings.resolved_model in registry.known:
            registry.ensure(settings.resolved_model)
    return model_from_settings(settings)


class ItemCache:
    """Per-item results of one eval configuration, one JSON object per line.

    The file name carries a hash of the configuration (model, budget, k, prompt version...),
    so changing any of them starts a new file rather than mixing results.

    Args:
        directory: Where the files live (``settings.cache_dir / "evals"``).
        name: The eval's name.
        config: Everything that changes results.
        fresh: Start over, discarding earlier results of this configuration.
    """

    def __init__(
        self, directory: Path, name: str, config: Mapping[str, Any], *, fresh: bool = False
    ) -> None:
        digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
        self.path = directory / f"{name}-{digest.hexdigest()[:10]}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fresh and self.path.exists():
            self.path.unlink()
        self.results: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by an interruption
                self.results[record["key"]] = record

    def get(self, key: str) -> dict[str, Any] | None:
        return self.results.get(key)

    def add(self, key: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``record`` under ``key`` and append it to the file at once."""
        stored = {"key": key, **record}
        self.results[key] = stored
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(stored, default=str) + "\n")
        return stored


class ScopedRetriever:
    """A retriever that sees only some documents of a corpus.

    The eval corpora hold the paragraphs of every question; each question must see only its
    own (the distractor setting). Searching, listing and planning all go through this scope.
    """

    def __init__(self, inner: Retriever, document_ids: Sequence[str]) -> None:
        self.inner = inner
        self.document_ids = list(dict.fromkeys(document_ids))

    def _scope(self, filters: SearchFilter | None) -> SearchFilter:
        if filters is None:
            return SearchFilter(document_ids=self.document_ids)
        wanted = filters.document_ids
        ids = self.document_ids if wanted is None else [d for d in wanted if d in self.document_ids]
        return filters.model_copy(update={"document_ids": ids})

    async def search(
        self,
        query: str,
        *,
        k: int = 8,
        filters: SearchFilter | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        scoped = self._scope(filters)
        if not scoped.document_ids:
            return []
        return await self.inner.search(query, k=k, filters=scoped, mode=mode)

    async def documents(self) -> list[DocumentInfo]:
        by_id = {d.id: d for d in await self.inner.documents()}
        return [by_id[d] for d in self.document_ids if d in by_id]

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        return await self.inner.get_chunks(ids)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table; floats with three decimals, ``None`` as a dash."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value).replace("|", "/")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def command_line() -> str:
    """How this eval was started, for the record."""
    program = sys.argv[0]
    if program.endswith("__main__.py") or program.endswith(".py"):
        module = Path(program).with_suffix("").as_posix().replace("/", ".")
        module = module[module.find("evals.") :] if "evals." in module else module
        return "python -m " + shlex.join([module.removesuffix(".__main__"), *sys.argv[1:]])
    return shlex.join([Path(program).name, *sys.argv[1:]])


def append_benchmarks(
    title: str,
    table: Sequence[str],
    *,
    model: str,
    data: str,
    command: str | None = None,
    notes: Sequence[str] = (),
    seconds: float | None = None,
    path: Path = BENCHMARKS,
) -> Path:
    """Append a dated section with ``table`` to BENCHMARKS.md (created if missing)."""
    lines = [
        "",
        f"## {title} ({today()})",
        "",
        f"- model: `{model}`",
        f"- data: {data}",
        f"- command: `{command or command_line()}`",
        f"- machine: {machine()}",
    ]
    if seconds is not None:
        lines.append(f"- wall time: {seconds / 60:.1f} min (items cached by earlier runs cost 0)")
    lines += ["", *table, ""]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    existing = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    path.write_text(existing.rstrip("\n") + "\n" + "\n".join(lines), encoding="utf-8")
    return path


def step_logger() -> Callable[[Event], None]:
    """An event handler printing one line per finished, failed or skipped step, so a long
    eval's log shows where it is."""

    def log(event: Event) -> None:
        match event.kind:
            case "step_finished" | "step_failed" | "step_skipped":
                detail = getattr(event, "answer", "") or getattr(event, "error", "") or ""
                detail = getattr(event, "reason", "") or detail
                print(f"    {event.step_id} {event.kind[5:]}: {' '.join(detail.split())[:100]}")
            case "model_attempted" if event.outcome != "ok":
                print(f"    {event.purpose} {event.outcome}: {(event.error or '')[:100]}")
            case _:
                pass

    return log


class Stopwatch:
    """Seconds since creation."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
