"""The evals ``maestro eval NAME`` runs, by name. Each module has ``main(argv)``."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

__all__ = ["EVALS", "run_eval"]

EVALS: dict[str, tuple[str, str]] = {
    "multihop": ("evals.multihop_qa", "HotpotQA/MuSiQue answers: research pipeline vs RAG"),
    "sec10q": ("evals.sec10q", "questions over 20 SEC 10-Q filings: compare and research"),
    "cuad": ("evals.cuad", "CUAD contract extraction: precision/recall per field"),
    "multihop-retrieval": ("evals.multihop", "HotpotQA/MuSiQue supporting-paragraph recall"),
    "scifact": ("evals.scifact", "SciFact retrieval: recall@k, nDCG@10"),
    "summaries": ("evals.summaries", "MSFT earnings-call summaries: figure precision, questions"),
    "ingest-throughput": ("evals.ingest_throughput", "ingestion throughput on the 10-Qs"),
    "injection": ("evals.injection", "BIPIA-style prompt injection: attack success, accuracy"),
}
"""Name -> (module, what it measures)."""


def run_eval(name: str, argv: Sequence[str]) -> None:
    """Run the eval ``name`` with command-line arguments ``argv``.

    Raises:
        KeyError: No eval has that name.
    """
    module, _ = EVALS[name]
    importlib.import_module(module).main(list(argv))
