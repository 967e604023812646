"""Loaders turn a file's bytes into page texts, one interface for every format.

A :class:`Loader` knows nothing about ids, offsets or storage: it returns a
:class:`ParsedFile` (page texts, a title, notes) and :func:`build_document` turns that into a
:class:`~maestro_lite.documents.model.Document` whose offsets keep the model's invariants. A
:class:`LoaderRegistry` picks the loader by file suffix; register your own for more formats::

    registry = LoaderRegistry()
    registry.register(MyDocxLoader())
    document = load_document("report.pdf", registry=registry)

Loaders raise :class:`~maestro_lite.errors.DocumentError` naming the file and a short reason
(``empty``, ``encrypted``, ``malformed``, ``unsupported``...). Loaders whose parser may hang or
crash on hostile input set ``isolated = True``: ingestion then runs them in a guarded child
process (see ``_worker.py``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

from ..errors import DocumentError
from ..untrusted import one_line
from .model import PAGE_SEPARATOR, Document, MetadataValue, Page

__all__ = [
    "Loader",
    "LoaderRegistry",
    "MarkdownLoader",
    "ParsedFile",
    "PdfLoader",
    "TextLoader",
    "build_document",
    "document_id",
    "fold_parser_noise",
    "load_document",
]


@dataclass(frozen=True)
class ParsedFile:
    """What a loader extracted from one file.

    Attributes:
        pages: The text of each page, in order; a page without a text layer is ``""``.
        title: The document's own title (PDF metadata, a Markdown heading), if it has one.
        notes: Things worth telling the user that did not stop the load: recovered parser
            errors, pages without text, a fallback encoding.
    """

    pages: list[str]
    title: str | None = None
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class Loader(Protocol):
    """Extracts page texts from the bytes of one kind of file."""

    media_type: str
    """``application/pdf``, ``text/plain``..."""
    suffixes: tuple[str, ...]
    """Lower-case file suffixes this loader reads, with the dot (``.pdf``)."""
    isolated: bool
    """Run in a guarded child process: the parser may hang, crash or exhaust memory."""

    def parse(self, data: bytes, *, path: Path, password: str | None = None) -> ParsedFile:
        """Extract the pages of ``data`` (the content of ``path``); raise ``DocumentError``."""
        ...


def document_id(data: bytes) -> str:
    """The stable id of a document: the first 16 hex digits of the sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest()[:16]


_NEWLINES = re.compile(r"\r\n?")


def _clean(text: str) -> str:
    # One newline convention, and no NULs or lone surrogates: they break tokenizers and
    # the store's UTF-8 encoding. Offsets then refer to this cleaned text, which is the
    # document text by definition.
    text = _NEWLINES.sub("\n", text).replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")


def build_document(
    parsed: ParsedFile,
    *,
    id: str,
    path: str | Path,
    media_type: str,
    metadata: Mapping[str, MetadataValue] | None = None,
) -> Document:
    """A :class:`Document` from parsed pages, with page offsets into the document text.

    Args:
        parsed: What the loader extracted.
        id: The document id (see :func:`document_id`).
        path: Where the document came from.
        media_type: Its media type.
        metadata: User metadata (used by search filters).
    """
    pages: list[Page] = []
    start = 0
    for number, raw in enumerate(parsed.pages, start=1):
        text = _clean(raw)
        pages.append(Page(number=number, text=text, start=start))
        start += len(text) + len(PAGE_SEPARATOR)
    # A title is shown in prompts and status lines: one line, whatever the file is named.
    title = one_line(parsed.title or "") or one_line(Path(path).stem)
    return Document(
        id=id,
        path=str(path),
        title=title,
        media_type=media_type,
        pages=pages,
        metadata=dict(metadata or {}),
    )


def _decode(data: bytes, path: Path) -> tuple[str, list[str]]:
    if b"\x00" in data[:8192]:
        raise DocumentError(path, "malformed", "binary content, not text")
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    # Legacy Windows text is the common non-UTF-8 case; latin-1 accepts any byte, so it is
    # the last resort rather than a failure.
    for codec in ("cp1252", "latin-1"):
        try:
            return data.decode(codec), [f"not valid UTF-8; decoded as {codec}"]
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


class TextLoader:
    """Plain text: the whole file is one page."""

    media_type: str = "text/plain"
    suffixes: tuple[str, ...] = (".txt", ".text")
    isolated: bool = False

    def parse(self, data: bytes, *, path: Path, password: str | None = None) -> ParsedFile:
        text, notes = _decode(data, path)
        if not text.strip():
            raise DocumentError(path, "empty", "the file holds no text")
        return ParsedFile(pages=[text], title=self._title(text), notes=notes)

    def _title(self, text: str) -> str | None:
        return None


