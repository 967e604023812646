"""Answer metrics: exact match and token F1 (SQuAD/HotpotQA style), citation precision,
supporting-document recall, and key figures for financial answers."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = [
    "citation_precision",
    "exact_match",
    "figure_recall",
    "key_figures",
    "normalize_answer",
    "normalize_space",
    "supporting_recall",
    "token_f1",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the official SQuAD/HotpotQA
    normalisation)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalize_space(text: str) -> str:
    """Whitespace collapsed (for comparing quotes with source text)."""
    return " ".join(text.split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds if g is not None))


def _f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    # HotpotQA scores yes/no/noanswer only as exact matches.
    special = {"yes", "no", "noanswer"}
    if (" ".join(pred_tokens) in special or " ".join(gold_tokens) in special) and (
        pred_tokens != gold_tokens
    ):
        return 0.0
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """The best token F1 of the prediction against any gold answer."""
    return max((_f1(prediction, g) for g in golds if g), default=0.0)


def citation_precision(quotes: Sequence[str], gold_passages: Iterable[str]) -> float | None:
    """Share of ``quotes`` that lie (whitespace-normalised) inside a gold passage; ``None``
    when there are no quotes (no citation is not a precise citation)."""
    if not quotes:
        return None
    golds = [normalize_space(p) for p in gold_passages]
    good = sum(any(normalize_space(q) in g for g in golds) for q in quotes)
    return good / len(quotes)


def supporting_recall(found: Iterable[str], gold: Iterable[str]) -> float:
    """Share of the gold ids among ``found`` (1.0 when there is no gold)."""
    wanted = set(gold)
    if not wanted:
        return 1.0
    return len(wanted & set(found)) / len(wanted)


# -- figures ----------------------------------------------------------------------------------

_SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "millions": 1e6,
    "mn": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "billions": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<neg>[-\u2212(])?\$?\s?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"\s?(?P<unit>%|percent\b|thousand\b|millions?\b|mn\b|billions?\b|bn\b|trillion\b|[kmb]\b)?",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(19|20)\d\d$")


def key_figures(text: str) -> list[tuple[float, bool]]:
    """The figures a text states, as ``(value, is_percent)`` with scale words applied
    ($82,959 million -> 82,959,000,000; 12.5% -> 12.5 percent). Years, quarter numbers and
    small counts (below 10 without a unit) are left out: they name periods, not results."""
    out: list[tuple[float, bool]] = []
    for match in _NUMBER.finditer(text):
        raw = match.group("num")
        unit = (match.group("unit") or "").lower()
        value = float(raw.replace(",", ""))
        if not unit and ("," not in raw and _YEAR.match(raw)):
            continue
        if not unit and value < 10 and "." not in raw:
            continue
        percent = unit in ("%", "percent")
        if not percent:
            value *= _SCALES.get(unit, 1.0)
        out.append((value, percent))
    return out


def _same_figure(a: tuple[float, bool], b: tuple[float, bool], tolerance: float) -> bool:
    (x, xp), (y, yp) = a, b
    if xp != yp:
        return False
    if x == y:
        return True
    return abs(x - y) <= tolerance * max(abs(x), abs(y))


def figure_recall(prediction: str, reference: str, *, tolerance: float = 0.005) -> float | None:
    """Share of the reference's key figures that the prediction states (within a relative
    ``tolerance``, so $82.96 billion matches $82,959 million); ``None`` when the reference
    states no figure. A figure also matches at another scale (83,000 vs 83 billion) only
    when its digits agree, which is how units are usually dropped in prose."""
    wanted = key_figures(reference)
    if not wanted:
        return None
    stated = key_figures(prediction)
    hits = 0
    for figure in wanted:
        if any(_same_figure(figure, s, tolerance) for s in stated) or any(
            _same_digits(figure, s, tolerance) for s in stated
        ):
            hits += 1
    return hits / len(wanted)


def _same_digits(a: tuple[float, bool], b: tuple[float, bool], tolerance: float) -> bool:
    # "$82,959 million" vs "82,959" (the unit left out) or "$82.959 billion".
    (x, xp), (y, yp) = a, b
    if xp or yp or x == 0 or y == 0:
        return False
    for scale in (1e3, 1e6, 1e9):
        for big, small in ((x, y), (y, x)):
            if abs(big / scale - small) <= tolerance * abs(small):
                return True
    return False
