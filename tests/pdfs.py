"""Real PDFs for tests, written with pypdf: one text line per line of input, Helvetica."""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
)

_FONT = DictionaryObject(
    {
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
    }
)


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(
    pages: list[str],
    *,
    password: str | None = None,
    algorithm: str = "RC4-128",
    huge_root_array: int = 0,
) -> bytes:
    """A PDF whose pages show ``pages`` (``""`` makes a page without a text layer).

    Args:
        pages: Text per page; newlines start new lines.
        password: Encrypt with this user password.
        algorithm: pypdf's encryption algorithm: ``RC4-128``, ``AES-128`` or ``AES-256``
            (AES needs the ``cryptography`` package, to write and to read).
        huge_root_array: Put an array of this many numbers in the document catalog (to trip
            pypdf's element limits, as large structure trees in real filings do).
    """
    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(612, 792)
        if not text:
            continue
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 740 Td"]
        ops += [f"({_escape(line)}) Tj T*" for line in text.split("\n")]
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): _FONT})}
        )
        page.replace_contents(stream)
    if huge_root_array:
        writer.root_object[NameObject("/MaestroTestArray")] = ArrayObject(
            [NumberObject(0)] * huge_root_array
        )
    if password:
        writer.encrypt(user_password=password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def write_pdf(path: Path, pages: list[str], **options: object) -> Path:
    """Write :func:`pdf_bytes` to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pdf_bytes(pages, **options))  # type: ignore[arg-type]
    return path
