"""Where sources disagree, found without a model.

A small judge model reads "the launch is on October 14" next to "the launch is on September
9" and reports no contradiction. String arithmetic does better: two sentences from different
documents that talk about the same subject (they share the question's words) and state
different values of one kind (a date, an amount of money, a duration, a percentage, a
measurement; units normalised, so "12 months" is "one year" and "$2.5 million" is
"$2,500,000") are a conflict. Where one document is marked official, executed, restated or
superseding, or is simply later, it prevails, and the conflict says why.

The executor shows the conflicts among a step's evidence to the model before it answers, and
the validator checks that the answer states each side with its source (see
:func:`unresolved`). Both only read text: nothing here calls a model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel

from .grounding import dates

__all__ = [
    "Conflict",
    "ConflictSide",
    "Statement",
    "asked_kinds",
    "conflict_note",
    "find_conflicts",
    "told",
    "to_complete",
    "stem",
    "terms",
    "unresolved",
    "values",
]


@dataclass(frozen=True)
class Statement:
    """A sentence of evidence, as the conflict finder reads it."""

    text: str
    document_id: str
    title: str
    ref: str = ""
    """How the step's model cites it (an evidence id such as ``c2.s3``), if it can."""


class ConflictSide(BaseModel):
    """One document's side of a conflict."""

    document_id: str
    title: str
    value: str
    """The value as the document writes it: ``"October 14, 2025"``, ``"60 days"``."""
    sentence: str
    ref: str = ""


class Conflict(BaseModel):
    """Two documents stating different values of one kind about the same subject."""

    kind: str
    """``date``, ``money``, ``duration``, ``percent`` or a measurement's unit."""
    subject: list[str]
    """The words both sentences share with the question (stemmed)."""
    sides: tuple[ConflictSide, ConflictSide]
    prevails: int | None = None
    """Index into ``sides`` of the side that prevails, when one does."""
    why: str = ""
    """Why it prevails: ``"marked official"``, ``"the later document (2025)"``."""

    def describe(self) -> str:
        """One line for a prompt or a report."""
        a, b = self.sides
        text = f"{_cite(a)} says {a.value!r} but {_cite(b)} says {b.value!r}"
        if self.prevails is not None:
            winner = self.sides[self.prevails]
            text += f"; {_cite(winner)} prevails: {self.why}"
        return text

    def example(self) -> str:
        """An answer that tells the conflict in full, for a model to follow."""
        a, b = self.sides
        if self.prevails is None:
            return f"{_title(a)} gives {a.value}, while {_title(b)} gives {b.value}."
        winner, other = self.sides[self.prevails], self.sides[1 - self.prevails]
        return (
            f"{winner.value}, as {_title(winner)} states ({self.why}); "
            f"{_title(other)} gives {other.value} instead."
        )


def _title(side: ConflictSide) -> str:
    return " ".join(side.title.split())[:80] or side.document_id


def _cite(side: ConflictSide) -> str:
    return f"{_title(side)} [{side.ref}]" if side.ref else _title(side)


# --- values -----------------------------------------------------------------------------

