"""Earnings-call summaries on Microsoft's transcripts: are the bullets' figures grounded, and
does the summary answer the questions people ask about the call?

Each transcript (``earnings_calls/msft/Transcript<QUARTER>.txt``, FY24Q4 by default) is
ingested into the eval corpus and summarized by :class:`pipelines.Summarize` with its
default sections and budget.

* **Figure precision**: of the figures the bullets state (amounts, percentages, dates; as
  :func:`maestro_lite.ungrounded_figures` finds them, single-digit counts left out), the
  share that appears in the sentences the bullet cites. Micro-averaged over figures, takeaway
  bullets included. An uncited bullet's figures are all ungrounded.
* **Questions answered** (the transcript the questions are about only: FY24Q4 for
  ``MSFT_Single_Transcript_Questions.csv``, which has no reference answers): decided
  without a model. A question's *key terms* are its words of three letters or more, less
  question words, stop words and the names of the company and its speakers (see
  ``_IGNORED``). A bullet answers the question when it contains at least 60% of the key
  terms (a term matches a word of the bullet when one is a prefix of the other, four letters
  at least: ``grow``/``growth``), every name the question capitalises (``Azure``,
  ``LinkedIn``: a bullet on Gaming does not answer a question on LinkedIn) and, when the
  question asks for an amount (it names revenue or expenses), a figure. The report lists each
  question with the bullet that answered it, so the decision can be read and disputed.

Run: ``python -m evals.summaries`` (the newest transcript, FY24Q4; ``--limit 3`` for the
three newest, ``--transcripts FY24Q4 FY23Q4`` to name them).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from maestro_lite import (
    BudgetPreset,
    ChatModel,
    Corpus,
    Maestro,
    Settings,
    ungrounded_figures,
)
from pipelines import DEFAULT_SECTIONS, Summarize, SummaryReport

from .common import eval_embedder
from .datasets import DataMissing, require
from .harness import (
    ItemCache,
    Stopwatch,
    add_common_arguments,
    eval_model,
    markdown_table,
    publish,
    settings_from_args,
    step_logger,
    store_settings,
)

__all__ = [
    "Question",
    "answered_by",
    "decidable",
    "key_terms",
    "load_questions",
    "main",
    "names",
    "newest",
    "run",
    "score",
]

VERSION = 2
QUESTIONS_FILE = "MSFT_Single_Transcript_Questions.csv"
QUESTIONS_ABOUT = "FY24Q4"
"""The transcript the single-transcript questions are about (Activision, Copilot, FY24)."""
SHARE = 0.6
"""Share of a question's key terms a bullet must contain to answer it."""

_IGNORED = set(
    """what which who whom whose when where why how does did do done is are was were be been
    the and for with from into onto about as per according this that these those there their
    they them its it's his her our your you has have had can could would should will shall
    may might any all each some more most other than then also just very mentioned mention
    mentions say says said talk talks call during give generate detailed summary consisting
    key take aways away cateogaries cateogary cateogories categories category main themes
    microsoft microsoft's satya nadella nadella's amy hood hood's keith bachman statement
    respond responds question questions regarding part sector reported discuss make taken
    having ask asks two""".split()
)
_FIGURE_TERMS = ("revenue", "expenses")


@dataclass(frozen=True)
class Question:
    """One question of the CSV."""

    id: str
    text: str


def newest(data_dir: Path, count: int) -> list[str]:
    """The ``count`` latest quarters with a transcript (``FY24Q4`` first)."""
    folder = require(data_dir / "earnings_calls" / "msft")
    names = sorted(p.stem.removeprefix("Transcript") for p in folder.glob("Transcript*.txt"))
    return names[::-1][:count]


def load_questions(data_dir: Path) -> list[Question]:
    """The single-transcript questions (blank rows left out)."""
    path = require(data_dir / "earnings_calls" / QUESTIONS_FILE)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Question(id=r["question_id"], text=" ".join(r["question_text"].split()))
        for r in rows
        if r["question_text"].strip()
    ]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z0-9'&]*", text.lower())


