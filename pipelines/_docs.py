"""Documents for the pipelines: which files to ingest, the corpus holding them, their ids."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from maestro_lite import (
    Corpus,
    DocumentInfo,
    Embedder,
    IngestEvent,
    IngestReport,
    LoaderRegistry,
    Retriever,
    Settings,
    UserError,
    collect_files,
    one_line,
)

__all__ = [
    "DocumentSet",
    "display_name",
    "corpus_name_for",
    "document_files",
    "ingest_documents",
    "match_documents",
    "resolve",
]


def document_files(
    paths: Iterable[str | Path], *, loaders: LoaderRegistry | None = None
) -> list[Path]:
    """The files a loader reads under ``paths``, each once, in a stable order: the files
    ingestion would read (:func:`maestro_lite.corpus.ingest.collect_files`, with its rules).

    Folders are searched recursively, skipping entries whose name starts with ``.`` or ``_``
    (``sample_docs/_src`` holds the sources of the PDFs, which would otherwise be read twice).
    A file named directly is always kept, so an unreadable one fails visibly at ingestion.
    """
    return collect_files(paths, loaders or LoaderRegistry())[0]


def corpus_name_for(paths: Sequence[str | Path]) -> str:
    """A readable corpus name for documents given on the command line (``research`` for
    ``sample_docs/research``); ingesting the same files again is a no-op."""
    first = Path(os.path.abspath(Path(paths[0]).expanduser())) if paths else Path("docs")
    stem = first.stem if first.is_file() else first.name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._") or "docs"
    return (slug + "-docs" if len(slug) < 3 else slug)[:60]


def display_name(document: DocumentInfo) -> str:
    """How to name a document to a model and a reader: its title, unless the title is an
    identifier (SEC filings carry their accession number, ``0000320193-22-000070``, as PDF
    title), then its file name without the suffix (``2022 Q3 AAPL``)."""
    title = one_line(document.title)
    if re.search(r"[A-Za-z]{2}", title) and (" " in title or "_" not in title):
        return title
    return one_line(Path(document.path).stem) or title or document.id


@dataclass
class DocumentSet:
    """A corpus and the documents of it that a pipeline works on."""

    corpus: Corpus
    documents: list[DocumentInfo]
    """The documents asked for, in the order given."""
    report: IngestReport | None = None
    """What ingestion did, when files were ingested."""
    missing: list[str] = field(default_factory=list)
    """Files that are not in the corpus after ingestion (they failed; see ``report``)."""


async def resolve(corpus: Retriever, wanted: Sequence[str | Path]) -> list[DocumentInfo]:
    """The documents of ``corpus`` named by id, id prefix, path, file name or title.

    Raises:
        UserError: A name matches no document, or several.
    """
    return match_documents(await corpus.documents(), wanted)


def match_documents(
    documents: Sequence[DocumentInfo], wanted: Sequence[str | Path]
) -> list[DocumentInfo]:
    """The documents named by id, id prefix, path, file name or title, in the order given.

    Raises:
        UserError: A name matches no document, or several.
    """
    out: list[DocumentInfo] = []
    for item in wanted:
        text = str(item)
        path = os.path.abspath(os.path.expanduser(text))
        matches = [d for d in documents if d.id == text or path in d.paths]
        if not matches:
            matches = [
                d
                for d in documents
                if d.id.startswith(text)
                or any(Path(p).name == text for p in d.paths)
                or d.title == text
            ]
        if len(matches) != 1:
            problem = "no document" if not matches else f"{len(matches)} documents"
            raise UserError(
                f"{problem} in the corpus match {text!r}",
                hint="Name a document by its id, path or file name "
                "(`maestro docs list --corpus NAME` lists them).",
            )
        out.append(matches[0])
    return out


async def ingest_documents(
    paths: Sequence[str | Path],
    *,
    corpus: str | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    password: str | None = None,
    progress: Callable[[IngestEvent], None] | None = None,
) -> DocumentSet:
    """Ingest ``paths`` (files and folders) into a corpus and return their documents.

    Unchanged files are not ingested again, so running a pipeline twice over the same folder
    costs one hash per file the second time.

    Args:
        paths: Files and folders (see :func:`document_files`).
        corpus: The corpus name; derived from the first path when ``None``.
        settings: Where the store lives and which embedder to use.
        embedder: The embedding model (the one ``settings`` names when ``None``).
        password: Tried on encrypted PDFs.
        progress: Called with each :class:`~maestro_lite.IngestEvent`.
    """
    files = await asyncio.to_thread(document_files, paths)
    if not files:
        raise UserError(
            f"no readable documents under {', '.join(map(str, paths))}",
            hint="Give PDF, text or Markdown files, or folders holding them.",
        )
    store = await Corpus.open(
        corpus or corpus_name_for(paths), settings=settings, embedder=embedder
    )
    report = await store.ingest(files, password=password, progress=progress)
    # Every file ingested is among its document's paths, also when the same bytes were
    # stored under another path first.
    by_path = {path: d for d in await store.documents() for path in d.paths}
    documents: list[DocumentInfo] = []
    missing: list[str] = []
    for file in files:
        info = by_path.get(str(file))
        if info is None:
            missing.append(str(file))
        elif info not in documents:
            documents.append(info)
    return DocumentSet(store, documents, report, missing)
