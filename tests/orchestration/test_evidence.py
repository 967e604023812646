"""Evidence: sentence ids, whole-chunk packing into the model's window, exact resolution."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from maestro_lite.budget import Budget
from maestro_lite.documents import Chunk
from maestro_lite.evidence import EvidencePool, sentence_spans
from maestro_lite.models import FunctionModel, ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.plan import Plan, Step
from maestro_lite.retrieval import SearchFilter, SearchHit
from maestro_lite.tokens import count_tokens

from .conftest import V1, V2, MemoryRetriever, evidence, make_chunk, step_of


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


def _clauses(doc: str, n: int) -> list[Chunk]:
    """``n`` chunks of six sentences each, at distinct offsets of document ``doc``."""
    out = []
    for i in range(n):
        text = " ".join(
            f"Clause {i}.{j} of the {doc} agreement sets a fee of {i * 10 + j} dollars for "
            "each notice given in writing."
            for j in range(1, 7)
        )
        chunk = make_chunk(doc, f"Agreement {doc}", text, i)
        out.append(chunk.model_copy(update={"doc_start": i * 1000, "doc_end": i * 1000 + 999}))
    return out


async def test_inherited_evidence_counts_against_the_window_of_a_step_that_also_retrieves() -> None:
    window, output_tokens = 3000, 256
    sent: list[ModelCall] = []

    def answer(call: ModelCall) -> dict[str, Any]:
        sent.append(call)
        ids = list(evidence(call))[:30]  # each reading step cites 30 sentences
        return {
            "answer": "fees",
            "claims": [{"text": "fees", "evidence": ids[i : i + 8]} for i in range(0, len(ids), 8)],
        }

    steps = [
        Step(
            id=d,
            instruction=f"fees of {d}",
            queries=["fee notice writing clause"],
            k=12,
            filters=SearchFilter(document_ids=[d]),
        )
        for d in ("a", "b")
    ]
    steps.append(
        Step(
            id="both",
            kind="synthesize",
            instruction="compare the fees",
            depends_on=["a", "b"],
            queries=["fee dollars notice"],
            k=12,
        )
    )
    result = await Maestro(
        FunctionModel(answer, context_window=window),
        output_tokens=output_tokens,
        check_figures=False,
        focus=0,  # whole chunks: what is measured here is the window
    ).run(
        "fees",
        corpus=MemoryRetriever(_clauses("a", 12) + _clauses("b", 12)),
        plan=Plan(steps=steps),
        budget=Budget(max_rounds=1),
    )
    assert [result.steps[s].status for s in ("a", "b", "both")] == ["done"] * 3
    for call in sent:  # what the model was sent, schema instructions included, fits
        prompt = sum(count_tokens(m.content) + 4 for m in call.messages)
        assert prompt + output_tokens <= window, (step_of(call), prompt)
    final = evidence(sent[-1])
    inherited = [i for i in final if i.startswith("e")]
    assert len(inherited) == 60  # every sentence the two steps cited is offered again
    assert any(i.startswith("c") for i in final)  # and retrieved chunks fill the rest
