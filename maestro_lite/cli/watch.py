"""``maestro watch DIR`` (ingest new and changed files as they settle, and start a pipeline
on them) and ``maestro watches list|remove``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from ..scheduling import Watch
from ._app import MaestroGroup, app
from ._common import console, load_settings
from ._jobargs import ThenCommand, describe_job, job_from_args
from .schedule import open_schedules, print_rows
from .worker import serve

watches_app = typer.Typer(
    help="The folders `maestro worker` watches.", no_args_is_help=True, cls=MaestroGroup
)
app.add_typer(watches_app, name="watches")


@app.command("watch", cls=ThenCommand)
def watch_command(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="The folder to watch (recursively)."),
    corpus: str = typer.Option(..., "--corpus", "-c", help="The corpus files go into."),
    name: str | None = typer.Option(
        None, "--name", help="The watch's name (default: the folder's); triggers follow it."
    ),
    per_batch: bool = typer.Option(
        False, "--per-batch", help="One job per batch of files ({files}), not one per file."
    ),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Take files deleted from the folder off the corpus (kept and reported without).",
    ),
    save: bool = typer.Option(
        False, "--save", help="Only save the watch for `maestro worker`; do not watch now."
    ),
    settle: float = typer.Option(
        2.0, "--settle", help="Seconds a file must stay unchanged before it is read.", min=0.0
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="provider:model to use."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print every run event."),
) -> None:
    """Ingest new and changed files of DIR into a corpus as they settle; with
    `--then PIPELINE ARGS...`, start that pipeline on each ({file}) or on each batch.

    Files that arrived while nothing watched are picked up at start; a file that cannot be
    read is reported and the watch goes on. Runs until Ctrl-C or SIGTERM, unless --save.

    Example: maestro watch ./inbox --corpus inbox --then research "Summarise {file}"
    """
    then: list[str] = ctx.meta.get("then", [])
    watch = Watch.create(
        directory,
        corpus=corpus,
        name=name,
        job=job_from_args(then) if then else None,
        per="batch" if per_batch else "file",
        prune=prune,
    )
    with open_schedules() as store:
        store.add_watch(watch, replace=True)
    starts = f"; then {escape(describe_job(watch.job))}" if watch.job else ""
    console.print(
        f"watch [bold]{escape(watch.name)}[/]: {escape(watch.directory)} -> corpus "
        f"{escape(corpus)}{starts}"
    )
    if save:
        console.print("[dim]saved; `maestro worker` watches it[/]")
        return
    serve(
        load_settings(model), schedules=False, watches=[watch.name], settle=settle, verbose=verbose
    )


@watches_app.command("list")
def list_watches() -> None:
    """The watched folders and what they start."""
    with open_schedules() as store:
        watches = store.watches()
        seen = {w.name: store.seen_files(w.name) for w in watches}
    print_rows(
        ("name", "folder", "corpus", "files seen", "failed", "deleted files", "then"),
        (
            (
                escape(w.name),
                escape(w.directory),
                escape(w.corpus),
                str(len(seen[w.name])),
                str(sum(f.status == "failed" for f in seen[w.name].values())),
                "pruned" if w.prune else "kept",
                escape(describe_job(w.job)) if w.job else "-",
            )
            for w in watches
        ),
        empty="no watched folders yet (`maestro watch DIR --corpus NAME --save`)",
    )


@watches_app.command("remove")
def remove_watch(name: str = typer.Argument(..., help="The watch.")) -> None:
    """Stop watching a folder (its documents stay in the corpus)."""
    with open_schedules() as store:
        store.remove_watch(name)
    console.print(f"removed watch {escape(name)}")
