"""HotpotQA and MuSiQue: supporting-paragraph recall@5 and @10.

Every paragraph of every question is ingested as a document (a paragraph shared by two
questions is one document). Two settings:

* ``per-question``: search restricted (a document filter) to the question's own paragraphs,
  10 for HotpotQA and 20 for MuSiQue, which is how these distractor sets are meant to be
  read. HotpotQA recall@10 is then 1 by construction and only @5 says anything.
* ``pooled``: search over all paragraphs of all questions (1,000 for HotpotQA, 2,000 for
  MuSiQue), a harder open-retrieval setting.

Recall@k is the share of a question's supporting paragraphs among its first k distinct
documents, averaged over questions.

Run: ``python -m evals.multihop``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import get_args

from pydantic import BaseModel

from maestro_lite.corpus import Corpus
from maestro_lite.retrieval import SearchFilter, SearchMode
from maestro_lite.settings import Settings

from .common import eval_embedder, machine, ranked_documents, today
from .datasets import MultihopQuestion, load_hotpotqa, load_musique, paragraph_document
from .metrics import mean, recall_at

__all__ = ["MultihopResult", "RecallScores", "main", "run"]

SETTINGS = ("per-question", "pooled")


class RecallScores(BaseModel):
    """Mean supporting-paragraph recall."""

    recall_at_5: float
    recall_at_10: float


class MultihopResult(BaseModel):
    """Dataset -> setting -> mode -> scores."""

    date: str
    machine: str
    embedder: str
    questions: dict[str, int]
    paragraphs: dict[str, int]
    scores: dict[str, dict[str, dict[str, RecallScores]]]


async def _score(
    corpus: Corpus, questions: list[MultihopQuestion]
) -> dict[str, dict[str, RecallScores]]:
    scores: dict[str, dict[str, RecallScores]] = {}
    for setting in SETTINGS:
        scores[setting] = {}
        for mode in get_args(SearchMode):
            at5, at10 = [], []
            for question in questions:
                ids = [paragraph_document(t, x).id for t, x in question.paragraphs]
                gold = {ids[i] for i in question.supporting}
                filters = SearchFilter(document_ids=ids) if setting == "per-question" else None
                ranked = await ranked_documents(
                    corpus, question.question, mode=mode, depth=10, filters=filters
                )
                at5.append(recall_at(ranked, gold, 5))
                at10.append(recall_at(ranked, gold, 10))
            scores[setting][mode] = RecallScores(
                recall_at_5=round(mean(at5), 4), recall_at_10=round(mean(at10), 4)
            )
    return scores


async def run(settings: Settings | None = None, *, cache: bool = True) -> MultihopResult:
    """Ingest each dataset's paragraphs into a temporary corpus and score every mode.

    Args:
        settings: Data directory and embedder; ``Settings.from_env()`` when ``None``.
        cache: Reuse embeddings cached on disk by earlier runs.
    """
    settings = settings or Settings.from_env()
    embedder = eval_embedder(settings, cache=cache)
    datasets = {
        "hotpotqa": load_hotpotqa(settings.data_dir),
        "musique": load_musique(settings.data_dir),
    }
    result = MultihopResult(
        date=today(),
        machine=machine(),
        embedder=embedder.name,
        questions={},
        paragraphs={},
        scores={},
    )
    for name, questions in datasets.items():
        documents = {
            doc.id: doc
            for question in questions
            for doc in (paragraph_document(t, x) for t, x in question.paragraphs)
        }
        with tempfile.TemporaryDirectory(prefix=f"maestro-{name}-") as home:
            local = settings.model_copy(update={"home": Path(home), "chroma_url": None})
            corpus = await Corpus.open(name, settings=local, embedder=embedder)
            await corpus.ingest_documents(documents.values())
            result.scores[name] = await _score(corpus, questions)
        result.questions[name] = len(questions)
        result.paragraphs[name] = len(documents)
    return result


def to_markdown(result: MultihopResult) -> str:
    """The result as a Markdown table."""
    lines = [
        f"Supporting-paragraph recall ({result.embedder}); {result.machine}; {result.date}",
        "",
        "| dataset | setting | mode | recall@5 | recall@10 |",
        "|---|---|---|---|---|",
    ]
    for name, settings in result.scores.items():
        for setting, modes in settings.items():
            for mode, scores in modes.items():
                lines.append(
                    f"| {name} ({result.questions[name]} q, {result.paragraphs[name]} paragraphs) "
                    f"| {setting} | {mode} | {scores.recall_at_5:.3f} | {scores.recall_at_10:.3f} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: print the table, and the JSON with ``--json PATH``."""
    parser = argparse.ArgumentParser(prog="python -m evals.multihop", description=__doc__)
    parser.add_argument("--no-cache", action="store_true", help="embed everything again")
    parser.add_argument("--json", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = asyncio.run(run(cache=not args.no_cache))
    print(to_markdown(result))
    if args.json:
        args.json.write_text(result.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
