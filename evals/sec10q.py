"""Questions over 20 real SEC 10-Q filings (docugami KG-RAG): the comparison pipeline for
multi-document questions, the research pipeline for single-document ones.

Every filing is ingested once into one corpus. Each question names its source filings with a
pattern (``*AAPL*``: Apple's four filings; ``*2023 Q3 NVDA*``: one filing):

* multi-document questions go to :class:`pipelines.compare.Compare`, the question as the one
  aspect: one step per filing (document filter, ``k`` chunks), then a comparison;
* single-document questions go to :class:`pipelines.research.Research` with a declared one-step
  plan filtered to the filing (a long filing is searched, never read whole).

Correctness: the key figures of the reference answer (amounts with their units normalised,
percentages) found in the answer, as a share per question; a question is *correct* when every
reference figure is found. Signs count: a figure written negative ("-5%", "(5)%", "$(1.2)
billion") or with a decline/decrease/loss word does not match the opposite sign when the
reference states one; a figure whose sign neither states matches by magnitude (see
``evals.qa_metrics``). Beside that recall, *figure precision*: the share of the answer's own
figures that appear among the figures of the evidence it cites or of the reference
(micro-averaged over figures), so extra figures the sources do not back are visible; it needs
the cited quotes, which records keep since this metric exists (older cached items count for
recall only). Scores are computed from the stored answer text each time, so a scoring change
re-scores cached items without a model call. References without figures are scored only by
the LLM judge, which runs when ``--judge provider:model`` is given (a model stronger than the
one under test). Figures are reported per question type (multi-doc, single-doc single-chunk,
multi-chunk).

Run: ``python -m evals.sec10q --limit 30`` or ``maestro eval sec10q --limit 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from maestro_lite import (
    Budget,
    ChatModel,
    Corpus,
    DocumentInfo,
    Maestro,
    Message,
    Plan,
    Requirement,
    SearchFilter,
    Settings,
    Step,
    generate,
)
from maestro_lite.models import parse_model_spec
from pipelines import Compare, Comparison, Research, ResearchReport

from .common import eval_embedder
from .datasets import require, sec10q_pdfs
from .harness import (
    ItemCache,
    ScopedRetriever,
    Stopwatch,
    add_common_arguments,
    eval_model,
    markdown_table,
    publish,
    settings_from_args,
    step_logger,
    store_settings,
)
from .qa_metrics import figure_recall, figure_support, normalize_space

__all__ = ["Question", "load_questions", "main", "run", "select"]

PROMPT_VERSION = 1
K_PER_FILING = 3
"""Chunks per filing for a multi-document question."""
K_SINGLE = 5
"""Chunks for a single-document question."""

QuestionType = Literal["multi-doc", "single-chunk", "multi-chunk"]
_TYPES: dict[str, QuestionType] = {
    "Multi-Doc RAG": "multi-doc",
    "Single-Doc Single-Chunk RAG": "single-chunk",
    "Single-Doc Multi-Chunk RAG": "multi-chunk",
}


@dataclass(frozen=True)
class Question:
    """One question of ``qna.csv``."""

    id: str
    question: str
    pattern: str
    """Which filings it is about, as a file-name pattern (``*AAPL*``)."""
    type: QuestionType
    chunk_type: str
    answer: str


def load_questions(data_dir: Path) -> list[Question]:
    """The questions of ``sec10q/qna.csv``, with ids ``q01``... in file order."""
    path = require(data_dir / "sec10q" / "qna.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Question(
            id=f"q{n:02d}",
            question=row["Question"].strip(),
            pattern=row["Source Docs"].strip(),
            type=_TYPES.get(row["Question Type"].strip(), "single-chunk"),
            chunk_type=row["Source Chunk Type"].strip(),
            answer=row["Answer"].strip(),
        )
        for n, row in enumerate(rows, start=1)
    ]


def select(questions: Sequence[Question], limit: int) -> list[Question]:
    """``limit`` questions, the same number of each type as far as possible, in file order
    within a type (a plain prefix of the file would be all multi-document questions)."""
    by_type: dict[QuestionType, list[Question]] = {}
    for q in questions:
        by_type.setdefault(q.type, []).append(q)
    chosen: list[Question] = []
    depth = 0
    while len(chosen) < limit and any(depth < len(v) for v in by_type.values()):
        for group in by_type.values():
            if depth < len(group) and len(chosen) < limit:
                chosen.append(group[depth])
        depth += 1
    return sorted(chosen, key=lambda q: q.id)


def filings_for(pattern: str, documents: Sequence[DocumentInfo]) -> list[DocumentInfo]:
    """The filings a pattern names, oldest first (file names start with the period)."""
    matched = [d for d in documents if fnmatch.fnmatch(Path(d.path).name, pattern)]
    return sorted(matched, key=lambda d: Path(d.path).name)


class _Verdict(BaseModel):
    reason: str = Field(description="One sentence")
    verdict: Literal["correct", "partially correct", "incorrect"]


_JUDGE_SCORES = {"correct": 1.0, "partially correct": 0.5, "incorrect": 0.0}


async def judge(model: ChatModel, question: Question, answer: str) -> tuple[float, str]:
    """An LLM's verdict on ``answer`` against the reference."""
    completion = await generate(
        model,
        [
            Message.system(
                "You grade answers about SEC filings against a reference answer. Judge facts "
                "and figures, not wording; an answer missing key figures is partially correct."
            ),
            Message.user(
                f"Question: {question.question}\n\nReference answer:\n{question.answer}\n\n"
                f"Answer to grade:\n{answer}"
            ),
        ],
        output_type=_Verdict,
    )
    verdict = completion.output
    return _JUDGE_SCORES[verdict.verdict], verdict.reason


