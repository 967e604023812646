"""``maestro ingest``, ``maestro docs list|remove|corpora`` and ``maestro search``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..corpus import DEFAULT_CORPUS, Corpus, IngestEvent, IngestProgress, IngestReport
from ..corpus import list_corpora as _list_corpora
from ..embeddings import Embedder
from ..errors import UserError
from ..retrieval import SearchFilter, SearchMode
from ._app import MaestroGroup, app
from ._cluster import RAY, ray_session
from ._common import console, err_console, load_settings, shown

docs_app = typer.Typer(help="List and remove the documents of a corpus.", cls=MaestroGroup)
app.add_typer(docs_app, name="docs")

_CORPUS = typer.Option(DEFAULT_CORPUS, "--corpus", "-c", help="Corpus name.")


async def _open(corpus: str, *, create: bool) -> Corpus:
    return await Corpus.open(corpus, settings=load_settings(), create=create)


@contextmanager
def _file_progress() -> Iterator[IngestProgress]:
    bar = Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files, {task.fields[chunks]} chunks"),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[current]}"),
        console=err_console,
        transient=True,
    )
    task = bar.add_task("ingest", total=None, chunks=0, current="")

    def update(event: IngestEvent) -> None:
        current = shown(Path(event.path).name) if event.path else ""
        bar.update(
            task,
            completed=event.files_done,
            total=event.files_total,
            chunks=event.chunks_done,
            current=current,
        )

    with bar:
        yield update


def _split_password(spec: str) -> tuple[str, str]:
    """``PATH=PASSWORD``: at the first ``=`` that ends the path of an existing file, so a
    password may hold ``=`` (and a path too, when the file exists)."""
    path, sep, password = spec.partition("=")
    for at in (i for i, char in enumerate(spec) if char == "="):
        if Path(spec[:at]).expanduser().is_file():
            path, password = spec[:at], spec[at + 1 :]
            break
    if not sep or not path:
        raise UserError(
            f"--file-password expects PATH=PASSWORD, got {spec!r}",
            hint="For example --file-password report.pdf=secret.",
        )
    return path, password


_SKIPPED_SHOWN = 20
"""Skipped files named one per line; the rest are counted (a folder of images is long)."""


def _print_report(report: IngestReport) -> None:
    for label, infos in (
        ("[green]ingested[/] ", report.ingested),
        ("[cyan]updated[/]  ", report.updated),
    ):
        for info in infos:
            console.print(f"{label} {shown(info.path)} ({info.chunks} chunks)")
            for note in info.notes:
                console.print(f"          [dim]note: {escape(note)}[/]", soft_wrap=True)
    for info in report.no_text:
        console.print(f"[yellow]no text[/]   {shown(info.path)} (no text layer; nothing embedded)")
    for failure in report.failed:
        hint = f" [dim]-> {escape(failure.hint)}[/]" if failure.hint else ""
        console.print(
            f"[red]failed[/]    {shown(failure.path)}: {failure.reason}: "
            f"{shown(failure.detail)}{hint}",
            soft_wrap=True,
        )
    for skip in report.skipped[:_SKIPPED_SHOWN]:
        console.print(f"[dim]skipped   {shown(skip.path)}: {skip.detail}[/]", soft_wrap=True)
    if len(report.skipped) > _SKIPPED_SHOWN:
        console.print(f"[dim]          ... and {len(report.skipped) - _SKIPPED_SHOWN} more[/]")
    for path in report.gone:
        if report.pruned:
            console.print(f"[magenta]pruned[/]    {shown(path)} (deleted from disk)")
        else:
            console.print(
                f"[yellow]gone[/]      {shown(path)}: deleted from disk, still in the corpus "
                "[dim]-> ingest with --prune to take it off[/]",
                soft_wrap=True,
            )
    if report.recovered:
        console.print(
            f"[dim]finished {report.recovered} document(s) an interrupted ingestion or "
            "removal left half-written or half-deleted[/]"
        )
    console.print(f"[bold]{report.corpus}[/]: {report.summary()} in {report.timings.total:.1f}s")


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files and directories (searched recursively)."),
    corpus: str = _CORPUS,
    password: str | None = typer.Option(
        None, "--password", help="Password for encrypted PDFs (every file)."
    ),
    file_password: list[str] = typer.Option(
        [], "--file-password", help="PATH=PASSWORD for one file; repeatable."
    ),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Take off the corpus the files deleted from the given folders since they were "
        "ingested (without it they are listed, and kept).",
    ),
    ray: str | None = RAY,
) -> None:
    """Ingest documents into a corpus: unchanged files are skipped, changed ones replaced.

    Files deleted from a folder since it was last ingested are listed; --prune removes
    them. Exits with status 1 when a file failed (the others are ingested all the same).
    """
    passwords = dict(_split_password(spec) for spec in file_password)
    settings = load_settings()

    async def run(embedder: Embedder | None) -> IngestReport:
        opened = await Corpus.open(corpus, settings=settings, create=True, embedder=embedder)
        async with opened as target:
            with _file_progress() as progress:
                return await target.ingest(
                    paths, password=password, passwords=passwords, progress=progress, prune=prune
                )

    with ray_session(ray, settings, "embedding") as address:
        embedder: Embedder | None = None
        if address is not None:
            from ..cluster import RayEmbedder

            embedder = RayEmbedder(address, settings=settings)
        report = asyncio.run(run(embedder))
    _print_report(report)
    if report.failed:
        raise typer.Exit(1)


@docs_app.command("list")
def list_documents(corpus: str = _CORPUS) -> None:
    """Show the documents of a corpus."""

    async def run() -> list[tuple[str, str, int, int, str, list[str]]]:
        async with await _open(corpus, create=False) as source:
            return [
                (d.id, d.title, d.pages, d.chunks, d.status, d.paths)
                for d in await source.documents()
            ]

    rows = asyncio.run(run())
    table = Table(title=f"corpus {corpus}: {len(rows)} document(s)")
    for column in ("id", "title", "pages", "chunks", "status", "path"):
        table.add_column(column, overflow="fold")
    for id, title, pages, chunks, status, paths in rows:
        colour = "green" if status == "ok" else "yellow"
        table.add_row(
            id, shown(title), str(pages), str(chunks), f"[{colour}]{status}[/]", _paths(paths)
        )
    console.print(table)


_OTHER_PATHS_SHOWN = 2
"""Other files with a document's content named in the listing; the rest are counted."""


