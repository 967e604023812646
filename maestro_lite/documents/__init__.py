"""Documents: loading, pages with offsets, chunks."""

from .chunking import Chunker
from .loaders import (
    Loader,
    LoaderRegistry,
    MarkdownLoader,
    ParsedFile,
    PdfLoader,
    TextLoader,
    build_document,
    document_id,
    load_document,
)
from .model import PAGE_SEPARATOR, Chunk, Document, DocumentInfo, MetadataValue, Page

__all__ = [
    "PAGE_SEPARATOR",
    "Chunk",
    "Chunker",
    "Document",
    "DocumentInfo",
    "Loader",
    "LoaderRegistry",
    "MarkdownLoader",
    "MetadataValue",
    "Page",
    "ParsedFile",
    "PdfLoader",
    "TextLoader",
    "build_document",
    "document_id",
    "load_document",
]