def _comparison_text(comparison: Comparison) -> str:
    parts = [comparison.summary]
    for aspect in comparison.aspects:
        parts += [f"{p.title}: {p.says}" for p in aspect.positions if p.says]
    return "\n".join(p for p in parts if p)


async def answer(
    question: Question,
    filings: Sequence[DocumentInfo],
    *,
    maestro: Maestro,
    corpus: Corpus,
) -> tuple[str, dict[str, Any]]:
    """The pipeline's answer text and its run figures."""
    if len(filings) > 1:
        comparison = await Compare(maestro, k=K_PER_FILING, budget="low").run(
            question.question,
            corpus=corpus,
            documents=list(filings),
            aspects=[question.question],
        )
        text = _comparison_text(comparison)
        cited = [
            c
            for a in comparison.aspects
            for p in a.positions
            for cl in p.claims
            for c in cl.citations
        ]
        claims = [cl for a in comparison.aspects for cl in a.claims] + comparison.summary_claims
        quoted = [*cited, *(c for cl in claims for c in cl.citations)]
        usage, status, error = comparison.usage, comparison.status, comparison.error
        seconds = comparison.wall_seconds
    else:
        plan = Plan(
            steps=[
                Step(
                    id="answer",
                    instruction=question.question,
                    queries=[question.question],
                    filters=SearchFilter(document_ids=[filings[0].id]),
                    k=K_SINGLE,
                )
            ]
        )
        report: ResearchReport = await Research(
            maestro,
            requirements=[Requirement.cite_every_claim()],
            budget=Budget(max_rounds=1, max_requests=3),
        ).run(question.question, corpus=ScopedRetriever(corpus, [filings[0].id]), plan=plan)
        text = report.answer + "\n" + "\n".join(c.text for c in report.claims)
        cited = quoted = report.citations
        usage, status, error = report.usage, report.status, report.error
        seconds = report.wall_seconds
    return text, {
        "status": status,
        "error": error,
        "citations": len(cited),
        "cited_filings": sorted({c.document_id for c in cited} & {f.id for f in filings}),
        "evidence": list(dict.fromkeys(c.quote for c in quoted)),
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "seconds": round(seconds, 1),
    }


