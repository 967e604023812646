"""BM25 over a corpus's chunks (bm25s), with the same filters as dense search.

The index is derived data: the store is the source of truth. A corpus rebuilds the index
from the store's chunks when the store's version stamp differs from the one the index was
built at, so a write by any process (or a crash mid-write) can never leave search reading a
stale index. Rebuilding is cheap next to embedding (SciFact's 11,210 chunks: see the
lexical index build time in BENCHMARKS.md), and the last build is also saved on disk under
the version stamp, so a new process (each ``maestro search``) loads it instead of rebuilding.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from numpy.typing import NDArray

from ..documents.model import MetadataValue
from ..retrieval import SearchFilter

__all__ = ["LexicalEntry", "LexicalIndex"]

# Snowball stemming lifts SciFact nDCG@10 from 0.667 to 0.696 (FACTS/BENCHMARKS); k1 and b
# are the usual Lucene defaults, which did as well as any tried on the SciFact dev split.
_K1 = 1.2
_B = 0.75
_LANGUAGE = "english"


@dataclass(frozen=True, slots=True)
class LexicalEntry:
    """One chunk as the lexical index sees it."""

    chunk_id: str
    document_id: str
    page: int
    text: str
    metadata: Mapping[str, MetadataValue]


class LexicalIndex:
    """BM25 (Lucene variant, Snowball stemming, English stop words) over chunks."""

    def __init__(
        self,
        retriever: bm25s.BM25 | None,
        chunk_ids: list[str],
        chunk_docs: NDArray[np.int32],
        chunk_pages: NDArray[np.int32],
        documents: list[str],
        doc_metadata: list[dict[str, MetadataValue]],
    ) -> None:
        self._retriever = retriever
        self._chunk_ids = chunk_ids
        self._chunk_docs = chunk_docs
        self._chunk_pages = chunk_pages
        self._documents = documents
        self._doc_index = {d: i for i, d in enumerate(documents)}
        self._doc_metadata = doc_metadata
        self._stemmer = Stemmer.Stemmer(_LANGUAGE)

    def __len__(self) -> int:
        return len(self._chunk_ids)

    @classmethod
    def build(cls, entries: Sequence[LexicalEntry]) -> LexicalIndex:
        """Index ``entries``."""
        documents: list[str] = []
        doc_index: dict[str, int] = {}
        doc_metadata: list[dict[str, MetadataValue]] = []
        for entry in entries:
            if entry.document_id not in doc_index:
                doc_index[entry.document_id] = len(documents)
                documents.append(entry.document_id)
                doc_metadata.append(dict(entry.metadata))
        retriever = None
        if entries:
            tokens = _tokenize([e.text for e in entries], Stemmer.Stemmer(_LANGUAGE))
            retriever = bm25s.BM25(k1=_K1, b=_B, method="lucene")
            retriever.index(tokens, show_progress=False)
        return cls(
            retriever,
            [e.chunk_id for e in entries],
            np.array([doc_index[e.document_id] for e in entries], dtype=np.int32),
            np.array([e.page for e in entries], dtype=np.int32),
            documents,
            doc_metadata,
        )

    def _mask(
        self, filters: SearchFilter | None, exclude_documents: Sequence[str]
    ) -> NDArray[np.bool_] | None:
        if filters is None and not exclude_documents:
            return None
        keep_docs = np.ones(len(self._documents), dtype=bool)
        if filters is not None and filters.document_ids is not None:
            keep_docs[:] = False
            keep_docs[
                [self._doc_index[d] for d in filters.document_ids if d in self._doc_index]
            ] = True
        if filters is not None and filters.metadata:
            wanted = filters.metadata.items()
            for i, meta in enumerate(self._doc_metadata):
                if keep_docs[i] and any(meta.get(k) != v for k, v in wanted):
                    keep_docs[i] = False
        for d in exclude_documents:
            if d in self._doc_index:
                keep_docs[self._doc_index[d]] = False
        mask = keep_docs[self._chunk_docs]
        if filters is not None and filters.page_from is not None:
            mask &= self._chunk_pages >= filters.page_from
        if filters is not None and filters.page_to is not None:
            mask &= self._chunk_pages <= filters.page_to
        return mask

    def search(
        self,
        query: str,
        *,
        k: int,
        filters: SearchFilter | None = None,
        exclude_documents: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        """The ``k`` best ``(chunk id, BM25 score)`` pairs; chunks sharing no term with the
        query are never returned."""
        if self._retriever is None or k <= 0:
            return []
        query_tokens = _tokenize([query], self._stemmer)[0]
        ids = self._retriever.get_tokens_ids(query_tokens)
        if not ids:
            return []
        scores = np.asarray(self._retriever.get_scores_from_ids(ids), dtype=np.float32)
        mask = self._mask(filters, exclude_documents)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        order = matched[np.argsort(-scores[matched], kind="stable")]
        return [(self._chunk_ids[i], float(scores[i])) for i in order]

    def save(self, directory: Path) -> None:
        """Write the index under ``directory`` (replaced atomically)."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=directory.parent))
        try:
            if self._retriever is not None:
                self._retriever.save(str(staging / "bm25"), show_progress=False)
            np.savez(staging / "arrays.npz", docs=self._chunk_docs, pages=self._chunk_pages)
            (staging / "entries.json").write_text(
                json.dumps(
                    {
                        "chunk_ids": self._chunk_ids,
                        "documents": self._documents,
                        "metadata": self._doc_metadata,
                    }
                )
            )
            if directory.exists():
                shutil.rmtree(directory)
            staging.rename(directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Read an index :meth:`save` wrote."""
        entries = json.loads((directory / "entries.json").read_text())
        with np.load(directory / "arrays.npz") as arrays:
            docs = arrays["docs"].astype(np.int32)
            pages = arrays["pages"].astype(np.int32)
        retriever = None
        if (directory / "bm25").exists():
            retriever = bm25s.BM25.load(str(directory / "bm25"), show_progress=False)
        return cls(
            retriever, entries["chunk_ids"], docs, pages, entries["documents"], entries["metadata"]
        )


def _tokenize(texts: list[str], stemmer: Stemmer.Stemmer) -> list[list[str]]:
    tokens = bm25s.tokenize(
        texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
    )
    return [list(t) for t in tokens]
