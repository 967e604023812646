"""Which files an ingestion reads: folders expanded, hidden and unsupported files left out."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..documents.loaders import LoaderRegistry

__all__ = ["IngestSkipped", "absolute_keys", "absolute_path", "collect_files", "directories"]


class IngestSkipped(BaseModel):
    """A file or folder found inside a folder and deliberately not ingested, and why."""

    model_config = ConfigDict(frozen=True)

    path: str
    reason: Literal["hidden", "unsupported"]
    """``hidden``: its name starts with a dot, or an underscore (``_src``, ``__pycache__``;
    a folder's whole content is skipped);
    ``unsupported``: no loader reads its suffix."""
    detail: str


_HIDDEN = (".", "_")
"""Name prefixes a folder search skips: dot files and folders (``.git``), and private
ones (``_src`` holding the sources of generated documents, ``__pycache__``)."""


def collect_files(
    paths: Iterable[str | Path], registry: LoaderRegistry
) -> tuple[list[Path], list[IngestSkipped]]:
    """Expand directories (recursively) into the files to ingest.

    Returns:
        The files, each once, as absolute paths in a stable order; and what was found in
        directories and left out: hidden files and folders (names starting with a dot or an
        underscore, such as ``.git`` or ``_src``) and files no loader reads. A file named
        directly is always kept: if no loader reads it, it fails visibly.
    """
    files: list[Path] = []
    skipped: list[IngestSkipped] = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.is_dir():
            files.append(path)
            continue
        for root, dirs, names in os.walk(path):
            for name in sorted(d for d in dirs if d.startswith(_HIDDEN)):
                skipped.append(_skip(Path(root, name), "hidden", "hidden folder, not searched"))
            dirs[:] = sorted(d for d in dirs if not d.startswith(_HIDDEN))
            for name in sorted(names):
                found = Path(root, name)
                if name.startswith(_HIDDEN):
                    skipped.append(_skip(found, "hidden", "hidden file"))
                elif registry.supports(found):
                    files.append(found)
                else:
                    detail = f"no loader reads {found.suffix or 'files without a suffix'}"
                    skipped.append(_skip(found, "unsupported", detail))
    return list(dict.fromkeys(absolute_path(f) for f in files)), skipped


def directories(paths: Iterable[str | Path]) -> list[Path]:
    """The directories among ``paths``, as absolute paths (the folders an ingestion
    searches, whose deleted files it looks for)."""
    return [absolute_path(p) for p in paths if Path(p).expanduser().is_dir()]


def _skip(path: Path, reason: Literal["hidden", "unsupported"], detail: str) -> IngestSkipped:
    return IngestSkipped(path=str(absolute_path(path)), reason=reason, detail=detail)


def absolute_path(path: str | Path) -> Path:
    # abspath, not resolve: a symlinked folder keeps the path the user knows.
    return Path(os.path.abspath(os.path.expanduser(path)))


def absolute_keys(passwords: Mapping[str, str] | Mapping[Path, str]) -> dict[Path, str]:
    """Passwords keyed by absolute path, the form :func:`collect_files` returns."""
    return {absolute_path(path): password for path, password in passwords.items()}
