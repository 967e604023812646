"""Evidence: sentence ids, whole-chunk packing, exact resolution."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from maestro_lite.evidence import EvidencePool, sentence_spans
from maestro_lite.retrieval import SearchHit
from maestro_lite.tokens import count_tokens

from .conftest import V1, V2, make_chunk


def test_sentences_of_a_clause() -> None:
    spans = sentence_spans(V1)
    sentences = [V1[s:e] for s, e in spans]
    assert sentences[1] == "Either party may terminate this Agreement on 90 days written notice."
    assert len(sentences) == 4


@given(st.text(alphabet="ab .!?\nXY1", max_size=300))
def test_sentence_spans_are_ordered_disjoint_and_inside_the_text(text: str) -> None:
    spans = sentence_spans(text)
    last = 0
    for s, e in spans:
        assert last <= s < e <= len(text)
        assert text[s:e] == text[s:e].strip()
        last = e
    # Nothing but whitespace is lost.
    covered = "".join(text[s:e] for s, e in spans)
    assert covered.replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_packing_takes_whole_chunks_best_first_within_the_budget() -> None:
    big = make_chunk("big", "Big", "Word " * 400 + "end.", 0)
    a = make_chunk("v1", "A", V1)
    b = make_chunk("v2", "B", V2)
    hits = [SearchHit(chunk=c, score=1.0, rank=i) for i, c in enumerate([a, big, b], 1)]
    pool = EvidencePool.from_hits(hits, max_tokens=count_tokens(V1) + count_tokens(V2) + 200)
    assert [c.id for c in pool.chunks] == ["v1:0", "v2:0"]  # big skipped, never cut
    assert pool.ids[0] == "c1.s1" and "c2.s1" in pool.ids


def test_ids_resolve_to_exact_spans_and_unknown_ids_are_reported() -> None:
    chunk = make_chunk("v2", "B", V2).model_copy(update={"start": 100, "end": 100 + len(V2)})
    pool = EvidencePool.from_hits([SearchHit(chunk=chunk, score=1, rank=1)], max_tokens=10_000)
    citations, unknown = pool.resolve(["c1.s2", "c9.s9"])
    assert unknown == ["c9.s9"]
    cit = citations[0]
    assert cit.quote == "Either party may terminate this Agreement on 60 days written notice."
    assert V2[cit.start - 100 : cit.end - 100] == cit.quote  # offsets are page offsets
    again = EvidencePool.from_citations(citations, {chunk.id: chunk})
    assert again.ids == ["e1"]
    assert again.resolve(["e1"])[0][0].quote == cit.quote


def test_pdf_line_breaks_do_not_split_sentences_but_blank_lines_and_bullets_do() -> None:
    text = (
        "If a force majeure event prevents a Party from performing for more than 100\n"
        "consecutive days, either Party may terminate.\n\nSection 2 Termination Rights\n"
        "- first item of a list\n- second item of a list"
    )
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert sentences[0].startswith("If a force majeure") and sentences[0].endswith("terminate.")
    assert sentences[1] == "Section 2 Termination Rights"
    assert sentences[-2:] == ["- first item of a list", "- second item of a list"]


def test_overlapping_chunks_offer_each_sentence_once() -> None:
    text = "Alpha is first here. Beta comes second. Gamma is the third one."
    cut = text.index("Beta")
    first = make_chunk("d", "D", text[: text.index("Gamma")], 0)
    second = make_chunk("d", "D", text[cut:], 1).model_copy(
        update={"doc_start": cut, "doc_end": len(text), "start": cut, "end": len(text)}
    )
    hits = [SearchHit(chunk=c, score=1.0, rank=i) for i, c in enumerate([first, second], 1)]
    pool = EvidencePool.from_hits(hits, max_tokens=10_000)
    quotes = [item.text for item in pool.items]
    assert quotes == ["Alpha is first here.", "Beta comes second.", "Gamma is the third one."]
    assert pool.ids == ["c1.s1", "c1.s2", "c2.s1"]