def score_answer(answer: str, reference: str, evidence: Sequence[str] | None) -> dict[str, Any]:
    """The figure scores of one answer, from its text (and the quotes it cites, when the
    record kept them): recomputed for cached items too, so a change of the scoring needs no
    new model call."""
    supported, stated = (
        figure_support(answer, [*evidence, reference]) if evidence is not None else (None, None)
    )
    return {
        "figure_recall": figure_recall(answer, reference),
        "figures_stated": stated,
        "figures_supported": supported,
    }


class Row(BaseModel):
    type: str
    items: int
    with_figures: int
    figure_recall: float | None
    correct: float | None
    """Share of questions with figures whose every reference figure was found."""
    figure_precision: float | None
    """Share of the answers' figures found in their cited evidence or the reference (micro
    over figures, items that kept their evidence); ``None`` when none stated a figure."""
    judge: float | None
    cited_filing_share: float
    calls_per_item: float
    seconds_per_item: float
    failed: int


def aggregate(type_: str, records: Sequence[dict[str, Any]]) -> Row:
    """Mean figures over the questions of one type."""
    n = len(records)
    figured = [r for r in records if r["figure_recall"] is not None]
    judged = [r for r in records if r.get("judge") is not None]
    stated = sum(r.get("figures_stated") or 0 for r in records)
    supported = sum(r.get("figures_supported") or 0 for r in records)
    return Row(
        type=type_,
        items=n,
        with_figures=len(figured),
        figure_recall=sum(r["figure_recall"] for r in figured) / len(figured) if figured else None,
        correct=sum(r["figure_recall"] == 1.0 for r in figured) / len(figured) if figured else None,
        figure_precision=supported / stated if stated else None,
        judge=sum(r["judge"] for r in judged) / len(judged) if judged else None,
        cited_filing_share=(
            sum(len(r["cited_filings"]) / max(1, r["filings"]) for r in records) / n if n else 0.0
        ),
        calls_per_item=sum(r["requests"] for r in records) / n if n else 0.0,
        seconds_per_item=sum(r["seconds"] for r in records) / n if n else 0.0,
        failed=sum(r["status"] == "failed" for r in records),
    )


class Summary(BaseModel):
    model: str
    judge_model: str | None
    rows: list[Row]
    seconds: float
    ingest_seconds: float


