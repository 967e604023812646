"""Multi-hop research answers on HotpotQA and MuSiQue: the research pipeline against a
single-shot RAG baseline with the same model and retriever.

Each question is answered over its own paragraphs (10 for HotpotQA, 20 for MuSiQue, the
distractor setting), through a retriever scoped to them. Three systems:

* ``pipeline``: :class:`pipelines.research.Research`: the model splits the question into
  sub-questions, each step retrieves and answers one with cited evidence (seeing the answers
  before it), and a final step retrieves with the whole question and answers;
* ``queries``: the same pipeline with ``sub_question_use="queries"``: the sub-questions only
  widen retrieval (``QUERIES_K`` chunks per query), and one step answers the question from
  everything found, with no intermediate answers to build on;
* ``hops``: ``sub_question_use="hops"`` (IRCoT-style): one short call names the entity the
  question hinges on from what the question retrieves, and one step answers from what the
  question and that entity retrieve (``HOPS_K`` chunks per query);
* ``baseline``: one retrieval with the question, one answer (a one-step declared plan).

All give their final answer through the same typed output (``ShortAnswer``, cited), so the
comparison isolates the orchestration. Metrics: exact match and token F1 against ``answer``
and ``answer_aliases``; citation precision (share of the answer's citations whose quote lies
in a gold supporting paragraph, micro-averaged over citations); supporting-document recall
(share of gold paragraphs the answer cites, and the share any step retrieved).

Run: ``python -m evals.multihop_qa --dataset hotpotqa --limit 30`` or
``maestro eval multihop --dataset hotpotqa --limit 30``. Results per item are cached as
they finish, so an interrupted run resumes; the table is appended to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from maestro_lite import Budget, ChatModel, Corpus, Maestro, Plan, Requirement, RunResult, Settings
from pipelines import Research, ResearchReport

from .common import eval_embedder
from .datasets import MultihopQuestion, load_hotpotqa, load_musique, paragraph_document, require
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
from .qa_metrics import (
    citation_precision,
    exact_match,
    normalize_space,
    supporting_recall,
    token_f1,
)

__all__ = ["PIPELINE_BUDGET", "ShortAnswer", "load_answers", "main", "run"]

Dataset = Literal["hotpotqa", "musique"]
System = Literal["pipeline", "queries", "hops", "baseline"]
SYSTEMS: tuple[System, ...] = ("baseline", "pipeline", "queries", "hops")

VERSIONS: dict[str, int] = {"baseline": 1, "pipeline": 4, "queries": 1, "hops": 1}
"""Bump a system's version when its prompts or settings change: cached results of the old
version are then not mixed with new ones (the other system's stay valid)."""

PIPELINE_BUDGET = Budget(max_rounds=1, max_requests=8, max_tokens=60_000)
"""One round of at most three sub-question steps and the final step (plus the decomposition
call): about four calls of the local 1.5B model, what a few minutes per question on two CPU
cores allows."""

BASELINE_K = 6
"""Chunks the baseline retrieves in its one search: more than any single pipeline step
(k=4), so the baseline is not starved of evidence."""


QUERIES_K = 3
"""Chunks per query of the ``queries`` system: with the question and up to three
sub-questions, about as many distinct chunks as the baseline's six, found by more queries."""


HOPS_K = 4
"""Chunks per query of the ``hops`` system (the hop's own search and each of the final
step's two searches)."""


class ShortAnswer(BaseModel):
    """The final answer of every system."""

    answer: str = Field(
        description="Only the answer to the question: a name, date, number, yes or no, or a "
        "short phrase; no sentence"
    )


def load_answers(data_dir: Path, dataset: Dataset) -> dict[str, list[str]]:
    """Question id -> accepted answers (``answer`` first, then ``answer_aliases``)."""
    path = require(data_dir / "multihop" / f"{dataset}.jsonl")
    out: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        qid = record.get("_id") or record["id"]
        aliases = record.get("answer_aliases") or []
        out[qid] = [str(record["answer"]), *(str(a) for a in aliases)]
    return out


def _questions(data_dir: Path, dataset: Dataset) -> list[MultihopQuestion]:
    return load_hotpotqa(data_dir) if dataset == "hotpotqa" else load_musique(data_dir)


def _prediction(data: dict[str, Any] | None, text: str) -> str:
    if data is not None:
        # A typed answer left null ("not in the evidence") is no answer, not its JSON.
        answer = data.get("answer")
        return answer if isinstance(answer, str) else ""
    return text


def score_item(
    question: MultihopQuestion,
    golds: Sequence[str],
    report: ResearchReport,
    *,
    seconds: float,
) -> dict[str, Any]:
    """The metrics of one answered question."""
    ids = [paragraph_document(t, x).id for t, x in question.paragraphs]
    gold_ids = {ids[i] for i in question.supporting}
    gold_texts = [question.paragraphs[i][1] for i in question.supporting]
    prediction = _prediction(report.data, report.answer)
    quotes = [c.quote for c in report.citations]
    step_quotes = [c.quote for f in report.findings for cl in f.claims for c in cl.citations]
    precise = citation_precision(quotes, gold_texts)
    step_precise = citation_precision(step_quotes, gold_texts)
    u = report.usage
    return {
        "prediction": prediction,
        "golds": list(golds),
        "em": exact_match(prediction, golds),
        "f1": token_f1(prediction, golds),
        "citations": len(quotes),
        "precise_citations": round((precise or 0.0) * len(quotes)),
        "step_citations": len(step_quotes),
        "precise_step_citations": round((step_precise or 0.0) * len(step_quotes)),
        "cited_recall": supporting_recall({c.document_id for c in report.citations}, gold_ids),
        "retrieved_recall": supporting_recall({d.document_id for d in report.consulted}, gold_ids),
        "status": report.status,
        "error": report.error,
        "hops": [f.answer for f in report.findings if f.step_id.startswith("hop")],
        "steps": len(report.plan.steps) if report.plan else 0,
        "requests": u.requests,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "seconds": round(seconds, 1),
    }


async def answer(
    system: System,
    question: str,
    *,
    maestro: Maestro,
    retriever: ScopedRetriever,
) -> ResearchReport:
    """One system's answer to one question."""
    if system != "baseline":
        research = Research(
            maestro,
            requirements=[Requirement.cite_every_claim()],
            budget=PIPELINE_BUDGET,
            output_type=ShortAnswer,
            k={"queries": QUERIES_K, "hops": HOPS_K}.get(system, 4),
            sub_question_use="steps" if system == "pipeline" else system,
        )
        return await research.run(question, corpus=retriever)
    result: RunResult = await maestro.run(
        question,
        corpus=retriever,
        plan=Plan.single(question, k=BASELINE_K),
        budget=Budget(max_rounds=1, max_requests=3, max_tokens=30_000),
        output_type=ShortAnswer,
    )
    return ResearchReport.from_result(question, result)


class Row(BaseModel):
    """Aggregate figures of one system on one dataset."""

    dataset: str
    system: str
    items: int
    em: float
    f1: float
    citation_precision: float | None
    citations_per_item: float
    step_citation_precision: float | None
    cited_recall: float
    retrieved_recall: float
    calls_per_item: float
    seconds_per_item: float
    failed: int


def aggregate(dataset: str, system: str, records: Sequence[dict[str, Any]]) -> Row:
    """Mean figures over items; citation precision micro-averaged over citations."""
    n = len(records)

    def mean(key: str) -> float:
        return sum(float(r[key]) for r in records) / n if n else 0.0

    cited = sum(r["citations"] for r in records)
    step_cited = sum(r["step_citations"] for r in records)
    return Row(
        dataset=dataset,
        system=system,
        items=n,
        em=mean("em"),
        f1=mean("f1"),
        citation_precision=sum(r["precise_citations"] for r in records) / cited if cited else None,
        citations_per_item=cited / n if n else 0.0,
        step_citation_precision=(
            sum(r["precise_step_citations"] for r in records) / step_cited if step_cited else None
        ),
        cited_recall=mean("cited_recall"),
        retrieved_recall=mean("retrieved_recall"),
        calls_per_item=mean("requests"),
        seconds_per_item=mean("seconds"),
        failed=sum(r["status"] == "failed" for r in records),
    )


class Summary(BaseModel):
    model: str
    rows: list[Row]
    seconds: float


async def run(
    settings: Settings,
    *,
    datasets: Sequence[Dataset] = ("hotpotqa", "musique"),
    limit: int = 30,
    systems: Sequence[System] = SYSTEMS,
    fresh: bool = False,
    model: ChatModel | None = None,
    log: bool = True,
) -> Summary:
    """Answer the first ``limit`` questions of each dataset with each system.

    Args:
        settings: Data directory, model and store.
        model: The model (the one ``settings`` names when ``None``).
        log: Print a line per item.
    """
    clock = Stopwatch()
    chat = model or eval_model(settings)
    maestro = Maestro(
        chat, concurrency=1, output_tokens=512, on_event=step_logger() if log else None
    )
    embedder = eval_embedder(settings)
    stores = store_settings(settings)
    rows: list[Row] = []
    for dataset in datasets:
        questions = _questions(settings.data_dir, dataset)[:limit]
        answers = load_answers(settings.data_dir, dataset)
        config = {
            "model": chat.name,
            "dataset": dataset,
            "budget": PIPELINE_BUDGET.model_dump(),
            "baseline_k": BASELINE_K,
            "embedder": embedder.name,
        }
        cache = ItemCache(settings.cache_dir / "evals", "multihop_qa", config, fresh=fresh)
        documents = {
            doc.id: doc
            for q in questions
            for doc in (paragraph_document(t, x) for t, x in q.paragraphs)
        }
        corpus = await Corpus.open(f"qa-{dataset}", settings=stores, embedder=embedder)
        await corpus.ingest_documents(documents.values())
        per_system: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
        for number, question in enumerate(questions, start=1):
            ids = [paragraph_document(t, x).id for t, x in question.paragraphs]
            retriever = ScopedRetriever(corpus, ids)
            for system in systems:
                key = f"{dataset}:{question.id}:{system}:v{VERSIONS[system]}"
                record = cache.get(key)
                if record is None:
                    item_clock = Stopwatch()
                    report = await answer(
                        system, question.question, maestro=maestro, retriever=retriever
                    )
                    record = cache.add(
                        key,
                        score_item(
                            question, answers[question.id], report, seconds=item_clock.seconds
                        ),
                    )
                per_system[system].append(record)
                if log:
                    print(
                        f"[{dataset} {number}/{len(questions)} {system}] "
                        f"f1={record['f1']:.2f} em={record['em']:.0f} "
                        f"cites={record['precise_citations']}/{record['citations']} "
                        f"{record['seconds']:.0f}s "
                        f"pred={normalize_space(record['prediction'])[:60]!r} "
                        f"gold={record['golds'][0][:40]!r}",
                        flush=True,
                    )
        await corpus.close()
        rows += [aggregate(dataset, s, per_system[s]) for s in systems]
    return Summary(model=chat.name, rows=rows, seconds=clock.seconds)


def table(summary: Summary) -> list[str]:
    """The summary as a Markdown table."""
    headers = [
        "dataset",
        "system",
        "items",
        "EM",
        "F1",
        "citation precision",
        "citations/item",
        "step citation precision",
        "gold cited",
        "gold retrieved",
        "calls/item",
        "s/item",
        "failed",
    ]
    return markdown_table(
        headers,
        [
            [
                r.dataset,
                r.system,
                r.items,
                r.em,
                r.f1,
                r.citation_precision,
                f"{r.citations_per_item:.1f}",
                r.step_citation_precision,
                r.cited_recall,
                r.retrieved_recall,
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
        prog="python -m evals.multihop_qa",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dataset", choices=["hotpotqa", "musique", "both"], default="both", help="which data"
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help="comma-separated: " + ",".join(SYSTEMS),
    )
    add_common_arguments(parser, limit=30)
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    datasets: list[Dataset] = ["hotpotqa", "musique"] if args.dataset == "both" else [args.dataset]
    systems: list[System] = [s for s in SYSTEMS if s in args.systems.split(",")]
    summary = asyncio.run(
        run(
            settings,
            datasets=datasets,
            limit=args.limit,
            systems=systems,
            fresh=args.fresh,
        )
    )
    publish(
        args,
        summary,
        table(summary),
        title="Multi-hop research answers: pipeline vs single-shot RAG",
        model=summary.model,
        data=f"{', '.join(datasets)} from {settings.data_dir}/multihop, first {args.limit} "
        "questions each, distractor paragraphs only",
        seconds=summary.seconds,
        notes=[
            "citation precision: share of the final answer's citations whose quote lies in "
            "a gold supporting paragraph (micro over citations); step citation precision: "
            "the same over every step's citations",
            "gold cited / retrieved: share of gold supporting paragraphs the answer cites / "
            "any step retrieved",
            f"pipeline budget: {PIPELINE_BUDGET.model_dump(exclude_defaults=True)}; "
            f"queries: the same, sub-questions as queries only (k={QUERIES_K} per query); "
            f"hops: one hop call names the bridge entity, one answer step searches with the "
            f"question and the entity (k={HOPS_K} per query); "
            f"baseline: one retrieval (k={BASELINE_K}), one call",
        ],
    )


if __name__ == "__main__":
    main()
