"""Are the figures of an answer in its evidence? A deterministic check against invented numbers.

Small models cite the right sentence and still write a wrong figure ("90 days" cited, "100
days" written). No judge model is reliable at catching that; string arithmetic is. A figure
is grounded when the same value appears in the evidence, after normalising thousands
separators, scale words ("2.5 million" = "2,500,000"), percentages and month names (an ISO
date "2025-02-01" is grounded by "February 1, 2025").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["figures", "ungrounded_figures"]

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
_MONTH_WORD = re.compile(
    r"\b(" + "|".join(sorted((m.title() for m in _MONTHS), key=len, reverse=True)) + r")\b"
)


def figures(text: str) -> list[tuple[str, set[float]]]:
    """The figures of ``text``: each as written, with the values it may stand for."""
    out: list[tuple[str, set[float]]] = []
    for match in _NUMBER.finditer(text):
        whole, fraction, unit = match.group(1), match.group(2), (match.group(3) or "").lower()
        base = float(whole.replace(",", "") + (f".{fraction}" if fraction else ""))
        values = {base}
        if unit in _SCALE:
            values.add(base * _SCALE[unit])
        out.append((match.group(0).strip(), values))
    return out


def _significant(written: str, values: set[float]) -> bool:
    # Single-digit integers are mostly counts and list numbers ("2 documents", "step 3").
    return not (
        len(values) == 1 and next(iter(values)) < 10 and "." not in written and "%" not in written
    )


def ungrounded_figures(text: str, sources: Iterable[str]) -> list[str]:
    """Figures in ``text`` whose value appears in none of ``sources``."""
    allowed: set[float] = set()
    for source in sources:
        source = source.replace("_", " ")  # file names: "agreement_2023"
        for _, values in figures(source):
            allowed |= values
        for month in _MONTH_WORD.findall(source):
            allowed.add(float(_MONTHS[month.lower()]))
    missing: list[str] = []
    for written, values in figures(text):
        if _significant(written, values) and not any(
            abs(v - a) <= 1e-9 * max(1.0, abs(a)) for v in values for a in allowed
        ):
            missing.append(written)
    return list(dict.fromkeys(missing))
