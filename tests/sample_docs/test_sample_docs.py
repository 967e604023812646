"""The sample documents and their answer key (sample_docs/answers.json).

Real pypdf extraction: every PDF has several pages of text, every quote of the answer key
occurs on the page it names, and every fact an answer must contain is in its sources.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

SAMPLE_DOCS = Path(__file__).resolve().parents[2] / "sample_docs"
FOLDERS = ("contracts", "earnings", "research")
ANSWERS: list[dict[str, Any]] = json.loads((SAMPLE_DOCS / "answers.json").read_text("utf-8"))
CUAD_FIELDS = {
    "Parties",
    "Agreement Date",
    "Effective Date",
    "Expiration Date",
    "Governing Law",
    "Renewal Term",
    "Notice Period To Terminate Renewal",
    "Cap On Liability",
    "Termination For Convenience",
}


def norm(text: str) -> str:
    return " ".join(text.split())


@functools.cache
def pages(file: str) -> tuple[str, ...]:
    """Whitespace-normalised text of each page (a text file is one page)."""
    path = SAMPLE_DOCS / file
    if path.suffix == ".pdf":
        return tuple(norm(page.extract_text()) for page in PdfReader(path).pages)
    return (norm(path.read_text("utf-8")),)


def documents() -> list[str]:
    return sorted(
        str(p.relative_to(SAMPLE_DOCS))
        for folder in FOLDERS
        for p in (SAMPLE_DOCS / folder).iterdir()
        if p.suffix in {".pdf", ".txt", ".md"}
    )


PDFS = [d for d in documents() if d.endswith(".pdf")]
SOURCES = [
    pytest.param(item["id"], i, source, id=f"{item['id']}-{i}")
    for item in ANSWERS
    for i, source in enumerate(item["sources"])
]


def test_corpus_layout() -> None:
    docs = documents()
    assert {d for d in docs if d.startswith("contracts/")} == {
        "contracts/supply_agreement_2023.pdf",
        "contracts/supply_agreement_2025.pdf",
    }
    earnings = [d for d in docs if d.startswith("earnings/")]
    assert len(earnings) == 3
    assert any(d.endswith(".pdf") for d in earnings)
    research = [d for d in docs if d.startswith("research/")]
    assert 5 <= len(research) <= 8
    assert any(d.endswith(".pdf") for d in research)
    assert any(not d.endswith(".pdf") for d in research)


@pytest.mark.parametrize("file", PDFS)
def test_pdf_has_several_pages_of_text(file: str) -> None:
    path = SAMPLE_DOCS / file
    assert path.stat().st_size < 100_000
    texts = pages(file)
    assert len(texts) > 1
    for number, text in enumerate(texts, start=1):
        assert len(text) > 200, f"page {number} of {file} has almost no text"
        assert f"Page {number} of {len(texts)}" in text


@pytest.mark.parametrize("file", documents())
def test_documents_are_plain_ascii(file: str) -> None:
    assert "\n".join(pages(file)).isascii()


def test_answer_key_shape() -> None:
    ids = [item["id"] for item in ANSWERS]
    assert len(ids) == len(set(ids))
    by_kind: dict[str, list[dict[str, Any]]] = {"research": [], "compare": [], "extract": []}
    for item in ANSWERS:
        assert set(item) >= {"id", "kind", "question", "answer", "must_contain", "sources"}
        assert item["question"] and item["answer"] and item["must_contain"] and item["sources"]
        by_kind[item["kind"]].append(item)
        for source in item["sources"]:
            assert set(source) == {"file", "page", "quote"}
            assert source["file"] in documents()

    research = by_kind["research"]
    assert len(research) >= 6
    multi_hop = [i for i in research if len({s["file"] for s in i["sources"]}) >= 2]
    assert len(multi_hop) >= 3
    assert any(i.get("contradiction") for i in research)

    compare = by_kind["compare"]
    assert len(compare) >= 4
    assert all(len({s["file"] for s in i["sources"]}) >= 2 for i in compare)

    extract = by_kind["extract"]
    for contract in ("contracts/supply_agreement_2023.pdf", "contracts/supply_agreement_2025.pdf"):
        fields = {i["field"] for i in extract if i["document"] == contract}
        assert fields == CUAD_FIELDS
        assert all(
            s["file"] == contract
            for i in extract
            if i["document"] == contract
            for s in i["sources"]
        )


@pytest.mark.parametrize(("item_id", "index", "source"), SOURCES)
def test_quote_is_on_its_page(item_id: str, index: int, source: dict[str, Any]) -> None:
    texts = pages(source["file"])
    assert 1 <= source["page"] <= len(texts)
    quote = norm(source["quote"])
    found = [n for n, text in enumerate(texts, start=1) if quote in text]
    assert source["page"] in found, f"{item_id}: quote found on pages {found}: {quote!r}"


@pytest.mark.parametrize("item", ANSWERS, ids=lambda item: item["id"])
def test_must_contain_is_in_answer_and_sources(item: dict[str, Any]) -> None:
    source_text = " ".join(" ".join(pages(s["file"])) for s in item["sources"]).lower()
    for fact in item["must_contain"]:
        assert fact.lower() in item["answer"].lower(), f"{item['id']}: {fact!r} not in answer"
        assert norm(fact).lower() in source_text, f"{item['id']}: {fact!r} not in its sources"


def test_contradiction_is_real() -> None:
    """The launch date differs between the internal memo and the news article."""
    memo = pages("research/launch_status_memo.md")[0]
    article = pages("research/agritech_news_article.txt")[0]
    assert "October 14, 2025" in memo and "September 9" not in memo
    assert "September 9, 2025" in article and "October 14" not in article


def test_pdfs_match_their_sources() -> None:
    """The committed PDFs are what build.py makes from sample_docs/_src (text compared)."""
    pytest.importorskip("fpdf")
    spec = importlib.util.spec_from_file_location("sample_docs_build", SAMPLE_DOCS / "build.py")
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build  # dataclasses look their module up there
    try:
        spec.loader.exec_module(build)
    finally:
        del sys.modules[spec.name]
    targets = build.targets()
    assert sorted(str(out.relative_to(SAMPLE_DOCS)) for _, out in targets) == PDFS
    for src, out in targets:
        rebuilt = PdfReader(io.BytesIO(build.render(src)))
        assert tuple(norm(p.extract_text()) for p in rebuilt.pages) == pages(
            str(out.relative_to(SAMPLE_DOCS))
        ), f"{out.name} is out of date: run python sample_docs/build.py"