async def run(
    settings: Settings,
    *,
    limit: int = 30,
    fresh: bool = False,
    model: ChatModel | None = None,
    judge_model: ChatModel | None = None,
    log: bool = True,
) -> Summary:
    """Ingest the filings (once) and answer ``limit`` questions."""
    clock = Stopwatch()
    chat = model or eval_model(settings)
    maestro = Maestro(
        chat, concurrency=1, output_tokens=512, on_event=step_logger() if log else None
    )
    questions = select(load_questions(settings.data_dir), limit)
    stores = store_settings(settings)
    corpus = await Corpus.open("sec10q", settings=stores, embedder=eval_embedder(settings))
    ingest_clock = Stopwatch()
    report = await corpus.ingest(sec10q_pdfs(settings.data_dir))
    ingest_seconds = ingest_clock.seconds
    if log:
        print(f"[ingest] {report.summary()} in {ingest_seconds:.0f}s", flush=True)
    documents = await corpus.documents()
    config = {
        "model": chat.name,
        "version": PROMPT_VERSION,
        "k": [K_PER_FILING, K_SINGLE],
        "judge": judge_model.name if judge_model else None,
    }
    cache = ItemCache(settings.cache_dir / "evals", "sec10q", config, fresh=fresh)
    records: list[dict[str, Any]] = []
    for number, question in enumerate(questions, start=1):
        record = cache.get(question.id)
        if record is None:
            filings = filings_for(question.pattern, documents)
            if not filings:
                text, figures = "", {"status": "failed", "error": "no filing matches"}
            else:
                text, figures = await answer(question, filings, maestro=maestro, corpus=corpus)
            score, reason = (None, None)
            if judge_model is not None and text:
                score, reason = await judge(judge_model, question, text)
            record = cache.add(
                question.id,
                {
                    "type": question.type,
                    "question": question.question,
                    "filings": len(filings),
                    "answer": text,
                    "judge": score,
                    "judge_reason": reason,
                    **{"cited_filings": [], "requests": 0, "seconds": 0.0, **figures},
                },
            )
        # Scored from the stored text every time: cached items follow the current scoring.
        record = {
            **record,
            **score_answer(record["answer"], question.answer, record.get("evidence")),
        }
        records.append(record)
        if log:
            recall = record["figure_recall"]
            print(
                f"[sec10q {number}/{len(questions)} {record['type']}] "
                f"figures={'-' if recall is None else f'{recall:.2f}'} "
                f"{record['seconds']:.0f}s {normalize_space(record['answer'])[:80]!r}",
                flush=True,
            )
    await corpus.close()
    types: list[str] = ["multi-doc", "single-chunk", "multi-chunk"]
    rows = [aggregate(t, [r for r in records if r["type"] == t]) for t in types]
    rows.append(aggregate("all", records))
    return Summary(
        model=chat.name,
        judge_model=judge_model.name if judge_model else None,
        rows=rows,
        seconds=clock.seconds,
        ingest_seconds=ingest_seconds,
    )


def table(summary: Summary) -> list[str]:
    """The summary as a Markdown table."""
    headers = [
        "question type",
        "items",
        "with figures",
        "figure recall",
        "all figures found",
        "figure precision",
        "LLM judge",
        "source filings cited",
        "calls/item",
        "s/item",
        "failed",
    ]
    return markdown_table(
        headers,
        [
            [
                r.type,
                r.items,
                r.with_figures,
                r.figure_recall,
                r.correct,
                r.figure_precision,
                r.judge,
                r.cited_filing_share,
                f"{r.calls_per_item:.1f}",
                f"{r.seconds_per_item:.0f}",
                r.failed,
            ]
            for r in summary.rows
        ],
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: run, print the table, append it to BENCHMARKS.md."""
    parser = argparse.ArgumentParser(
        prog="python -m evals.sec10q",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, limit=30)
    parser.add_argument("--judge", help="provider:model of an LLM judge (e.g. openai:gpt-4o)")
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    judge_model = eval_model(parse_model_spec(args.judge, settings)) if args.judge else None
    summary = asyncio.run(
        run(settings, limit=args.limit, fresh=args.fresh, judge_model=judge_model)
    )
    publish(
        args,
        summary,
        table(summary),
        title="SEC 10-Q questions: compare and research pipelines",
        model=summary.model,
        data=f"{settings.data_dir}/sec10q: 20 filings, {args.limit} of the 98 questions "
        "(equal numbers per question type, file order)",
        seconds=summary.seconds,
        notes=[
            "figure recall: share of the reference answer's key figures (amounts with units "
            "normalised, percentages; years and small counts left out) stated in the answer, "
            "signs included (a decline is not a growth of the same size)",
            "figure precision: share of the figures the answers state that appear in the "
            "evidence they cite or in the reference (micro over figures; items cached before "
            "the cited quotes were kept are left out)",
            f"ingestion of the 20 filings: {summary.ingest_seconds:.0f}s (0 when already "
            "ingested by an earlier run)",
            f"multi-doc: Compare, one step per filing (k={K_PER_FILING}) + one comparison; "
            f"single-doc: Research with a one-step plan filtered to the filing (k={K_SINGLE})",
            "LLM judge: " + (summary.judge_model or "not configured (pass --judge)"),
        ],
    )


if __name__ == "__main__":
    main()
