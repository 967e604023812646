"""Readers for the public evaluation data in ``../shared/data`` (see its README).

The data is never copied into the repository: every reader takes the data directory
(``Settings().data_dir``, ``MAESTRO_DATA_DIR``) and raises :class:`DataMissing` with the path
when it is absent.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from maestro_lite.documents import Document, ParsedFile, build_document
from maestro_lite.errors import UserError

__all__ = [
    "DataMissing",
    "MultihopQuestion",
    "SciFact",
    "load_hotpotqa",
    "load_musique",
    "load_scifact",
    "paragraph_document",
    "require",
    "sec10q_pdfs",
    "split_of",
]


class DataMissing(UserError):
    """The evaluation data is not where the settings say."""


def require(path: Path) -> Path:
    """``path`` if it exists, else :class:`DataMissing` naming it."""
    if not path.exists():
        raise DataMissing(
            f"evaluation data not found: {path}",
            hint="Set MAESTRO_DATA_DIR to the shared data folder (see ../shared/data/README.md).",
        )
    return path


def split_of(query_id: str) -> str:
    """``dev`` for about a third of the query ids (by hash), ``test`` for the rest.

    Settings are chosen on ``dev`` only; figures are reported on ``test`` (and on all
    queries, for comparison with published numbers).
    """
    return "dev" if hashlib.sha256(query_id.encode()).digest()[0] % 3 == 0 else "test"


@dataclass(frozen=True)
class SciFact:
    """BEIR SciFact: abstracts, queries and the train relevance judgements."""

    documents: list[Document]
    """One per abstract; the id is ``scifact-<doc_id>``."""
    queries: dict[str, str]
    """Query id -> text, for the queries that have judgements."""
    qrels: dict[str, dict[str, int]]
    """Query id -> {document id -> relevance}."""


_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def _abstract(field: str) -> str:
    # The field is a numpy-array repr of quoted sentences with no commas between them;
    # literal_eval would glue them without spaces, so take each quoted string in turn.
    sentences = []
    for match in _QUOTED.finditer(field):
        raw = match.group(0)
        sentences.append(ast.literal_eval(raw))
    return " ".join(s.strip() for s in sentences if s.strip())


def load_scifact(data_dir: Path) -> SciFact:
    """Read SciFact's corpus, queries and ``qrels/train.tsv``."""
    root = require(data_dir / "scifact")
    csv.field_size_limit(1 << 30)
    documents = []
    with (root / "corpus.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            parsed = ParsedFile(pages=[_abstract(row["abstract"])], title=row["title"])
            documents.append(
                build_document(
                    parsed,
                    id=f"scifact-{row['doc_id']}",
                    path=f"scifact:{row['doc_id']}",
                    media_type="text/plain",
                )
            )
    qrels: dict[str, dict[str, int]] = {}
    for line in (root / "qrels" / "train.tsv").read_text().splitlines()[1:]:
        query, doc, score = line.split("\t")
        qrels.setdefault(query, {})[f"scifact-{doc}"] = int(score)
    queries = {}
    for line in (root / "queries.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["_id"] in qrels:
            queries[record["_id"]] = record["text"]
    return SciFact(documents, queries, qrels)


@dataclass(frozen=True)
class MultihopQuestion:
    """A question with its candidate paragraphs and which of them support the answer."""

    id: str
    question: str
    paragraphs: list[tuple[str, str]]
    """(title, text) per paragraph, in the dataset's order."""
    supporting: frozenset[int]
    """Indexes into ``paragraphs``."""


def paragraph_document(title: str, text: str) -> Document:
    """A paragraph as a document; the id is the hash of title and text, so a paragraph shared
    by several questions is one document."""
    digest = hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()[:16]
    return build_document(
        ParsedFile(pages=[text], title=title),
        id=digest,
        path=f"paragraph:{digest}",
        media_type="text/plain",
    )


def load_hotpotqa(data_dir: Path) -> list[MultihopQuestion]:
    """HotpotQA distractor questions: 10 paragraphs each, supporting ones by title."""
    path = require(data_dir / "multihop" / "hotpotqa.jsonl")
    questions = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        context = record["context"]
        facts = record["supporting_facts"]
        # Some records carry these fields as Python-literal strings (data README).
        context = ast.literal_eval(context) if isinstance(context, str) else context
        facts = ast.literal_eval(facts) if isinstance(facts, str) else facts
        gold_titles = {title for title, _ in facts}
        paragraphs = [(title, "".join(sentences).strip()) for title, sentences in context]
        supporting = frozenset(i for i, (title, _) in enumerate(paragraphs) if title in gold_titles)
        questions.append(
            MultihopQuestion(record["_id"], record["question"], paragraphs, supporting)
        )
    return questions


def load_musique(data_dir: Path) -> list[MultihopQuestion]:
    """MuSiQue-Ans questions: 20 paragraphs each, marked ``is_supporting``."""
    path = require(data_dir / "multihop" / "musique.jsonl")
    questions = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        paragraphs = [(p["title"], p["paragraph_text"].strip()) for p in record["paragraphs"]]
        supporting = frozenset(i for i, p in enumerate(record["paragraphs"]) if p["is_supporting"])
        questions.append(MultihopQuestion(record["id"], record["question"], paragraphs, supporting))
    return questions


def sec10q_pdfs(data_dir: Path) -> list[Path]:
    """The 20 SEC 10-Q filings."""
    return sorted(require(data_dir / "sec10q" / "docs").glob("*.pdf"))
