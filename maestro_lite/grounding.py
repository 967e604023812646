"""Are the figures of an answer in its evidence, and does it cite the documents it names?

Deterministic checks against invented numbers and misattributed sources.

Small models cite the right sentence and still write a wrong figure ("90 days" cited, "100
days" written). No judge model is reliable at catching that; string arithmetic is. A figure
is grounded when the same value appears in the evidence, after normalising thousands
separators, scale words ("2.5 million" = "2,500,000") and percentages. A date is grounded
by the same day of the same month, however written (an ISO date "2025-02-01" is grounded
by "February 1, 2025"); its day is never grounded by a stray number or the month's name
alone ("September 9" by "a September launch"), and its year is a figure of its own.

The same small models also attribute a true figure to the wrong document ("the 2023
agreement: 60 days", citing the 2025 one). Where documents are told apart by year (contract
versions, fiscal years), a claim that names a year must cite a document of that year.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

__all__ = [
    "NamedDate",
    "abstains",
    "dates",
    "distinguishing_years",
    "figures",
    "misattributed_years",
    "ungrounded_figures",
]

_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
    r"(?:\s*(%|(?:percent|per cent|million|billion|thousand|bn|mn|m|k)\b))?",
    re.IGNORECASE,
)
_SCALE = {"million": 1e6, "mn": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9, "thousand": 1e3, "k": 1e3}
_MONTHS = {
    m: i
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for m in names
}
# Capitalised only, as months are written in documents.
_MONTH_NAMES = "|".join(sorted((m.title() for m in _MONTHS), key=len, reverse=True))
_ORDINAL = r"(?:st|nd|rd|th)?"
_DATE = re.compile(
    rf"\b(?P<m1>{_MONTH_NAMES})\.?\s+(?P<d1>\d{{1,2}}){_ORDINAL}\b(?![.,]\d|\s*%)"
    rf"|(?<![\w.,])(?P<d2>\d{{1,2}}){_ORDINAL}\s+(?:(?:day\s+)?of\s+)?(?P<m2>{_MONTH_NAMES})\b"
    r"|(?<![\w.-])(?:19|20)\d{2}-(?P<m3>\d{2})-(?P<d3>\d{2})(?![\w-])"
)
"""A day of a month: "September 9", "Sept. 9th", "9 September", "31st day of December",
"2025-09-09"."""
_DAYS_IN = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class NamedDate(NamedTuple):
    """A day of a month named in a text (its year, if any, is a figure of its own)."""

    written: str
    """As written: ``"Sept. 9th"``, ``"2025-09-09"``."""
    day: int
    """``month * 100 + day``: 909 for September 9, however it is written."""
    digits: list[tuple[int, int]]
    """Where its day and month digits stand in the text (start, end)."""


def dates(text: str) -> list[NamedDate]:
    """The days of months that ``text`` names, in order."""
    out: list[NamedDate] = []
    for match in _DATE.finditer(text):
        month_name = match.group("m1") or match.group("m2")
        month = _MONTHS[month_name.lower()] if month_name else int(match.group("m3"))
        day_group = next(g for g in ("d1", "d2", "d3") if match.group(g))
        day = int(match.group(day_group))
        digits = [match.span(day_group)] + ([match.span("m3")] if match.group("m3") else [])
        if 1 <= month <= 12 and 1 <= day <= _DAYS_IN[month - 1]:
            out.append(NamedDate(match.group(0).strip(), month * 100 + day, digits))
    return out


def _figure(match: re.Match[str]) -> tuple[str, set[float]]:
    whole, fraction, unit = match.group(1), match.group(2), (match.group(3) or "").lower()
    base = float(whole.replace(",", "") + (f".{fraction}" if fraction else ""))
    values = {base}
    if unit in _SCALE:
        values.add(base * _SCALE[unit])
    return match.group(0).strip(), values


def figures(text: str) -> list[tuple[str, set[float]]]:
    """The figures of ``text``: each as written, with the values it may stand for."""
    return [_figure(match) for match in _NUMBER.finditer(text)]


def _significant(written: str, values: set[float]) -> bool:
    # Single-digit integers are mostly counts and list numbers ("2 documents", "step 3").
    return not (
        len(values) == 1 and next(iter(values)) < 10 and "." not in written and "%" not in written
    )


@lru_cache(maxsize=4096)
def _source_values(source: str) -> frozenset[float]:
    """Every value a source may ground: its figures. (A month's name grounds dates, see
    :func:`dates`, not the number of the month: "11 days" is not in "signed in November".)
    Cached: a run checks the same quotes, titles and task against many statements."""
    allowed: set[float] = set()
    for _, values in figures(source.replace("_", " ")):  # file names: "agreement_2023"
        allowed |= values
    return frozenset(allowed)


@lru_cache(maxsize=4096)
def _source_dates(source: str) -> frozenset[int]:
    """Every day of a month a source names (see :func:`dates`)."""
    return frozenset(d.day for d in dates(source.replace("_", " ")))


_Claimed = tuple[tuple[tuple[str, frozenset[float]], ...], tuple[tuple[str, int], ...]]


@lru_cache(maxsize=8192)
def _claimed(text: str) -> _Claimed:
    """The significant figures and the dates of a statement; a date's day is checked as
    part of its date, not as a number. (Cached: every round checks every step.)"""
    named = dates(text)
    digits = {start for date in named for start, _ in date.digits}
    numbers = []
    for match in _NUMBER.finditer(text):
        if match.start() not in digits:
            written, values = _figure(match)
            if _significant(written, values):
                numbers.append((written, frozenset(values)))
    return tuple(numbers), tuple((date.written, date.day) for date in named)


def ungrounded_figures(text: str, sources: Iterable[str]) -> list[str]:
    """Figures in ``text`` whose value appears in none of ``sources``, and dates (a day of a
    month) that none of them names: "September 9" is not grounded by "September 30"."""
    numbers, days = _claimed(text)
    if not numbers and not days:
        return []  # nothing to ground: the sources need not be read
    allowed: set[float] = set()
    named: set[int] = set()
    for source in sources:
        allowed |= _source_values(source)
        if days:
            named |= _source_dates(source)
    missing: list[str] = []
    for written, values in numbers:
        if not any(abs(v - a) <= 1e-9 * max(1.0, abs(a)) for v in values for a in allowed):
            missing.append(written)
    missing += [written for written, day in days if day not in named]
    return list(dict.fromkeys(missing))


_YEAR = re.compile(r"(?<!\d)(19\d{2}|20\d{2})(?!\d)")


_DATED = re.compile(
    r"\b(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December)\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2}\b",
    re.IGNORECASE,
)


def distinguishing_years(names: Iterable[str]) -> set[str]:
    """Years that name some documents of a corpus but not all (versions, fiscal years).

    A year inside a full date ("Launch Date Moved to October 14, 2025") is what a document
    says, not which version it is; and one year alone tells no versions apart."""
    per_document = [set(_YEAR.findall(_DATED.sub(" ", name.replace("_", " ")))) for name in names]
    if len(per_document) < 2:
        return set()
    every = set.intersection(*per_document)
    distinct = set.union(*per_document) - every
    return distinct if len(set.union(*per_document)) >= 2 else set()


def misattributed_years(text: str, cited_names: Iterable[str], years: set[str]) -> list[str]:
    """Years in ``text`` that name a document (see :func:`distinguishing_years`) none of whose
    text is cited: "the 2023 agreement says 60 days" citing only the 2025 agreement."""
    cited = {y for name in cited_names for y in _YEAR.findall(name.replace("_", " "))}
    named = [y for y in _YEAR.findall(text) if y in years]
    return [y for y in dict.fromkeys(named) if y not in cited]


_ABSTAINS = re.compile(
    r"\b(?:(?:does|do|did)\s*(?:not|n't)\s+(?:say|state|mention|contain|include|specify|give|"
    r"provide|indicate)|no\s+(?:information|evidence|mention|data|details?)\b|not\s+(?:stated|"
    r"mentioned|specified|given|found|available|provided|contained)|cannot\s+be\s+(?:determined|"
    r"answered|found)|(?:is|are)\s+unknown)",
    re.IGNORECASE,
)


def abstains(text: str) -> bool:
    """Whether an answer says the evidence does not hold what was asked, and states no
    figure or date of its own: the right answer about something absent, with nothing to
    cite."""
    numbers, days = _claimed(text)
    return bool(_ABSTAINS.search(text)) and not numbers and not days