_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "eighteen": 18,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "forty-five": 45,
    "sixty": 60,
    "ninety": 90,
}
"""Numbers written as words ("a year" is left out: "6% a year" is a rate, not a term)."""
_DAYS_PER = {"day": 1.0, "week": 7.0, "month": 365.0 / 12, "year": 365.0}
_DURATION = re.compile(
    r"(?<![\w.$])(?P<n>\d+(?:\.\d+)?|"
    + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
    + r")(?:\s*\(\d+\))?[\s-]+(?:calendar\s+|business\s+|consecutive\s+)?"
    r"(?P<unit>day|week|month|year)s?\b",
    re.IGNORECASE,
)
_MONEY = re.compile(
    r"(?:US)?\$\s?(?P<n>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<f>\d+))?"
    r"(?:\s*(?P<scale>million|billion|thousand|bn|mn|m|k)\b)?",
    re.IGNORECASE,
)
_SCALE = {"million": 1e6, "mn": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9, "thousand": 1e3, "k": 1e3}
_PERCENT = re.compile(r"(?<![\w.])(?P<n>\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)", re.I)
_MEASURE_UNITS = {
    "degrees celsius": "°C",
    "degree celsius": "°C",
    "°c": "°C",
    "degrees fahrenheit": "°F",
    "°f": "°F",
    "kilograms": "kg",
    "kilogram": "kg",
    "kg": "kg",
    "grams": "g",
    "pounds": "lb",
    "lbs": "lb",
    "kilometers": "km",
    "kilometres": "km",
    "km": "km",
    "miles": "mi",
    "meters": "m",
    "metres": "m",
    "volts": "V",
    "volt": "V",
    "watts": "W",
    "units": "units",
    "employees": "employees",
    "people": "people",
    "minutes": "min",
    "hours": "h",
}
_MEASURE = re.compile(
    r"(?<![\w.$])(?P<n>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)[\s-]*(?P<unit>"
    + "|".join(re.escape(u) for u in sorted(_MEASURE_UNITS, key=len, reverse=True))
    + r")(?!\w)",
    re.IGNORECASE,
)
_YEAR_AFTER = re.compile(r"^,?\s*((?:19|20)\d{2})\b")


@dataclass(frozen=True)
class _Value:
    kind: str
    key: float
    written: str


def _number(text: str) -> float:
    word = text.lower()
    return float(_NUMBER_WORDS[word]) if word in _NUMBER_WORDS else float(text.replace(",", ""))


_RANGE = re.compile(
    r"(?<![\w.$,])(?P<n>\d+(?:\.\d+)?)(?P<sep>\s*(?:to|and|or|through|versus|vs\.?|-|\u2013|\u2014)\s*)"
    r"(?=(?:from\s+)?\d+(?:\.\d+)?(?:\s*\(\d+\))?[\s-]*"
    r"(?P<unit>%|(?:calendar\s+|business\s+|consecutive\s+)?[^\W\d_]+))",
    re.IGNORECASE,
)


def _ranges_spelled_out(text: str) -> str:
    """``text`` with the unit a range or pair shares written after each number: "from 90 to
    60 days" reads as "from 90 days to 60 days", "5 or 6%" as "5% or 6%"."""

    def spelled(match: re.Match[str]) -> str:
        unit = match.group("unit")
        value = match.group("n") + ("" if unit == "%" else " ") + unit
        if not _typed(value):
            return match.group(0)
        return value + match.group("sep")

    return _RANGE.sub(spelled, text)


@lru_cache(maxsize=8192)
def values(text: str) -> tuple[_Value, ...]:
    """The typed values a sentence states, normalised: dates as month and day (and year
    when written), durations in days, money in units, percentages, measurements. A range
    or pair that writes its unit once ("90 to 60 days") gives both values."""
    return _typed(_ranges_spelled_out(text))


def _typed(text: str) -> tuple[_Value, ...]:
    out: list[_Value] = []
    taken: list[tuple[int, int]] = []

    def free(span: tuple[int, int]) -> bool:
        return not any(a < span[1] and span[0] < b for a, b in taken)

    for named in dates(text):
        at = text.find(named.written)
        year = _YEAR_AFTER.match(text[at + len(named.written) :]) if at >= 0 else None
        written = named.written + (f", {year.group(1)}" if year else "")
        key = named.day + (int(year.group(1)) * 10_000 if year else 0)
        out.append(_Value("date", float(key), written))
        if at >= 0:
            taken.append((at, at + len(written)))
    for match in _MONEY.finditer(text):
        amount = float(match.group("n").replace(",", "") + "." + (match.group("f") or "0"))
        amount *= _SCALE.get((match.group("scale") or "").lower(), 1.0)
        out.append(_Value("money", amount, match.group(0).strip()))
        taken.append(match.span())
    for match in _PERCENT.finditer(text):
        if free(match.span()):
            out.append(_Value("percent", float(match.group("n")), match.group(0).strip()))
            taken.append(match.span())
    for match in _DURATION.finditer(text):
        if free(match.span()):
            days = _number(match.group("n")) * _DAYS_PER[match.group("unit").lower()]
            out.append(_Value("duration", round(days), match.group(0).strip()))
            taken.append(match.span())
    for match in _MEASURE.finditer(text):
        if free(match.span()):
            unit = _MEASURE_UNITS[match.group("unit").lower()]
            out.append(_Value(unit, _number(match.group("n")), match.group(0).strip()))
            taken.append(match.span())
    return tuple(out)


