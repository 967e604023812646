"""Documents: loading, pages with offsets, chunks."""

from .model import PAGE_SEPARATOR, Chunk, Document, DocumentInfo, MetadataValue, Page

__all__ = ["PAGE_SEPARATOR", "Chunk", "Document", "DocumentInfo", "MetadataValue", "Page"]
