"""End to end with the real local 0.5B model: sample documents in, records out, and every
citation is the exact text of its source page."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from maestro_lite import Budget, Maestro, Settings, load_document
from maestro_lite.models.local import LocalModel
from maestro_lite.testing import HashingEmbedder
from pipelines import ExtractionOutput, Extractor, ingest_documents

pytestmark = pytest.mark.local_model

RESEARCH = Path(__file__).resolve().parents[2] / "sample_docs" / "research"


class LaunchFacts(BaseModel):
    """Two facts of the launch memo."""

    new_launch_date: str = Field(description="the date the launch was moved to")
    delay_cost: str = Field(description="how much the delay will cost")


async def test_extraction_over_sample_docs_cites_exact_source_text(
    local_model: LocalModel, tmp_path: Path
) -> None:
    memo = RESEARCH / "launch_status_memo.md"
    docs = await ingest_documents([memo], settings=Settings(), embedder=HashingEmbedder())
    # Typed fields keep the small model's answer short: one call, a few dozen tokens.
    extractor = Extractor(
        Maestro(local_model, output_tokens=256),
        LaunchFacts,
        k=2,
        budget=Budget(max_rounds=1, max_requests=3),
    )
    output = ExtractionOutput(tmp_path, LaunchFacts)
    summary = await extractor.run(corpus=docs.corpus, output=output)
    await docs.corpus.close()

    (record,) = summary.records
    assert record.status == "ok", record.error
    found = [f for f in record.fields.values() if f.status == "found"]
    assert found, record.fields
    page_text = load_document(memo).pages[0].text
    for field in found:
        assert field.value is not None and field.citations
        for citation in field.citations:
            assert citation.path == str(memo)
            assert page_text[citation.start : citation.end] == citation.quote
    # What the run wrote is what it returned.
    assert output.done()[record.document_id].fields == record.fields
