"""Answer metrics: exact match and token F1 (SQuAD/HotpotQA style), citation precision,
supporting-document recall, and key figures for financial answers."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import zip_longest
from typing import NamedTuple

__all__ = [
    "Figure",
    "citation_precision",
    "exact_match",
    "figure_recall",
    "figure_support",
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
#
# Signs. A figure is negative when it is written so ("-5%", "(5)%", "$(1.2) billion") or when
# the word nearest to it, within its clause, says it went down ("declined 5%", "a net loss of
# $2 billion", "5% lower"); positive when that word says it went up ("grew 5%"); unsigned
# otherwise. Two figures match when their magnitudes match and their signs do not contradict
# each other: "grew 5%" never matches a reference's "declined -5%", while "5%" (no sign
# stated) or "decreased 5%" does.

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
    r"(?<![\w.])(?P<minus>[-\u2212])?(?:\$\s?)?(?P<open>\()?(?:\$\s?)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?P<close>\))?"
    r"\s?(?P<unit>%|percent\b|thousand\b|millions?\b|mn\b|billions?\b|bn\b|trillion\b|[kmb]\b)?",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(19|20)\d\d$")
_CLAUSE = re.compile(r"[;,:()]|\.(?:\s|$)")
_DOWN = frozenset(
    "decline declined declines declining decrease decreased decreases decreasing down fell "
    "fall falls falling drop dropped drops lower loss losses lost negative reduction reduced "
    "contraction deficit".split()
)
_UP = frozenset(
    "increase increased increases increasing grew grow grows growth rose rise rises rising up "
    "higher gain gains gained improved improvement".split()
)
_WINDOW = 5
"""Words of a figure's clause, before it, that may say which way it went."""


class Figure(NamedTuple):
    """A figure a text states."""

    value: float
    """The magnitude, scale words applied ($82,959 million -> 82,959,000,000)."""
    percent: bool
    sign: int
    """-1 written negative or going down, +1 going up, 0 unsigned (see the rule above)."""


def _direction(before: str, after: str) -> int:
    """The sign the nearest direction word gives a figure (0 when there is none)."""
    clause_before = _CLAUSE.split(before)[-1]
    clause_after = _CLAUSE.split(after)[0]
    nearest = re.findall(r"[a-z]+", clause_before.lower())[-_WINDOW:][::-1]
    following = re.findall(r"[a-z]+", clause_after.lower())[:2]
    # Nearest first, alternating sides: "down 3%, up 5%" gives 3% its own word.
    ordered = [w for pair in zip_longest(nearest, following) for w in pair if w]
    for word in ordered:
        if word in _DOWN:
            return -1
        if word in _UP:
            return 1
    return 0


def key_figures(text: str) -> list[Figure]:
    """The figures a text states, with scale words applied and their signs ($82,959 million
    -> 82,959,000,000; "declined 12.5%" -> 12.5 percent, negative). Years, quarter numbers and
    small counts (below 10 without a unit) are left out: they name periods, not results."""
    out: list[Figure] = []
    previous = 0
    for match in _NUMBER.finditer(text):
        raw = match.group("num")
        unit = (match.group("unit") or "").lower()
        value = float(raw.replace(",", ""))
        before, previous = text[previous : match.start()], match.end()
        if not unit and ("," not in raw and _YEAR.match(raw)):
            continue
        if not unit and value < 10 and "." not in raw:
            continue
        percent = unit in ("%", "percent")
        if not percent:
            value *= _SCALES.get(unit, 1.0)
        written = bool(match.group("minus")) or bool(match.group("open") and match.group("close"))
        sign = -1 if written else _direction(before, text[match.end() : match.end() + 40])
        out.append(Figure(value, percent, sign))
    return out


def _signs_agree(a: Figure, b: Figure) -> bool:
    return not (a.sign and b.sign and a.sign != b.sign)


def _same_figure(a: Figure, b: Figure, tolerance: float) -> bool:
    if a.percent != b.percent or not _signs_agree(a, b):
        return False
    x, y = a.value, b.value
    if x == y:
        return True
    return abs(x - y) <= tolerance * max(abs(x), abs(y))


def _matches(figure: Figure, stated: Sequence[Figure], tolerance: float) -> bool:
    return any(
        _same_figure(figure, s, tolerance) or _same_digits(figure, s, tolerance) for s in stated
    )


def figure_recall(prediction: str, reference: str, *, tolerance: float = 0.005) -> float | None:
    """Share of the reference's key figures that the prediction states (within a relative
    ``tolerance``, so $82.96 billion matches $82,959 million, and with signs that do not
    contradict each other); ``None`` when the reference states no figure. A figure also
    matches at another scale (83,000 vs 83 billion) only when its digits agree, which is how
    units are usually dropped in prose."""
    wanted = key_figures(reference)
    if not wanted:
        return None
    stated = key_figures(prediction)
    return sum(_matches(figure, stated, tolerance) for figure in wanted) / len(wanted)


def figure_support(
    prediction: str, sources: Iterable[str], *, tolerance: float = 0.005
) -> tuple[int, int]:
    """``(supported, stated)``: how many of the prediction's key figures appear among the
    figures of ``sources`` (the evidence it cites, the reference answer), matched as in
    :func:`figure_recall`, out of how many it states. A figure found in neither is an
    extra figure the answer cannot back: wrong, or computed."""
    known = [f for text in sources for f in key_figures(text)]
    stated = key_figures(prediction)
    return sum(_matches(f, known, tolerance) for f in stated), len(stated)


def _same_digits(a: Figure, b: Figure, tolerance: float) -> bool:
    # "$82,959 million" vs "82,959" (the unit left out) or "$82.959 billion".
    (x, xp, _), (y, yp, _) = a, b
    if xp or yp or x == 0 or y == 0 or not _signs_agree(a, b):
        return False
    for scale in (1e3, 1e6, 1e9):
        for big, small in ((x, y), (y, x)):
            if abs(big / scale - small) <= tolerance * abs(small):
                return True
    return False
