"""Every real-world PDF under ../shared/data/pdfs in one batch: each ingests or fails clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro_lite.corpus import Corpus

KNOWN_REASONS = {"empty", "encrypted", "malformed", "too_large", "timeout", "crashed"}


async def test_every_shared_pdf_ingests_or_is_reported(corpus: Corpus, data_dir: Path) -> None:
    folder = data_dir / "pdfs"
    if not folder.is_dir():
        pytest.skip(f"the evaluation data at {data_dir} has no pdfs/ folder")
    pdfs = sorted(str(p) for p in folder.rglob("*.pdf"))
    assert len(pdfs) > 100, f"{folder} holds {len(pdfs)} PDFs; the shared set has over 100"
    texts = sorted(str(p) for p in folder.rglob("*.txt"))  # linn.txt: the scan's own text

    report = await corpus.ingest([folder])

    outcomes = {
        **{d.path: "ok" for d in report.ingested},
        **{d.path: "no_text" for d in report.no_text},
        **{f.path: f.reason for f in report.failed},
        **dict.fromkeys(report.unchanged, "duplicate"),
    }
    # Every file accounted for, once: the batch finished.
    assert sorted(outcomes) == sorted(pdfs + texts)
    assert not report.updated
    # mcid_example.pdf has the same bytes as figure_structure.pdf: one document, not two.
    assert report.unchanged == [str(folder / "pdfplumber/mcid_example.pdf")]
    for failure in report.failed:
        assert failure.reason in KNOWN_REASONS and failure.detail, failure
    unsupported = {Path(s.path).name for s in report.skipped if s.reason == "unsupported"}
    assert unsupported >= {"README.rst", "files.json"}

    def outcome(relative: str) -> str:
        return outcomes[str(folder / relative)]

    assert outcome("pdfplumber/empty.pdf") == "empty"
    assert outcome("ocrmypdf/invalid.pdf") == "malformed"
    assert outcome("pdfplumber/password-example.pdf") == "encrypted"
    assert outcome(
        "sample-files/005-libreoffice-writer-password/libreoffice-writer-password.pdf"
    ) == ("encrypted")
    assert outcome("ocrmypdf/linn.pdf") == "no_text"  # a scan: recorded, not embedded
    assert outcome("pdfplumber/malformed-from-issue-932.pdf") == "ok"  # damaged but readable
    assert outcome("pdfplumber/federal-register-2020-17221.pdf") == "ok"
    assert len(report.ingested) > 60

    # The ingested documents are searchable, and scans are listed with their status.
    hits = await corpus.search("airworthiness directive", k=3, mode="lexical")
    assert hits and "federal-register" in hits[0].chunk.path
    listed = {d.path: d.status for d in await corpus.documents()}
    assert listed[str(folder / "ocrmypdf/linn.pdf")] == "no_text"

    # With the passwords, the encrypted samples ingest too.
    retry = await corpus.ingest(
        [folder],
        passwords={
            folder / "pdfplumber/password-example.pdf": "test",
            folder / "sample-files/005-libreoffice-writer-password/"
            "libreoffice-writer-password.pdf": "openpassword",
        },
    )
    assert len(retry.ingested) == 2
    assert {f.reason for f in retry.failed} == {f.reason for f in report.failed} - {"encrypted"}
