"""Loaders: text, Markdown and real PDFs through pypdf, and the per-file errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from maestro_lite.documents.loaders import (
    LoaderRegistry,
    MarkdownLoader,
    ParsedFile,
    PdfLoader,
    TextLoader,
    build_document,
    document_id,
    fold_parser_noise,
    load_document,
)
from maestro_lite.documents.model import PAGE_SEPARATOR
from maestro_lite.errors import DocumentError
from tests.pdfs import pdf_bytes, write_pdf


def _reason(path: Path, **options: object) -> str:
    with pytest.raises(DocumentError) as caught:
        load_document(path, **options)  # type: ignore[arg-type]
    assert str(path) in str(caught.value)  # every error names its file
    return caught.value.reason


def test_pdf_pages_keep_their_text_and_offsets(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "three.pdf", ["First page.\nMore text.", "", "Third (page)."])
    document = load_document(path)
    assert document.media_type == "application/pdf"
    assert [p.number for p in document.pages] == [1, 2, 3]
    assert document.pages[0].text.startswith("First page.\nMore text.")
    assert document.pages[1].text == ""
    assert "Third (page)." in document.pages[2].text
    for page in document.pages:
        assert document.text[page.start : page.start + len(page.text)] == page.text
    assert document.text == PAGE_SEPARATOR.join(p.text for p in document.pages)
    assert document.title == "three"  # no title metadata: the file name


def test_document_id_is_the_content_hash(tmp_path: Path) -> None:
    a = write_pdf(tmp_path / "a.pdf", ["same"])
    b = tmp_path / "copy.pdf"
    b.write_bytes(a.read_bytes())
    assert load_document(a).id == load_document(b).id == document_id(a.read_bytes())
    c = write_pdf(tmp_path / "c.pdf", ["different"])
    assert load_document(c).id != load_document(a).id


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_encrypted_pdf_needs_the_right_password(tmp_path: Path, algorithm: str) -> None:
    path = write_pdf(
        tmp_path / "locked.pdf",
        ["Top secret revenue figures"],
        password="s3cret",
        algorithm=algorithm,
    )
    assert _reason(path) == "encrypted"
    with pytest.raises(DocumentError, match="no password given"):
        load_document(path)
    with pytest.raises(DocumentError, match="wrong password"):
        load_document(path, password="nope")
    assert "Top secret revenue" in load_document(path, password="s3cret").text


def test_real_encrypted_samples_open_with_their_passwords(data_dir: Path) -> None:
    sample = data_dir / "pdfs/sample-files/005-libreoffice-writer-password"
    path = sample / "libreoffice-writer-password.pdf"
    assert _reason(path) == "encrypted"
    assert load_document(path, password="openpassword").text.strip()
    plumber = data_dir / "pdfs/pdfplumber/password-example.pdf"
    assert _reason(plumber, password="wrong") == "encrypted"
    assert load_document(plumber, password="test").text.strip()


def test_empty_garbage_and_truncated_files_fail_with_reasons(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    assert _reason(empty) == "empty"

    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"this is not a PDF at all\n" * 20)
    assert _reason(garbage) == "malformed"

    whole = pdf_bytes(["A page of text that will be cut off."])
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(whole[: len(whole) // 3])
    assert _reason(truncated) == "malformed"

    assert _reason(tmp_path / "missing.pdf") == "unreadable"


def test_unsupported_suffix_is_a_document_error(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DocumentError) as caught:
        load_document(path)
    assert caught.value.reason == "unsupported"
    assert caught.value.hint is not None and ".pdf" in caught.value.hint


def test_pypdf_limits_are_relaxed_once_and_noted(tmp_path: Path) -> None:
    # Real SEC filings (2023 Q1 MSFT) carry structure trees past pypdf's 100,000-element
    # array limit; the loader parses them again with higher limits and says so.
    data = pdf_bytes(["Revenue grew."], huge_root_array=100_001)
    parsed = PdfLoader().parse(data, path=tmp_path / "big.pdf")
    assert "Revenue grew." in parsed.pages[0]
    assert any("relaxed limits" in note for note in parsed.notes)

    with pytest.raises(DocumentError) as caught:
        PdfLoader(relaxed_limit_factor=1).parse(data, path=tmp_path / "big.pdf")
    assert caught.value.reason == "too_large"


def test_parser_noise_of_a_damaged_pdf_folds_into_a_few_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every cross-reference offset off by 3: pypdf recovers and logs one warning per object.
    data = pdf_bytes([f"Page {n} text." for n in range(40)])
    damaged = re.sub(rb"(\d{10}) 00000 n", lambda m: b"%010d 00000 n" % (int(m[1]) + 3), data)
    assert damaged != data
    parsed = PdfLoader().parse(damaged, path=tmp_path / "damaged.pdf")
    assert "Page 39 text." in parsed.pages[39]
    folded = [n for n in parsed.notes if n.startswith("Ignoring wrong pointing object")]
    assert len(folded) == 1 and re.search(r"\(and \d{2,} more like it\)$", folded[0]), parsed.notes
    assert len(parsed.notes) <= 6
    captured = capsys.readouterr()
    assert "wrong pointing" not in captured.out + captured.err  # in the report, not printed


def test_fold_parser_noise_counts_alike_messages_and_caps_the_kinds() -> None:
    noise = [f"Ignoring wrong pointing object {n} 0 (offset {n * 9})" for n in range(200)]
    noise += [f"kind {chr(97 + k)} warning" for k in range(7)] + ["kind a warning"]
    notes = fold_parser_noise(noise, limit=3)
    assert notes == [
        "Ignoring wrong pointing object 0 0 (offset 0) (and 199 more like it)",
        "kind a warning",
        "kind b warning",
        "and 5 other parser warning(s)",
    ]


def test_pages_without_text_are_noted(tmp_path: Path) -> None:
    parsed = PdfLoader().parse(pdf_bytes(["text", "", "", "more"]), path=tmp_path / "x.pdf")
    assert "no text layer on page(s) 2-3" in parsed.notes


def test_text_and_markdown(tmp_path: Path) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_bytes(b"\xef\xbb\xbfline one\r\nline two\r\n")
    document = load_document(txt)
    assert document.text == "line one\nline two\n"  # BOM dropped, newlines normalised
    assert document.title == "notes" and document.media_type == "text/plain"

    md = tmp_path / "guide.md"
    md.write_text("Intro text\n\n## The Real Title ##\n\nBody.\n")
    document = load_document(md)
    assert document.title == "The Real Title"
    assert document.media_type == "text/markdown"
    assert len(document.pages) == 1

    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes("caf\u00e9 \u2013 menu".encode("cp1252"))
    parsed = TextLoader().parse(legacy.read_bytes(), path=legacy)
    assert parsed.pages == ["caf\u00e9 \u2013 menu"]
    assert parsed.notes == ["not valid UTF-8; decoded as cp1252"]

    blank = tmp_path / "blank.md"
    blank.write_text("  \n\n ")
    assert _reason(blank) == "empty"
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x00\x01\x02" * 10)
    assert _reason(binary) == "malformed"


def test_registry_picks_by_suffix_and_accepts_new_loaders(tmp_path: Path) -> None:
    class CsvLoader:
        media_type = "text/csv"
        suffixes = (".csv",)
        isolated = False

        def parse(self, data: bytes, *, path: Path, password: str | None = None) -> ParsedFile:
            rows = data.decode().splitlines()
            return ParsedFile(pages=["\n".join(rows)], title=rows[0])

    registry = LoaderRegistry()
    assert isinstance(registry.for_path("A.PDF"), PdfLoader)
    assert isinstance(registry.for_path("x.markdown"), MarkdownLoader)
    assert not registry.supports("x.csv")
    registry.register(CsvLoader())
    path = tmp_path / "table.csv"
    path.write_text("name,value\na,1\n")
    document = load_document(path, registry=registry)
    assert document.media_type == "text/csv" and document.title == "name,value"


def test_build_document_cleans_text_it_cannot_store() -> None:
    parsed = ParsedFile(pages=["a\x00b\r\nc", "lone \ud800 surrogate"])
    document = build_document(parsed, id="x", path="/tmp/x.txt", media_type="text/plain")
    assert document.pages[0].text == "ab\nc"
    assert document.pages[1].text == "lone ? surrogate"
    assert document.pages[1].start == len("ab\nc") + len(PAGE_SEPARATOR)
