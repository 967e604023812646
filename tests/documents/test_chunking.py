"""Chunking: exact offsets, nothing lost, token limits, preferred boundaries."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from maestro_lite.documents.chunking import Chunker
from maestro_lite.documents.loaders import ParsedFile, build_document
from maestro_lite.documents.model import Chunk, Document
from maestro_lite.tokens import count_tokens


def _document(*pages: str) -> Document:
    return build_document(
        ParsedFile(pages=list(pages)), id="doc", path="/tmp/doc.txt", media_type="text/plain"
    )


def _check_invariants(document: Document, chunks: list[Chunk], chunker: Chunker) -> None:
    covered: dict[int, set[int]] = {}
    for index, chunk in enumerate(chunks):
        page = document.pages[chunk.page - 1]
        assert chunk.index == index and chunk.id == f"doc:{index}"
        assert page.text[chunk.start : chunk.end] == chunk.text
        assert document.text[chunk.doc_start : chunk.doc_end] == chunk.text
        assert chunk.doc_start == page.start + chunk.start
        assert chunk.text == chunk.text.strip() and chunk.text
        assert count_tokens(chunk.text) <= chunker.chunk_tokens
        covered.setdefault(chunk.page, set()).update(range(chunk.start, chunk.end))
    for page in document.pages:
        for i, char in enumerate(page.text):
            if not char.isspace():
                assert i in covered.get(page.number, set()), f"lost {char!r} at {i}"
    starts = [(c.page, c.start) for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


_words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
)
_sentence = st.lists(_words, min_size=1, max_size=30).map(" ".join).map(lambda s: s + ".")
_paragraph = st.lists(_sentence, min_size=1, max_size=8).map(" ".join)
_page = st.lists(_paragraph, min_size=0, max_size=6).map("\n\n".join)


@settings(max_examples=60, deadline=None)
@given(
    pages=st.lists(_page, min_size=1, max_size=3),
    size=st.integers(min_value=16, max_value=120),
    overlap_share=st.floats(min_value=0.0, max_value=0.45),
)
def test_offsets_round_trip_and_nothing_is_lost(
    pages: list[str], size: int, overlap_share: float
) -> None:
    chunker = Chunker(chunk_tokens=size, overlap_tokens=int(size * overlap_share))
    document = _document(*pages)
    _check_invariants(document, chunker.chunk(document), chunker)


@settings(max_examples=40, deadline=None)
@given(text=st.text(min_size=0, max_size=3000))
def test_arbitrary_text_round_trips(text: str) -> None:
    # No sentence structure at all (random code points, long runs without spaces): the
    # chunker must fall back to token boundaries and still lose nothing.
    chunker = Chunker(chunk_tokens=24, overlap_tokens=5)
    document = _document(text)
    _check_invariants(document, chunker.chunk(document), chunker)


def test_chunks_end_at_paragraphs_then_sentences() -> None:
    paragraph = " ".join(f"Sentence {i} talks about topic {i}." for i in range(12))
    document = _document("\n\n".join([paragraph] * 4))
    chunker = Chunker(chunk_tokens=150, overlap_tokens=0)
    chunks = chunker.chunk(document)
    _check_invariants(document, chunks, chunker)
    assert all(c.text.endswith(".") for c in chunks)  # never mid-sentence
    # A paragraph (about 108 tokens) fits: the break after it wins over later sentences.
    assert chunks[0].text == paragraph
    assert count_tokens(paragraph) < 150 < 2 * count_tokens(paragraph)


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    text = " ".join(f"Fact number {i} is stated here." for i in range(200))
    document = _document(text)
    no_overlap = Chunker(chunk_tokens=64, overlap_tokens=0).chunk(document)
    assert all(a.end <= b.start for a, b in itertools.pairwise(no_overlap))
    overlapping = Chunker(chunk_tokens=64, overlap_tokens=20).chunk(document)
    for a, b in itertools.pairwise(overlapping):
        assert b.start < a.end  # shared text
        shared = document.pages[0].text[b.start : a.end]
        assert 5 <= count_tokens(shared) <= 20
        assert shared.startswith("Fact number")  # starts at a sentence
    assert len(overlapping) > len(no_overlap)


def test_chunks_stay_on_their_page_and_skip_blank_pages() -> None:
    document = _document("alpha " * 50, "", "   \n ", "omega " * 10)
    chunks = Chunker(chunk_tokens=32, overlap_tokens=4).chunk(document)
    assert {c.page for c in chunks} == {1, 4}
    assert chunks[-1].text == ("omega " * 10).strip()


def test_overlap_must_stay_below_half_the_size() -> None:
    with pytest.raises(ValidationError):
        Chunker(chunk_tokens=100, overlap_tokens=50)