def _same(a: _Value, b: _Value) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == "date" and (a.key < 10_000 or b.key < 10_000):
        return a.key % 10_000 == b.key % 10_000  # a date without its year: month and day
    return math.isclose(a.key, b.key, rel_tol=1e-6)


# --- words ------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z][a-z0-9]*|\d+[a-z][a-z0-9]*", re.IGNORECASE)
_STOP = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our out over own
    same she should so some such than that the their them then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with would you your shall may must might each either neither per via than what
    did does change changed changes differ different between according says said say state
    stated versus vs new old first second third last next""".split()
)
_MONTH_WORDS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec day days week weeks month months year "
    "years percent".split()
)
_SUFFIXES = (
    "izations",
    "ization",
    "ations",
    "ation",
    "ments",
    "ment",
    "ions",
    "ion",
    "ings",
    "ing",
    "ies",
    "ied",
    "ates",
    "ated",
    "ate",
    "als",
    "al",
    "es",
    "ed",
    "s",
    "e",
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude stem that joins word forms ("termination", "terminate"; "renewal", "renew")."""
    word = word.lower()
    # Nouns in -ity join their adjective first ("liability": "liable"; "confidentiality":
    # "confidential"), then both lose the same suffix.
    if word.endswith("ility") and len(word) >= 8:
        word = word[:-5] + "le"
    elif word.endswith("ity") and len(word) >= 8:
        word = word[:-3]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    return word


@lru_cache(maxsize=16384)
def terms(text: str) -> frozenset[str]:
    """The content words of a text, stemmed (no stop words, months, units or numbers)."""
    out = set()
    for word in _WORD.findall(text):
        lower = word.lower()
        if lower in _STOP or lower in _MONTH_WORDS or lower in _NUMBER_WORDS:
            continue
        if len(lower) < 2:
            continue
        out.add(stem(lower))
    return frozenset(out)


# --- precedence -------------------------------------------------------------------------

_MARKERS = (
    (re.compile(r"\bofficial\b", re.I), "marked official"),
    (re.compile(r"\bsupersed\w*|\breplaces?\b", re.I), "it supersedes the other"),
    (re.compile(r"\bamended and restated\b|\brestated\b", re.I), "amended and restated"),
    (re.compile(r"\bexecuted\b|\bsigned\b", re.I), "executed"),
    (re.compile(r"\bapproved\b|\bdecision\b|\bdecided\b", re.I), "an approved decision"),
)
_FULL_DATE = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|"
    r"December)\s+(\d{1,2}),\s+((?:19|20)\d{2})\b"
)
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_MONTH_INDEX = {
    m: i
    for i, m in enumerate(
        "January February March April May June July August September October November "
        "December".split(),
        start=1,
    )
}


def _marker(side_sentences: Iterable[str], title: str, value: str) -> str | None:
    """Why a document's statement carries authority, if it says so: a sentence stating the
    value (or the title) marks it official, superseding, restated, executed or approved."""
    texts = [s for s in side_sentences if value in s] + [title]
    for pattern, why in _MARKERS:
        if any(pattern.search(t) for t in texts):
            return why
    return None


