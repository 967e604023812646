"""Rebuild the sample PDFs from their text sources.

Every ``sample_docs/_src/<folder>/<name>.md`` becomes ``sample_docs/<folder>/<name>.pdf``.
The sources live under ``_src/`` so that a recursive ingestion of ``sample_docs/`` that
skips folders starting with ``_`` sees each document once.

    pip install fpdf2==2.8.9
    python sample_docs/build.py            # write the PDFs
    python sample_docs/build.py --check    # exit 1 if a committed PDF is out of date

Source format (a small subset of Markdown, ASCII only):

* an optional front matter block between ``---`` lines with ``title:`` (PDF metadata) and
  ``footer:`` (printed at the bottom of every page, followed by "Page N of M");
* ``# `` title, ``## `` section heading, ``### `` sub-heading (a speaker in a transcript);
* ``- `` bullet items, one per line;
* lines starting with ``| `` are printed as separate lines (signature blocks);
* anything else is a paragraph: consecutive lines are joined, blank lines separate paragraphs.

Text is left-aligned and wrapped at spaces only (no hyphenation), so figures and names are
never split inside a word and extract cleanly with pypdf. The output is deterministic: the
same sources and fpdf2 version give the same bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SRC = ROOT / "_src"

# A fixed creation date keeps rebuilt PDFs byte-identical.
CREATION_DATE = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
AUTHOR = "maestro-lite sample documents (fictional)"

FONT = "Helvetica"
BODY_SIZE = 10.0
LINE_HEIGHT = 4.9
MARGIN = 20.0


@dataclass
class Source:
    title: str
    footer: str
    blocks: list[tuple[str, str]] = field(default_factory=list)
    """(kind, text) with kind in title, h2, h3, bullet, lines, para."""


def parse(text: str, name: str) -> Source:
    """Parse the small Markdown subset described in the module docstring."""
    meta: dict[str, str] = {}
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":
        end = lines.index("---", 1)
        for line in lines[1:end]:
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
        lines = lines[end + 1 :]
    source = Source(title=meta.get("title", name), footer=meta.get("footer", ""))
    para: list[str] = []
    rows: list[str] = []

    def flush() -> None:
        if para:
            source.blocks.append(("para", " ".join(para)))
            para.clear()
        if rows:
            source.blocks.append(("lines", "\n".join(rows)))
            rows.clear()

    for raw in lines:
        line = raw.rstrip()
        if not line:
            flush()
        elif line.startswith("# "):
            flush()
            source.blocks.append(("title", line[2:].strip()))
        elif line.startswith("## "):
            flush()
            source.blocks.append(("h2", line[3:].strip()))
        elif line.startswith("### "):
            flush()
            source.blocks.append(("h3", line[4:].strip()))
        elif line.startswith("- "):
            flush()
            source.blocks.append(("bullet", line[2:].strip()))
        elif line.startswith("| ") or line == "|":
            if para:
                flush()
            rows.append(line[2:])
        else:
            if rows:
                flush()
            para.append(line.strip())
    flush()
    return source


def render(path: Path) -> bytes:
    """Render one source file to PDF bytes."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    source = parse(path.read_text(encoding="ascii"), path.stem)

    class Pdf(FPDF):
        def footer(self) -> None:
            self.set_y(-14)
            self.set_font(FONT, "", 8)
            label = f"{source.footer} - " if source.footer else ""
            self.cell(0, 6, f"{label}Page {self.page_no()} of {{nb}}", align="C")

    pdf = Pdf(format="letter", unit="mm")
    pdf.set_creation_date(CREATION_DATE)
    pdf.set_title(source.title)
    pdf.set_author(AUTHOR)
    pdf.set_subject("Fictional sample document for maestro-lite")
    pdf.set_margins(MARGIN, 20, MARGIN)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    def write(text: str, style: str = "", size: float = BODY_SIZE, indent: float = 0.0) -> None:
        pdf.set_font(FONT, style, size)
        pdf.set_x(MARGIN + indent)
        pdf.multi_cell(
            pdf.epw - indent,
            LINE_HEIGHT,
            text,
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    def keep_space(height: float) -> None:
        # Do not leave a heading alone at the bottom of a page.
        if pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()

    for kind, text in source.blocks:
        if kind == "title":
            pdf.set_font(FONT, "B", 14)
            pdf.multi_cell(0, 7, text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(3)
        elif kind == "h2":
            keep_space(22)
            pdf.ln(2)
            write(text, "B", 11.5)
            pdf.ln(1)
        elif kind == "h3":
            keep_space(18)
            pdf.ln(1)
            write(text, "B")
        elif kind == "bullet":
            write(f"- {text}", indent=4)
            pdf.ln(0.8)
        elif kind == "lines":
            for row in text.split("\n"):
                write(row)
            pdf.ln(2)
        else:
            write(text)
            pdf.ln(2)
    return bytes(pdf.output())


def targets() -> list[tuple[Path, Path]]:
    """(source, pdf) pairs: ``_src/<folder>/<name>.md`` -> ``<folder>/<name>.pdf``."""
    pairs = []
    for src in sorted(SRC.rglob("*.md")):
        rel = src.relative_to(SRC).with_suffix(".pdf")
        pairs.append((src, ROOT / rel))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the committed PDFs")
    args = parser.parse_args(argv)
    stale = []
    for src, out in targets():
        data = render(src)
        if args.check:
            if not out.exists() or out.read_bytes() != data:
                stale.append(out)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        print(f"wrote {out.relative_to(ROOT)} ({len(data) // 1024} KB)")
    if stale:
        for out in stale:
            print(f"out of date: {out.relative_to(ROOT)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
