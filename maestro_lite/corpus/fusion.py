"""Fusing dense and lexical rankings into one.

Two methods, both over ``(id, score)`` lists sorted best first:

* :func:`convex_fusion` (the default for hybrid search): min-max normalise each list's scores
  to [0, 1] and rank by ``lexical_weight * lexical + (1 - lexical_weight) * dense``; an id
  missing from a list counts as that list's minimum. Bruch et al. (2023, "An Analysis of
  Fusion Functions for Hybrid Retrieval") found this beats RRF when scores are informative;
  on SciFact's test split it gives nDCG@10 0.722 against RRF's 0.706
  (``python -m evals.scifact``).
* :func:`reciprocal_rank_fusion`: ``sum(weight / (k + rank))``; uses ranks only, so it needs
  no normalisation but throws away how much better one hit is than the next.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["convex_fusion", "reciprocal_rank_fusion"]

Ranking = Sequence[tuple[str, float]]


def _normalized(ranking: Ranking) -> dict[str, float]:
    if not ranking:
        return {}
    scores = [s for _, s in ranking]
    lo, hi = min(scores), max(scores)
    if hi <= lo:
        return {id: 1.0 for id, _ in ranking}
    return {id: (s - lo) / (hi - lo) for id, s in ranking}


def convex_fusion(
    dense: Ranking, lexical: Ranking, *, lexical_weight: float = 0.5
) -> list[tuple[str, float]]:
    """Rank the union of both lists by a weighted sum of min-max normalised scores.

    Args:
        dense: ``(id, similarity)`` pairs, best first.
        lexical: ``(id, BM25 score)`` pairs, best first.
        lexical_weight: Weight of the lexical score, in [0, 1].
    """
    if not 0.0 <= lexical_weight <= 1.0:
        raise ValueError("lexical_weight must be in [0, 1]")
    d, lex = _normalized(dense), _normalized(lexical)
    fused = {
        id: (1.0 - lexical_weight) * d.get(id, 0.0) + lexical_weight * lex.get(id, 0.0)
        for id in (*d, *lex)
    }
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


def reciprocal_rank_fusion(
    rankings: Sequence[Ranking], *, k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Rank by ``sum(weight / (k + rank))`` over the lists (ranks start at 1).

    Args:
        rankings: Lists of ``(id, score)``, each best first (scores are ignored).
        k: Damping constant; 60 is the value of Cormack et al. (2009).
        weights: One weight per list; all 1 when ``None``.
    """
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, (id, _) in enumerate(ranking, start=1):
            fused[id] = fused.get(id, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)