def key_terms(question: str) -> list[str]:
    """The words of ``question`` that an answer must share (see the module docstring)."""
    words = [w.removesuffix("'s") for w in _words(question)]
    kept = (w for w in words if (len(w) >= 3 or w == "ai") and w not in _IGNORED)
    return list(dict.fromkeys(kept))


def names(question: str) -> list[str]:
    """The key terms ``question`` capitalises after its first word (products, segments,
    companies: ``Azure``, ``LinkedIn``, ``Intelligent Cloud``): an answer must name them all."""
    written = re.findall(r"\b[A-Z][A-Za-z0-9'&]*", question.split(maxsplit=1)[-1])
    terms = set(key_terms(question))
    return [t for t in key_terms(" ".join(written)) if t in terms]


def _matches(term: str, words: set[str]) -> bool:
    return any(
        w == term or (min(len(w), len(term)) >= 4 and (w.startswith(term) or term.startswith(w)))
        for w in words
    )


def answered_by(question: str, bullets: Sequence[str]) -> str | None:
    """The first bullet that answers ``question``, or ``None`` (also for a question without
    key terms: see :func:`decidable`)."""
    terms = key_terms(question)
    if not terms:
        return None
    wants_figure = any(t.startswith(_FIGURE_TERMS) for t in terms)
    required = names(question)
    for bullet in bullets:
        words = {w.removesuffix("'s") for w in _words(bullet)}
        found = sum(_matches(t, words) for t in terms)
        named = all(_matches(t, words) for t in required)
        has_figure = bool(ungrounded_figures(bullet, []))
        if named and found >= SHARE * len(terms) and (has_figure or not wants_figure):
            return bullet
    return None


def decidable(question: str) -> bool:
    """Whether the term rule can decide ``question`` (it has key terms). One question asks
    for "the main themes" Amy Hood talks about: nothing in it names what an answer holds."""
    return bool(key_terms(question))


def score(report: SummaryReport) -> dict[str, Any]:
    """Figure counts and bullet counts of a summary (see the module docstring)."""
    bullets = report.bullets
    stated = sum(len(ungrounded_figures(b.text, [])) for b in bullets)
    loose = sum(len(b.ungrounded) for b in bullets)
    return {
        "bullets": len(bullets),
        "cited": sum(bool(b.citations) for b in bullets),
        "figures": stated,
        "grounded": stated - loose,
        "ungrounded": report.ungrounded,
    }


class Row(BaseModel):
    transcript: str
    status: str
    bullets: int
    cited: int
    figures: int
    figure_precision: float | None
    answered: int | None
    questions: int | None
    calls: int
    seconds: float


class Summary(BaseModel):
    model: str
    rows: list[Row]
    answers: dict[str, str | None]
    """Question id -> the bullet that answered it (the questions' transcript)."""
    seconds: float


async def summarize(
    transcript: Path, *, corpus: Corpus, maestro: Maestro, budget: BudgetPreset = "low"
) -> tuple[SummaryReport, float]:
    """Ingest (once) and summarize one transcript."""
    clock = Stopwatch()
    await corpus.ingest([transcript])
    report = await Summarize(maestro, budget=budget).run(corpus=corpus, document=str(transcript))
    return report, clock.seconds