def _dated(sentences: Sequence[str], title: str, *, labelled: bool = False) -> int | None:
    """A document's date as yyyymmdd: a "Date:" line, else (unless ``labelled``) the year of
    its title (as yyyy0000) or a dateline near its top (a short line holding a full date)."""
    for text in sentences:
        found = re.search(r"\bDate[d:]?\s*:?\s*" + _FULL_DATE.pattern, text)
        if found:
            month, day, year = found.group(1), found.group(2), found.group(3)
            return int(year) * 10_000 + _MONTH_INDEX[month] * 100 + int(day)
    if labelled:
        return None
    years = _YEAR.findall(title)
    if years:
        return int(max(years)) * 10_000
    for text in sentences[:3]:
        for line in text.splitlines():
            match = _FULL_DATE.search(line)
            if match and len(line.strip()) <= 40:
                return (
                    int(match.group(3)) * 10_000
                    + _MONTH_INDEX[match.group(1)] * 100
                    + int(match.group(2))
                )
    return None


_ASKED = (
    (re.compile(r"\bwhen\b|\bdate\b|\bdeadline\b|\bwhat day\b", re.I), {"date"}),
    (
        re.compile(r"\bhow long\b|\bperiod\b|\bnotice\b|\bduration\b|\bterm\b", re.I),
        {"duration"},
    ),
    (
        re.compile(
            r"\bhow much\b|\bprice\w*|\bcost\w*|\bcap\b|\bamount\b|\bfee\w*|"
            r"\brevenue\b|\bincome\b|\bvalue\b|\bguidance\b|\bpay\w*",
            re.I,
        ),
        {"money", "percent"},
    ),
    (re.compile(r"\bpercent\w*|\brate\b|\bmargin\b|\bgrowth\b|\bshare\b", re.I), {"percent"}),
)


def asked_kinds(question: str) -> set[str]:
    """The kinds of value a question asks for ("when": a date; "notice period": a
    duration), so a conflict of that kind outranks one that merely shares its words."""
    return {kind for pattern, kinds in _ASKED if pattern.search(question) for kind in kinds}


def _plain(value: _Value) -> tuple[str, float]:
    """A value's identity across ways of writing it (a date without its year)."""
    return (value.kind, value.key % 10_000 if value.kind == "date" else value.key)


def _side(statement: Statement, value: _Value) -> ConflictSide:
    return ConflictSide(
        document_id=statement.document_id,
        title=statement.title,
        value=value.written,
        sentence=statement.text,
        ref=statement.ref,
    )


def _is_date_of(value: _Value, dated: int | None) -> bool:
    if value.kind != "date" or dated is None or dated % 10_000 == 0:
        return False
    return value.key == dated or value.key == dated % 10_000


def _precedence(
    a: ConflictSide, b: ConflictSide, by_document: dict[str, list[str]]
) -> tuple[int | None, str]:
    marks = [_marker(by_document[s.document_id], s.title, s.value) for s in (a, b)]
    if marks[0] and not marks[1]:
        return 0, marks[0]
    if marks[1] and not marks[0]:
        return 1, marks[1]
    dated = [_dated(by_document[s.document_id], s.title) for s in (a, b)]
    if dated[0] is not None and dated[1] is not None and dated[0] != dated[1]:
        later = 0 if dated[0] > dated[1] else 1
        shown = str(dated[later])
        when = shown[:4] if shown.endswith("0000") else f"{shown[:4]}-{shown[4:6]}-{shown[6:]}"
        return later, f"it is the later document ({when})"
    return None, ""


# --- finding ----------------------------------------------------------------------------


