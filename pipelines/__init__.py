"""Ready-made pipelines on the public API of maestro-lite: research, compare, extract,
summarize."""

from ._docs import DocumentSet, corpus_name_for, document_files, ingest_documents, resolve
from .compare import (
    AspectComparison,
    Compare,
    Comparison,
    DocumentPosition,
    PageRange,
    comparison_plan,
)
from .extract import (
    ExtractionOutput,
    ExtractionRecord,
    ExtractionSummary,
    Extractor,
    FieldValue,
    ItemRecord,
    extraction_plan,
    items_plan,
    optional_model,
    schema_from_json,
)
from .research import (
    DocumentRef,
    Finding,
    Research,
    ResearchReport,
    default_requirements,
    research_plan,
)
from .summarize import (
    DEFAULT_SECTIONS,
    Bullet,
    Section,
    SectionSummary,
    Summarize,
    SummaryReport,
    overall_status,
    summary_plan,
    write_summaries,
)

__all__ = [
    # research
    "Research",
    "ResearchReport",
    "Finding",
    "DocumentRef",
    "default_requirements",
    "research_plan",
    # compare
    "Compare",
    "Comparison",
    "AspectComparison",
    "DocumentPosition",
    "PageRange",
    "comparison_plan",
    # extract
    "Extractor",
    "ExtractionOutput",
    "ExtractionRecord",
    "ExtractionSummary",
    "FieldValue",
    "ItemRecord",
    "extraction_plan",
    "items_plan",
    "optional_model",
    "schema_from_json",
    # summarize
    "Summarize",
    "SummaryReport",
    "SectionSummary",
    "Section",
    "Bullet",
    "DEFAULT_SECTIONS",
    "summary_plan",
    "overall_status",
    "write_summaries",
    # documents
    "DocumentSet",
    "corpus_name_for",
    "document_files",
    "ingest_documents",
    "resolve",
]