async def run(
    settings: Settings,
    transcripts: Sequence[str],
    *,
    fresh: bool = False,
    model: ChatModel | None = None,
    out: Path | None = None,
    budget: BudgetPreset = "low",
    log: bool = True,
) -> Summary:
    """Summarize ``transcripts`` (``FY24Q4``...) and score them."""
    clock = Stopwatch()
    folder = require(settings.data_dir / "earnings_calls" / "msft")
    files = [require(folder / f"Transcript{name}.txt") for name in transcripts]
    questions = load_questions(settings.data_dir)
    chat = model or eval_model(settings)
    maestro = Maestro(chat, concurrency=1, on_event=step_logger() if log else None)
    corpus = await Corpus.open(
        "earnings-msft", settings=store_settings(settings), embedder=eval_embedder(settings)
    )
    config: dict[str, Any] = {
        "model": chat.name,
        "version": VERSION,
        "sections": list(DEFAULT_SECTIONS),
    }
    if budget != "low":  # runs made before the option keep their cache
        config["budget"] = budget
    cache = ItemCache(settings.cache_dir / "evals", "summaries", config, fresh=fresh)
    rows: list[Row] = []
    answers: dict[str, str | None] = {}
    try:
        for name, path in zip(transcripts, files, strict=True):
            record = cache.get(name)
            if record is None:
                report, seconds = await summarize(
                    path, corpus=corpus, maestro=maestro, budget=budget
                )
                record = cache.add(
                    name, {"report": report.model_dump(mode="json"), "seconds": seconds}
                )
            report = SummaryReport.model_validate(record["report"])
            if out is not None:
                report.write(out / name)
            counts = score(report)
            texts = [b.text for b in report.bullets]
            about = name == QUESTIONS_ABOUT
            if about:
                answers = {q.id: answered_by(q.text, texts) for q in questions if decidable(q.text)}
            rows.append(
                Row(
                    transcript=name,
                    status=report.status,
                    bullets=counts["bullets"],
                    cited=counts["cited"],
                    figures=counts["figures"],
                    figure_precision=counts["grounded"] / counts["figures"]
                    if counts["figures"]
                    else None,
                    answered=sum(a is not None for a in answers.values()) if about else None,
                    questions=len(answers) if about else None,
                    calls=report.usage.requests,
                    seconds=record["seconds"],
                )
            )
            if log:
                print(f"[summaries {name}] {report.status}, {counts}", flush=True)
    finally:
        await corpus.close()
    return Summary(model=chat.name, rows=rows, answers=answers, seconds=clock.seconds)


def table(summary: Summary) -> list[str]:
    """The summary as a Markdown table."""
    headers = [
        "transcript",
        "status",
        "bullets",
        "cited",
        "figures",
        "figure precision",
        "questions answered",
        "calls",
        "s",
    ]
    return markdown_table(
        headers,
        [
            [
                r.transcript,
                r.status,
                r.bullets,
                r.cited,
                r.figures,
                r.figure_precision,
                f"{r.answered}/{r.questions}" if r.questions else None,
                r.calls,
                f"{r.seconds:.0f}",
            ]
            for r in summary.rows
        ],
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: run, print the table, append it to BENCHMARKS.md."""
    parser = argparse.ArgumentParser(
        prog="python -m evals.summaries",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, limit=1)  # --limit: the newest transcripts
    parser.add_argument("--transcripts", nargs="+", help="e.g. FY24Q4 FY24Q3 (not --limit)")
    parser.add_argument("--out", type=Path, help="write each summary.md/.json under OUT/NAME")
    parser.add_argument(
        "--budget", choices=["low", "medium", "high"], default="low", help="Summarize's budget"
    )
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    try:
        names = args.transcripts or newest(settings.data_dir, args.limit)
        summary = asyncio.run(
            run(settings, names, fresh=args.fresh, out=args.out, budget=args.budget)
        )
    except DataMissing as exc:
        print(f"skipped: {exc} ({exc.hint})")
        return
    answered = [f"{q} ({'yes' if a else 'no'})" for q, a in summary.answers.items()]
    publish(
        args,
        summary,
        table(summary),
        title="Earnings-call summaries (MSFT transcripts)",
        model=summary.model,
        data=f"{settings.data_dir}/earnings_calls/msft: {', '.join(names)}; "
        f"{QUESTIONS_FILE} ({len(summary.answers)} questions the term rule can decide, "
        f"about {QUESTIONS_ABOUT})",
        seconds=summary.seconds,
        notes=[
            "figure precision: share of the figures the bullets state (amounts, percentages, "
            "dates; single-digit counts left out) found in the sentences the bullet cites",
            "questions answered: a bullet holds at least 60% of the question's key terms "
            "(question words, stop words and speaker names left out), every name it "
            "capitalises (Azure, LinkedIn...) and, for a question "
            "about revenue or expenses, a figure; deterministic, no judge. "
            "Per question: " + ", ".join(answered),
            f"pipeline: Summarize defaults, {len(DEFAULT_SECTIONS)} sections + takeaways, "
            f"budget {args.budget} (low: one round; medium: a step whose check failed is "
            "asked again with the failure), k=3 chunks per query, 2 queries per section",
        ],
    )


if __name__ == "__main__":
    main()
