"""Option callbacks that check a value up front, so a bad one stops the command before it
ingests or calls a model. Each raises ``typer.BadParameter``: one line naming the option."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from .._paths import folder_problem

__all__ = ["DECLARING_JOB", "existing_paths", "output_file", "output_folder", "positive"]

DECLARING_JOB = object()
"""``ctx.obj`` while a command line is parsed as a job that runs later (a schedule's, a
watch's): input paths are checked when it runs, since they may appear meanwhile."""


def positive(value: float | None) -> float | None:
    """A number above zero (``None``: not given)."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not above 0")
    return value


def output_folder(value: Path | None) -> Path | None:
    """A folder that exists or can be made."""
    if value is not None and (problem := folder_problem(value.expanduser())):
        raise typer.BadParameter(f"{value} {problem}")
    return value


def output_file(value: Path | None) -> Path | None:
    """A file whose folder exists or can be made, and that is not a folder itself."""
    if value is None:
        return None
    path = value.expanduser()
    if path.is_dir():
        raise typer.BadParameter(f"{value} is a folder, not a file")
    if problem := folder_problem(path.parent):
        raise typer.BadParameter(f"{value}: its folder {problem}")
    return value


def existing_paths(ctx: typer.Context, values: Sequence[str]) -> Sequence[str]:
    """Files or folders that exist (in a job declared for later, see :data:`DECLARING_JOB`,
    they are checked when it runs)."""
    if ctx.obj is DECLARING_JOB:
        return values
    missing = [v for v in values if not Path(v).expanduser().exists()]
    if missing:
        raise typer.BadParameter(f"no such file or folder: {', '.join(missing)}")
    return values