def _paths(paths: list[str]) -> str:
    """A document's path, and on a second line the other files holding the same content
    (relative to the first one's folder when under it)."""
    cell = shown(paths[0])
    folder = Path(paths[0]).parent
    others = [
        str(Path(p).relative_to(folder)) if Path(p).is_relative_to(folder) else p
        for p in paths[1 : 1 + _OTHER_PATHS_SHOWN]
    ]
    if others:
        more = len(paths) - 1 - len(others)
        cell += f"\n[dim]also {', '.join(map(shown, others))}{f' +{more} more' if more else ''}[/]"
    return cell


@docs_app.command("remove")
def remove_document(
    document_id: str = typer.Argument(..., help="Document id, or a unique prefix of it."),
    corpus: str = _CORPUS,
) -> None:
    """Remove a document and its chunks from a corpus (for every file holding it)."""

    async def run() -> tuple[str, str]:
        async with await _open(corpus, create=False) as source:
            info = await source.remove(document_id)
            return info.id, info.path

    id, path = asyncio.run(run())
    console.print(f"removed {id} ({shown(path)}) from {corpus}")


@docs_app.command("corpora")
def corpora() -> None:
    """List the corpora in the store."""
    names = asyncio.run(_list_corpora(load_settings()))
    for name in names:
        console.print(name)
    if not names:
        console.print("[dim]no corpora yet: `maestro ingest PATH` creates 'default'[/]")


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for."),
    corpus: str = _CORPUS,
    k: int = typer.Option(5, "-k", help="How many chunks.", min=1),
    mode: str = typer.Option("hybrid", "--mode", help="dense, lexical or hybrid."),
    document: list[str] = typer.Option(
        [], "--document", "-d", help="Only this document id (repeatable)."
    ),
    fusion: str | None = typer.Option(
        None,
        "--fusion",
        help="How hybrid mode fuses dense and BM25: convex or rrf (default: MAESTRO_FUSION, "
        "else convex).",
    ),
) -> None:
    """Print the best-matching chunks with their document, page and score."""
    if mode not in ("dense", "lexical", "hybrid"):
        raise UserError(f"unknown mode {mode!r}", hint="Use dense, lexical or hybrid.")
    if fusion not in (None, "convex", "rrf"):
        raise UserError(f"unknown fusion {fusion!r}", hint="Use convex or rrf.")
    search_mode: SearchMode = mode  # type: ignore[assignment]
    filters = SearchFilter(document_ids=document) if document else None
    settings = load_settings()
    if fusion is not None:
        settings = settings.model_copy(update={"fusion": fusion})

    async def run() -> list[tuple[int, float, str, str, int, int, int, str]]:
        async with await Corpus.open(corpus, settings=settings, create=False) as source:
            hits = await source.search(query, k=k, filters=filters, mode=search_mode)
            return [
                (
                    h.rank,
                    h.score,
                    h.chunk.document_id,
                    h.chunk.title,
                    h.chunk.page,
                    h.chunk.start,
                    h.chunk.end,
                    h.chunk.text,
                )
                for h in hits
            ]

    hits = asyncio.run(run())
    if not hits:
        console.print("[dim]no matches[/]")
    for rank, score, doc_id, title, page, start, end, text in hits:
        console.print(
            f"[bold]{rank}.[/] [cyan]{shown(title)}[/] p.{page} [{start}:{end}] "
            f"[dim]{doc_id} score {score:.3f}[/]"
        )
        snippet = " ".join(text.split())
        console.print(f"   {escape(snippet[:300])}{'...' if len(snippet) > 300 else ''}")