def find_conflicts(
    statements: Sequence[Statement], question: str, *, limit: int = 3
) -> list[Conflict]:
    """Conflicts among ``statements`` about what ``question`` asks.

    Two statements conflict when they come from different documents, share two of the
    question's content words (its only one, when it has one), and state values of one kind
    that differ (a document's own date aside; a value the other document also states on the
    subject is common ground); each stated value is matched with its closest counterpart
    once, and the kind of value the question asks for ("when": a date) ranks first. Only the
    conflicts that hold the most of the question's words are kept: the question's
    subject, not a side topic that happens to share a word.
    """
    anchors = terms(question)
    if not anchors or len({s.document_id for s in statements}) < 2:
        return []
    # Words that most statements share name the corpus, not the subject: weigh them down.
    by_document: dict[str, list[str]] = {}
    for s in statements:
        by_document.setdefault(s.document_id, []).append(s.text)
    own = {doc: _dated(texts, "", labelled=True) for doc, texts in by_document.items()}
    # A document's own date ("Date: July 10, 2025") says when it was written, not what.
    parsed = [
        (
            s,
            terms(s.text),
            tuple(v for v in values(s.text) if not _is_date_of(v, own[s.document_id])),
        )
        for s in statements
    ]
    frequency: dict[str, int] = {}
    for _, words, _ in parsed:
        for w in words & anchors:
            frequency[w] = frequency.get(w, 0) + 1
    n = len(parsed)
    need = min(2, len(anchors))
    stated: dict[str, list[_Value]] = {doc: [] for doc in by_document}
    for st, words, found in parsed:
        if len(words & anchors) >= need:
            stated[st.document_id].extend(found)

    def disputed(value: _Value, other: str) -> bool:
        # A value the other document also states on the subject is common ground.
        return not any(_same(value, v) for v in stated[other])

    wanted = asked_kinds(question)
    weight = {w: math.log(1 + n / (1 + f)) for w, f in frequency.items()}
    candidates: list[tuple[float, float, int, int, _Value, _Value, frozenset[str]]] = []
    for i, (a, words_a, values_a) in enumerate(parsed):
        if not values_a:
            continue
        for j in range(i + 1, n):
            b, words_b, values_b = parsed[j]
            if not values_b or a.document_id == b.document_id:
                continue
            shared = words_a & words_b
            anchored = shared & anchors
            if len(anchored) < need:
                continue
            cover = sum(weight.get(w, 0.0) for w in anchored)
            score = cover + 0.1 * len(shared)
            for va in values_a:
                if not disputed(va, b.document_id):
                    continue
                for vb in values_b:
                    if vb.kind == va.kind and disputed(vb, a.document_id):
                        bonus = 1.0 if va.kind in wanted else 0.0
                        candidates.append((score + bonus, cover + bonus, i, j, va, vb, anchored))
    candidates.sort(key=lambda c: (-c[0], c[2], c[3]))
    used: set[tuple[int, str, str]] = set()
    pairs: set[frozenset[tuple[str, tuple[str, float]]]] = set()
    chosen: list[tuple[float, Conflict]] = []
    for _score, cover, i, j, va, vb, anchored in candidates:
        a, b = statements[i], statements[j]
        key_a = (i, va.written, b.document_id)
        key_b = (j, vb.written, a.document_id)
        pair = frozenset({(a.document_id, _plain(va)), (b.document_id, _plain(vb))})
        if key_a in used or key_b in used or pair in pairs:
            continue
        used |= {key_a, key_b}
        pairs.add(pair)
        sides = (_side(a, va), _side(b, vb))
        prevails, why = _precedence(*sides, by_document)
        conflict = Conflict(
            kind=va.kind, subject=sorted(anchored), sides=sides, prevails=prevails, why=why
        )
        chosen.append((cover, conflict))
    if not chosen:
        return []
    best = max(cover for cover, _ in chosen)
    return [c for cover, c in chosen if cover >= best - 1e-9][:limit]


# --- checking an answer -----------------------------------------------------------------

_RESOLVES = re.compile(
    r"\b(prevail\w*|supersed\w*|official\w*|later|latest|current\w*|now|newer|replac\w*|"
    r"amend\w*|restat\w*|updat\w*|revis\w*|instead|moved|changed|fell|rose|cut|raised|"
    r"increas\w*|decreas\w*|reduc\w*|extend\w*|shorten\w*|lengthen\w*|precedence|overrid\w*)\b",
    re.IGNORECASE,
)


