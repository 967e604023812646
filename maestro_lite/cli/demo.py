"""``maestro demo``: the main job on the offline defaults.

It ingests the project's research sample documents (``sample_docs/research``: a test report,
memos, a news article that contradicts the launch memo) and runs the research pipeline on a
question whose two sources disagree, with the local model: live progress, then a report in which
every claim cites document, page and exact quote, each quote checked against the stored text.

It is the real loop on a small budget: the answer is validated (citations, figures, dates,
the sources' disagreement) and a failed check gets one fix round with the failure in its
prompt. The run is recorded like any other: ``maestro runs show ID`` and ``maestro resume ID``
know the id it prints.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from pipelines import Research, ResearchReport, ingest_documents

from ..budget import Budget
from ..errors import UserError
from ..orchestrator import Maestro
from ._app import app
from ._checks import output_folder
from ._common import NO_CACHE, console, durable, err_console, load_settings, open_model
from .render import EventPrinter

DEMO_QUESTION = "When will the Skylark S3 drone launch?"
DEMO_CORPUS = "sample-research"
DEMO_BUDGET = Budget.preset("low", max_rounds=2)
"""Two rounds: the answer, and one fix if a check fails."""


def sample_docs() -> Path:
    """``sample_docs/`` of the checkout this package runs from (or of the current folder)."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "sample_docs" / "research").is_dir():
            return root / "sample_docs"
    raise UserError(
        "sample_docs/research not found",
        hint="Run the demo from a checkout of maestro-lite, or pass --docs FOLDER.",
    )


@app.command()
def demo(
    question: str = typer.Option(DEMO_QUESTION, "--question", "-q", help="What to ask."),
    docs: Path | None = typer.Option(
        None,
        "--docs",
        "-d",
        help="Folder to research (default: sample_docs/research).",
        exists=True,
        file_okay=False,
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Also write research.md and research.json here.",
        callback=output_folder,
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="provider:model to use."),
    no_cache: bool = NO_CACHE,
) -> None:
    """Research a question over the sample documents with the local model, cited and checked."""
    settings = load_settings(model)
    chat = open_model(settings)  # first: a misconfigured model fails before any work
    folder = docs or sample_docs() / "research"
    console.print(f"[bold]model[/]    {escape(chat.name)}")
    console.print(f"[bold]question[/] {escape(question)}")

    async def work(kwargs: dict[str, Any]) -> ResearchReport:
        documents = await ingest_documents(
            [folder], corpus=DEMO_CORPUS if docs is None else None, settings=settings
        )
        err_console.print(
            f"[dim]corpus {documents.corpus.name}: {len(documents.documents)} document(s) "
            f"from {escape(str(folder))}[/]"
        )
        maestro = Maestro(chat, on_event=EventPrinter(err_console), output_tokens=512, **kwargs)
        try:
            # One cited step, validated, and one fix round if a check fails: minutes on two
            # cores (the small model splits even simple questions when asked to).
            research = Research(maestro, budget=DEMO_BUDGET, max_sub_questions=1)
            return await research.run(question, corpus=documents.corpus)
        finally:
            await documents.corpus.close()

    with durable(settings) as kwargs:
        if no_cache:
            kwargs["cache"] = None
        report = asyncio.run(work(kwargs))
    console.rule("report")
    console.print(report.to_markdown(), highlight=False, markup=False)
    checks = [r for r in report.requirements if r.id.endswith(".citations")]
    verified = all(r.passed for r in checks)
    console.print(
        f"[bold]{len(report.citations)} citation(s)[/] in the answer; quotes checked against "
        "the stored source text: " + ("[green]all verified[/]" if verified else "[red]FAILED[/]")
    )
    if out is not None:
        markdown, data = report.write(out)
        console.print(f"wrote {markdown} and {data}")
    if report.run_id:
        console.print(f"recorded: [bold]maestro runs show {report.run_id}[/]")
    if report.status == "failed" or not verified:
        raise typer.Exit(1)