_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


class MarkdownLoader(TextLoader):
    """Markdown, kept as written (one page); the first heading is the title."""

    media_type: str = "text/markdown"
    suffixes: tuple[str, ...] = (".md", ".markdown")

    def _title(self, text: str) -> str | None:
        match = _HEADING.search(text)
        return match.group(1).strip() if match else None


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _collect_parser_noise(logger_name: str) -> Iterator[list[str]]:
    """Gather the warnings a parser logs or warns about, instead of printing or raising them.

    pypdf reports recovered damage (``Ignoring wrong pointing object``...) through logging and
    ``warnings``; under ``-W error`` the latter would abort a load that actually succeeded.
    """
    handler = _LogCollector()
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            messages: list[str] = []
            yield messages
        messages.extend(str(w.message) for w in caught)
        messages.extend(handler.messages)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _page_ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], -1]:
        if n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ", ".join(parts)


class PdfLoader:
    """PDF through pypdf, one text per page.

    Encrypted files are opened with the password given, or the empty user password (files
    protected only by an owner password). When pypdf's safety limits stop a real file (large
    structure trees in SEC filings hit the 100,000-element array limit), it is parsed once
    more with limits ``relaxed_limit_factor`` times higher: the child process that runs this
    loader bounds its time and memory, which is the protection those limits give.

    Args:
        relaxed_limit_factor: How much to raise pypdf's element limits on the second try.
    """

    media_type: str = "application/pdf"
    suffixes: tuple[str, ...] = (".pdf",)
    isolated: bool = True

    _LIMITS: ClassVar[tuple[str, ...]] = (
        "array_maximum_element_count",
        "dictionary_maximum_element_count",
    )

    def __init__(self, *, relaxed_limit_factor: int = 10) -> None:
        self.relaxed_limit_factor = relaxed_limit_factor

    def parse(self, data: bytes, *, path: Path, password: str | None = None) -> ParsedFile:
        import pypdf
        from pypdf.errors import LimitReachedError

        try:
            return self._parse(data, path=path, password=password)
        except LimitReachedError as exc:
            config = pypdf.get_configuration()
            relaxed = {
                name: getattr(config, name) * self.relaxed_limit_factor for name in self._LIMITS
            }
            try:
                with pypdf.apply_configuration(**relaxed):
                    parsed = self._parse(data, path=path, password=password)
            except LimitReachedError as again:
                raise DocumentError(
                    path, "too_large", f"exceeds pypdf's safety limits even relaxed: {again}"
                ) from None
            parsed.notes.insert(0, f"pypdf limit reached ({exc}); parsed with relaxed limits")
            return parsed

    def _parse(self, data: bytes, *, path: Path, password: str | None) -> ParsedFile:
        import io

        import pypdf
        from pypdf.errors import DependencyError, LimitReachedError, PyPdfError

        with _collect_parser_noise("pypdf") as noise:
            try:
                reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
                if reader.is_encrypted:
                    self._decrypt(reader, path, password)
                count = len(reader.pages)
            except (DocumentError, LimitReachedError):
                raise
            except DependencyError as exc:
                raise DocumentError(
                    path,
                    "encrypted",
                    f"cannot decrypt: {exc}",
                    hint="Install the 'cryptography' package to open AES-encrypted PDFs.",
                ) from None
            except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
                # pypdf signals damage with its own errors but also with plain Python ones
                # from deep in its object parser.
                raise DocumentError(path, "malformed", _describe(exc)) from None
            if count == 0:
                raise DocumentError(path, "empty", "the PDF has no pages")
            pages: list[str] = []
            failed: list[int] = []
            for number, page in enumerate(reader.pages, start=1):
                try:
                    pages.append(page.extract_text() or "")
                except LimitReachedError:
                    raise
                except Exception:  # one bad page must not lose the others
                    pages.append("")
                    failed.append(number)
            title = _pdf_title(reader)
        notes: list[str] = []
        if failed:
            notes.append(f"text extraction failed on page(s) {_page_ranges(failed)}")
        if len(failed) == count:
            raise DocumentError(path, "malformed", "text extraction failed on every page")
        blank = [n for n, text in enumerate(pages, start=1) if not text.strip()]
        if blank and len(blank) < count and blank != failed:
            notes.append(f"no text layer on page(s) {_page_ranges(blank)}")
        notes.extend(fold_parser_noise(noise))
        return ParsedFile(pages=pages, title=title, notes=notes)

    @staticmethod
    def _decrypt(reader: object, path: Path, password: str | None) -> None:
        from pypdf import PasswordType, PdfReader

        assert isinstance(reader, PdfReader)
        # Files with only an owner password open with the empty user password.
        if reader.decrypt("") != PasswordType.NOT_DECRYPTED:
            return
        if password is None:
            raise DocumentError(
                path,
                "encrypted",
                "encrypted PDF; no password given",
                hint="Pass its password (--password, or passwords={path: ...}).",
            )
        if reader.decrypt(password) == PasswordType.NOT_DECRYPTED:
            raise DocumentError(
                path, "encrypted", "encrypted PDF; wrong password", hint="Check the password."
            )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def fold_parser_noise(messages: Iterable[str], *, limit: int = 5) -> list[str]:
    """A parser's warnings as a few notes for the file's report: messages that differ only
    in their numbers (``Ignoring wrong pointing object 12 0 (offset 345)``, hundreds of them
    on a damaged PDF) fold into one with a count, and at most ``limit`` kinds are listed."""
    kinds: dict[str, list[str]] = {}
    for message in _dedupe(messages):
        kinds.setdefault(re.sub(r"\d+", "#", message), []).append(" ".join(message.split()))
    notes = [
        same[0] + (f" (and {len(same) - 1} more like it)" if len(same) > 1 else "")
        for same in kinds.values()
    ]
    if len(notes) > limit:
        rest = sum(len(same) for same in list(kinds.values())[limit:])
        notes = [*notes[:limit], f"and {rest} other parser warning(s)"]
    return notes


