"""End to end with real parts: PDFs through pypdf, Chroma, MiniLM, and the local 0.5B model.

The small model is weak, so the assertions are about what the framework guarantees whatever
the model says: the run completes within its budget, every citation is the exact text of
the PDF page it names, and the built-in checks verify them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro_lite import Budget, Corpora, Maestro, Plan, SearchFilter, Settings, Step
from maestro_lite.corpus import Corpus
from maestro_lite.documents.loaders import load_document
from maestro_lite.embeddings.local import LocalEmbedder
from maestro_lite.models.local import LocalModel

from .retrieval_fixtures import minilm  # noqa: F401  (the session's MiniLM)

pytestmark = pytest.mark.local_model

CONTRACTS = Path(__file__).parent.parent / "sample_docs" / "contracts"


async def test_a_real_run_over_pdfs_cites_exact_page_text(
    local_model: LocalModel,
    minilm: LocalEmbedder,  # noqa: F811
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path / "home")
    corpus = await Corpus.open("contracts", settings=settings, embedder=minilm)
    report = await corpus.ingest([CONTRACTS])
    assert len(report.ingested) == 2 and not report.failed, report.summary() + str(report.failed)
    docs = {Path(d.path).name: d for d in await corpus.documents()}
    await corpus.close()
    v2023 = docs["supply_agreement_2023.pdf"]

    plan = Plan(
        steps=[
            Step(
                id="law",
                instruction="Which state's law governs this agreement?",
                queries=["governing law of the agreement"],
                filters=SearchFilter(document_ids=[v2023.id]),
            ),
        ]
    )
    corpora = Corpora(settings, embedder=minilm)
    try:
        result = await Maestro(local_model, corpora=corpora).run(
            "Which law governs the 2023 supply agreement?",
            corpus="contracts",
            plan=plan,
            budget=Budget(max_rounds=1, max_requests=6),
        )
    finally:
        await corpora.aclose()

    step = result.steps["law"]
    assert step.status == "done", step.error
    assert step.retrieved and all(h.chunk.document_id == v2023.id for h in step.retrieved)
    assert result.citations, "the model cited nothing"
    pages = {p.number: p.text for p in load_document(CONTRACTS / "supply_agreement_2023.pdf").pages}
    for citation in result.citations:
        assert citation.document_id == v2023.id
        assert pages[citation.page][citation.start : citation.end] == citation.quote
    checks = {r.id: r for r in result.requirements}
    assert checks["law.citations"].passed, checks["law.citations"].reason
    assert result.usage.requests == len(step.attempts) >= 1
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
