"""Which files the pipelines ingest, the corpus they go to, and naming documents."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from maestro_lite import DocumentInfo, Settings, UserError
from maestro_lite.testing import HashingEmbedder
from pipelines import corpus_name_for, document_files, ingest_documents
from pipelines._docs import display_name, match_documents

SAMPLE = Path(__file__).resolve().parents[2] / "sample_docs"


def test_sample_docs_expand_to_their_documents_without_sources_or_data() -> None:
    files = document_files([SAMPLE])
    names = [f.relative_to(SAMPLE).as_posix() for f in files]
    assert "contracts/supply_agreement_2023.pdf" in names
    assert "earnings/quillon_fy2025_q2_call.txt" in names
    assert not [n for n in names if n.startswith("_src/")]  # the PDFs' sources
    assert "answers.json" not in names and "build.py" not in names
    assert len(names) == len(set(names)) == 12 + 1  # 12 documents and the README
    # A file named directly is kept even if no loader reads it (it fails visibly).
    assert document_files([SAMPLE / "answers.json"]) == [SAMPLE / "answers.json"]


def test_corpus_names_come_from_the_first_path(tmp_path: Path) -> None:
    assert corpus_name_for([SAMPLE / "research"]) == "research"
    assert corpus_name_for([SAMPLE / "contracts" / "supply_agreement_2023.pdf"]) == (
        "supply_agreement_2023"
    )
    assert corpus_name_for(["x y!"]) == "x-y"
    assert corpus_name_for(["a!"]) == "a-docs"  # too short for Chroma alone


def info(doc: str, path: str, title: str = "") -> DocumentInfo:
    return DocumentInfo(id=doc, title=title or doc, path=path, pages=1, chars=1, chunks=1)


def test_documents_are_named_by_id_prefix_path_or_file_name() -> None:
    docs = [info("ab12", "/d/a.pdf", "Alpha"), info("ab34", "/d/b.txt"), info("cd56", "/e/b.txt")]
    assert [d.id for d in match_documents(docs, ["ab12", "cd", "/d/b.txt", "Alpha"])] == [
        "ab12",
        "cd56",
        "ab34",
        "ab12",
    ]
    with pytest.raises(UserError, match="2 documents in the corpus match 'ab'"):
        match_documents(docs, ["ab"])
    with pytest.raises(UserError, match=r"2 documents in the corpus match 'b\.txt'"):
        match_documents(docs, ["b.txt"])


async def test_ingestion_returns_the_documents_in_order_and_is_idempotent(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "contracts"
    shutil.copytree(SAMPLE / "contracts", folder)
    shutil.copy(SAMPLE / "earnings" / "quillon_fy2025_q2_call.txt", tmp_path / "call.txt")
    embedder = HashingEmbedder()
    first = await ingest_documents(
        [tmp_path / "call.txt", folder], settings=Settings(), embedder=embedder, corpus="mixed"
    )
    assert first.corpus.name == "mixed"
    assert [Path(d.path).name for d in first.documents] == [
        "call.txt",
        "supply_agreement_2023.pdf",
        "supply_agreement_2025.pdf",
    ]
    assert first.report is not None and len(first.report.ingested) == 3
    await first.corpus.close()
    # The same bytes under another path are found, not ingested again.
    shutil.copy(tmp_path / "call.txt", tmp_path / "copy.txt")
    again = await ingest_documents(
        [tmp_path / "copy.txt"], settings=Settings(), embedder=embedder, corpus="mixed"
    )
    assert [d.id for d in again.documents] == [first.documents[0].id]
    assert again.report is not None and not again.report.ingested
    await again.corpus.close()
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no readable documents"):
        await ingest_documents([tmp_path / "empty"], settings=Settings())


def test_identifier_titles_give_way_to_file_names() -> None:
    assert display_name(info("a", "/f/2022 Q3 AAPL.pdf", "0000320193-22-000070")) == (
        "2022 Q3 AAPL"
    )
    assert display_name(info("b", "/f/x.pdf", "Supply Agreement")) == "Supply Agreement"
    assert display_name(info("c", "/f/notes.txt", "launch_status_memo")) == "notes"
    assert display_name(info("d", "/f/memo.md", "Memo")) == "Memo"