def _dedupe(messages: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(m.strip() for m in messages if m.strip()))


def _pdf_title(reader: object) -> str | None:
    try:
        meta = getattr(reader, "metadata", None)
        title = meta.title if meta is not None else None
    except Exception:  # unreadable metadata is common and never worth failing a load
        return None
    if not isinstance(title, str):
        return None
    title = " ".join(title.split())
    # Producers write placeholders ("untitled", "Microsoft Word - x.docx"); those are worse
    # than the file name.
    if not title or title.lower() in {"untitled", "title"} or title.startswith("Microsoft "):
        return None
    return title


class LoaderRegistry:
    """The loaders in use, by file suffix. Later registrations win.

    Args:
        loaders: The loaders; PDF, plain text and Markdown when ``None``.
    """

    def __init__(self, loaders: Iterable[Loader] | None = None) -> None:
        self._by_suffix: dict[str, Loader] = {}
        for loader in (PdfLoader(), TextLoader(), MarkdownLoader()) if loaders is None else loaders:
            self.register(loader)

    def register(self, loader: Loader) -> None:
        """Use ``loader`` for its suffixes."""
        for suffix in loader.suffixes:
            self._by_suffix[suffix.lower()] = loader

    @property
    def suffixes(self) -> list[str]:
        """Every suffix a loader is registered for."""
        return sorted(self._by_suffix)

    def supports(self, path: str | Path) -> bool:
        """Whether a loader reads files like ``path``."""
        return Path(path).suffix.lower() in self._by_suffix

    def for_path(self, path: str | Path) -> Loader:
        """The loader for ``path``; raises ``DocumentError("unsupported")`` if none."""
        loader = self._by_suffix.get(Path(path).suffix.lower())
        if loader is None:
            raise DocumentError(
                path,
                "unsupported",
                f"no loader for {Path(path).suffix or 'files without a suffix'}",
                hint=f"Supported: {', '.join(self.suffixes)}.",
            )
        return loader


def read_file(path: Path) -> bytes:
    """The bytes of ``path``; ``DocumentError`` when unreadable or empty."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(path, "unreadable", exc.strerror or str(exc)) from None
    if not data:
        raise DocumentError(path, "empty", "the file is empty (0 bytes)")
    return data


def load_document(
    path: str | Path,
    *,
    registry: LoaderRegistry | None = None,
    password: str | None = None,
    metadata: Mapping[str, MetadataValue] | None = None,
) -> Document:
    """Load one file in this process (no time or memory guard; ingestion adds those).

    Args:
        path: The file.
        registry: Which loaders to use; the default ones when ``None``.
        password: For encrypted PDFs.
        metadata: User metadata to attach.

    Raises:
        DocumentError: The file is missing, empty, encrypted, malformed or unsupported.
    """
    path = Path(path)
    loader = (registry or LoaderRegistry()).for_path(path)
    data = read_file(path)
    parsed = loader.parse(data, path=path, password=password)
    return build_document(
        parsed, id=document_id(data), path=path, media_type=loader.media_type, metadata=metadata
    )