def _states(text: str, side: ConflictSide, kind: str) -> bool:
    wanted = [v for v in values(side.value) if v.kind == kind] or [_Value(kind, 0.0, side.value)]
    found = values(text)
    return any(_same(w, f) for w in wanted for f in found) or side.value.lower() in text.lower()


def unresolved(
    conflicts: Sequence[Conflict],
    answer: str,
    cited_documents: Iterable[str],
    *,
    precedence: bool = True,
) -> list[str]:
    """What ``answer`` leaves out of ``conflicts``: a side's value not stated, a side's
    document not cited, or (with ``precedence``) no word on which side prevails where one
    does. Empty when each conflict is told in full."""
    cited = set(cited_documents)
    problems: list[str] = []
    for conflict in conflicts:
        missing: list[str] = []
        for side in conflict.sides:
            if not _states(answer, side, conflict.kind):
                missing.append(f"does not state {side.value!r} ({_cite(side)})")
            elif side.document_id not in cited:
                missing.append(f"does not cite {_cite(side)} for {side.value!r}")
        if not missing and precedence and conflict.prevails is not None:
            if not _RESOLVES.search(answer):
                winner = conflict.sides[conflict.prevails]
                missing.append(f"does not say that {_cite(winner)} prevails ({conflict.why})")
        if missing:
            problems.append(
                f"sources disagree: {conflict.describe()}; the answer "
                + ", ".join(missing)
                + f". Write the answer like: {conflict.example()!r}"
            )
    return problems


def to_complete(
    conflicts: Sequence[Conflict], answer: str, cited_documents: Iterable[str]
) -> list[Conflict]:
    """The conflicts ``answer`` leaves untold that the framework can tell for it: the answer
    already states the prevailing value (or, where none prevails, one of the two) and leaves
    out the other side, its source or which prevails. An answer that states only the value
    that lost, or neither, is left alone: adding the other side would contradict it, and
    the validator sends it back instead."""
    cited = list(cited_documents)
    chosen: list[Conflict] = []
    for conflict in conflicts:
        if not unresolved([conflict], answer, cited):
            continue
        sides = conflict.sides
        if conflict.prevails is not None:
            if _states(answer, sides[conflict.prevails], conflict.kind):
                chosen.append(conflict)
        elif any(_states(answer, side, conflict.kind) for side in sides):
            chosen.append(conflict)
    return chosen


def told(conflict: Conflict) -> str:
    """One sentence telling ``conflict`` in full (both values, each document, and which
    prevails): what the framework adds to an answer that left it out. It holds no figure
    but the two values, so it is grounded in the two sentences it cites."""
    a, b = conflict.sides
    if conflict.prevails is None:
        return f"Sources disagree: {_title(a)} gives {a.value}, while {_title(b)} gives {b.value}."
    winner, other = conflict.sides[conflict.prevails], conflict.sides[1 - conflict.prevails]
    why = conflict.why.split(" (")[0]  # "it is the later document (2025-07-10)": no date
    return (
        f"Sources disagree: {_title(winner)} gives {winner.value}, and it prevails ({why}); "
        f"{_title(other)} gives {other.value} instead."
    )


def conflict_note(conflicts: Sequence[Conflict]) -> str:
    """What a step's model is told about ``conflicts`` among its evidence, before it
    answers: each side, and what the answer must say about them."""
    lines = ["Note: the sources disagree (found by comparing the evidence above):"]
    lines += [f"- {c.describe()}" for c in conflicts]
    lines.append(
        "Your answer itself must give both values, each with the document it comes from, say "
        "which prevails and why, and cite both sentence ids in your claims. For example:"
    )
    lines += [f"  {c.example()}" for c in conflicts]
    return "\n".join(lines)
