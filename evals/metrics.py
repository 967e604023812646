"""Ranking metrics, computed the way BEIR and pytrec_eval compute them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["mean", "ndcg_at", "recall_at"]


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with graded relevance ``relevant[id]`` (absent ids have gain 0)."""
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int] | set[str], k: int) -> float:
    """Share of the relevant ids found in the first ``k``."""
    wanted = {doc for doc in relevant if not isinstance(relevant, Mapping) or relevant[doc] > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(ranked[:k])) / len(wanted)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (0 for no values)."""
    return sum(values) / len(values) if values else 0.0
