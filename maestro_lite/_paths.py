"""Checks on paths a user gives, made before anything is written there."""

from __future__ import annotations

from pathlib import Path

__all__ = ["folder_problem"]


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a folder, or ``None`` when it can: it must not be
    a file, nor lie under one."""
    for each in (path, *path.parents):
        if each.exists():
            if each.is_dir():
                return None
            return "is a file, not a folder" if each == path else f"is under the file {each}"
    return None
