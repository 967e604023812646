"""Contract extraction on CUAD: nine clause fields, precision and recall per field against
``master_clauses.csv``, and the share of extracted values whose source span verified.

The extraction pipeline (:class:`pipelines.extract.Extractor`) reads each contract with one
query per field, three fields per model call, and keeps a value only when its cited span is
the stored source text of that contract (the others are dropped, counted as ``unverified``).
Its JSON Lines output doubles as this eval's cache: an interrupted run resumes at the next
contract.

Scoring per field, over contracts: a prediction is a true positive when it matches the gold
answer after normalisation (dates compared as dates; durations in months when stated in
months or years, so 12 months is 1 year, in days when stated in days or weeks, with number
words and hyphenated forms such as "one-year" or "two (2) years" read; party names without
corporate suffixes, matched as whole names; governing law by containment), a false positive
when it is given but wrong or the gold is empty, and a false negative when the gold is given
and the prediction is null or wrong.

The two yes/no fields (Cap On Liability, Termination For Convenience) are scored as the
detection of a "Yes": the pipeline answers null when a contract has no such clause (an
absent clause has no span to cite), so a gold "No" is no positive to find. True positive:
gold Yes and predicted true; false positive: predicted true and gold No; false negative:
gold Yes and not predicted true (false or null).

Every contract counts: one that failed ingestion (or has no record) is a miss for every gold
field it has, and the report says how many there were and why. Scores are computed from the
stored records each time, so a scoring change re-scores the cached extraction.

Run: ``python -m evals.cuad --limit 30`` or ``maestro eval cuad --limit 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import csv
import difflib
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from maestro_lite import Budget, ChatModel, Corpus, Maestro, Settings
from pipelines import ExtractionOutput, ExtractionRecord, Extractor

from .common import eval_embedder
from .datasets import require
from .harness import (
    Stopwatch,
    add_common_arguments,
    eval_model,
    markdown_table,
    publish,
    settings_from_args,
    step_logger,
    store_settings,
)
from .qa_metrics import normalize_answer, token_f1

__all__ = ["FIELDS", "ContractRecord", "GoldContract", "load_gold", "main", "matches", "run"]

PROMPT_VERSION = 1
FIELDS_PER_STEP = 3
K = 2


class ContractRecord(BaseModel):
    """The CUAD fields the eval extracts."""

    parties: list[str] | None = Field(
        default=None, description="The parties that signed the agreement (company or person names)"
    )
    agreement_date: str | None = Field(
        default=None, description="The date the agreement was signed or is dated"
    )
    effective_date: str | None = Field(
        default=None, description="The date the agreement takes effect (effective date)"
    )
    expiration_date: str | None = Field(
        default=None, description="The date the initial term of the agreement expires or ends"
    )
    governing_law: str | None = Field(
        default=None, description="The state or country whose laws govern the agreement"
    )
    renewal_term: str | None = Field(
        default=None,
        description="The length of each renewal term after the initial term (automatic renewal)",
    )
    notice_period_to_terminate_renewal: str | None = Field(
        default=None,
        description="The notice period required to terminate the agreement or stop its renewal",
    )
    cap_on_liability: bool | None = Field(
        default=None,
        description="Whether the agreement caps or limits a party's liability (limitation of "
        "liability)",
    )
    termination_for_convenience: bool | None = Field(
        default=None,
        description="Whether a party may terminate the agreement for convenience, without cause",
    )


FIELDS: dict[str, str] = {
    "parties": "Parties-Answer",
    "agreement_date": "Agreement Date-Answer",
    "effective_date": "Effective Date-Answer",
    "expiration_date": "Expiration Date-Answer",
    "governing_law": "Governing Law-Answer",
    "renewal_term": "Renewal Term-Answer",
    "notice_period_to_terminate_renewal": "Notice Period To Terminate Renewal- Answer",
    "cap_on_liability": "Cap On Liability-Answer",
    "termination_for_convenience": "Termination For Convenience-Answer",
}
"""Record field -> gold column of ``master_clauses.csv`` (one has a stray space)."""


@dataclass(frozen=True)
class GoldContract:
    """One contract and its gold answers."""

    name: str
    text_path: Path
    answers: dict[str, str]
    """Record field -> gold answer ('' when the contract has no such clause)."""


def load_gold(data_dir: Path) -> list[GoldContract]:
    """The annotated contracts whose text is present, in the order of the CSV."""
    root = require(data_dir / "cuad")
    with (root / "master_clauses.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        name = row["Filename"].rsplit(".", 1)[0] + ".txt"
        # Absolute, the form a corpus records paths in.
        text = Path(os.path.abspath(root / "contracts" / name))
        if text.exists():
            answers = {field: (row.get(column) or "").strip() for field, column in FIELDS.items()}
            out.append(GoldContract(row["Filename"], text, answers))
    return out


# -- normalisation ----------------------------------------------------------------------------

_MONTHS = {
    m: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for m in names
}
DateParts = tuple[int, int | None, int | None]


_MONTH_NAMES = [m for m in _MONTHS if len(m) > 4]


def _month(word: str) -> int | None:
    """The month a word names, misspellings of five letters or more included ("Janaury",
    which contracts and the model both write)."""
    if word in _MONTHS:
        return _MONTHS[word]
    if len(word) < 5 or word.isdigit():
        return None
    close = difflib.get_close_matches(word, _MONTH_NAMES, n=1, cutoff=0.8)
    return _MONTHS[close[0]] if close else None


def _year(text: str) -> int:
    year = int(text)
    if year < 100:
        year += 2000 if year < 50 else 1900
    return year


def parse_date(text: str) -> DateParts | None:
    """``(year, month, day)`` from the forms contracts and CUAD use (``6/21/99``,
    ``[]/[]/1996``, ``June 21, 1999``, ``21st day of June, 1999``, ``1999-06-21``); unknown
    parts are ``None``."""
    s = text.strip().lower()
    iso = re.search(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", s)
    if iso:
        return int(iso.group(1)), int(iso.group(2)), int(iso.group(3))
    slash = re.search(r"(\d{1,2}|\[\])/(\d{1,2}|\[\])/(\d{2,4})\b", s)
    if slash:
        month, day, year = slash.groups()
        return (
            _year(year),
            None if month == "[]" else int(month),
            None if day == "[]" else int(day),
        )
    words = re.findall(r"[a-z]+|\d+", s)
    month = next((m for m in map(_month, words) if m is not None), None)
    numbers = [int(w) for w in words if w.isdigit()]
    years = [n for n in numbers if 1900 <= n <= 2100]
    if not years:
        return None
    days = [n for n in numbers if 1 <= n <= 31]
    return years[-1], month, days[0] if days and month else None


_NUMBER_WORDS = {
    word: n
    for n, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    word: 10 * n
    for n, word in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)
}
_UNITS: dict[str, tuple[str, float]] = {
    "day": ("days", 1),
    "business day": ("days", 1),
    "calendar day": ("days", 1),
    "week": ("days", 7),
    "month": ("months", 1),
    "year": ("months", 12),
}
_DURATION = re.compile(
    r"(?P<amount>\d+(?:\.\d+)?|[a-z]+(?:[- ][a-z]+)?)\s*(?:\((?P<digits>\d+)\)\s*)?[- ]?"
    r"(?P<unit>business day|calendar day|day|week|month|year)s?\b"
)
Duration = tuple[float, str]


def _amount(words: str) -> float | None:
    """``12``, ``twelve``, ``forty-five``, ``a`` (one): the number that ends ``words``."""
    if re.fullmatch(r"\d+(?:\.\d+)?", words):
        return float(words)
    parts = re.split(r"[- ]", words)
    last = parts[-1]
    if len(parts) > 1 and parts[-2] in _TENS and last in _NUMBER_WORDS:
        return float(_TENS[parts[-2]] + _NUMBER_WORDS[last])
    if last in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[last])
    if last in _TENS:
        return float(_TENS[last])
    return {"a": 1.0, "an": 1.0, "hundred": 100.0}.get(last)


def parse_duration(text: str) -> Duration | None:
    """A duration as ``(amount, unit)``: in months when the text counts months or years
    (``one (1) year`` -> ``(12, "months")``, so 12 months equals 1 year), in days when it
    counts days or weeks (``sixty-day`` -> ``(60, "days")``); ``None`` when it states none.
    Months and days are not converted into each other: 90 days is not 3 months."""
    for match in _DURATION.finditer(text.lower()):
        digits = match.group("digits")
        number = float(digits) if digits else _amount(match.group("amount"))
        if number is not None:
            unit, factor = _UNITS[match.group("unit")]
            return number * factor, unit
    return None


_SUFFIXES = re.compile(
    r"\b(inc|incorporated|llc|l l c|ltd|limited|corp|corporation|co|company|plc|sa|s a|ag|"
    r"gmbh|lp|l p|llp|nv|bv)\b"
)


def _party(name: str) -> tuple[str, ...]:
    """A party name as its normalised words, without aliases, parentheticals and suffixes."""
    name = re.sub(r"\"[^\"]*\"|“[^”]*”", " ", name)
    while re.search(r"\([^()]*\)", name):  # innermost first: CUAD nests them
        name = re.sub(r"\([^()]*\)", " ", name)
    name = normalize_answer(name.replace("(", " ").replace(")", " "))
    return tuple(_SUFFIXES.sub(" ", name).split())


def _parties(value: Any) -> list[tuple[str, ...]]:
    items = value if isinstance(value, list) else str(value).split(";")
    return [p for p in (_party(str(i)) for i in items) if p]


def same_party(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whole names match: equal words, or the shorter name is the leading words of the
    longer and at least half of them ("Brightline" for "Brightline Robotics"), never a word
    inside another ("X" is not "Xerox") nor a trailing part ("York" is not "New York")."""
    short, long = sorted((a, b), key=len)
    return bool(short) and long[: len(short)] == short and 2 * len(short) >= len(long)


YES_NO = ("cap_on_liability", "termination_for_convenience")
"""Fields scored as the detection of a "Yes" (see the module documentation)."""


def _yes(text: str) -> bool | None:
    t = text.strip().lower()
    if t.startswith("yes"):
        return True
    if t.startswith("no"):
        return False
    return None


def _plus(start: DateParts, duration: Duration) -> DateParts | None:
    """``start`` moved on by ``duration`` (months or days); ``None`` when ``start`` lacks a
    part the arithmetic needs."""
    year, month, day = start
    amount, unit = duration
    if month is None or day is None or amount != int(amount):
        return None
    if unit == "months":
        index = month - 1 + int(amount)
        year, month = year + index // 12, index % 12 + 1
        return year, month, min(day, calendar.monthrange(year, month)[1])
    moved = date(year, month, day) + timedelta(days=int(amount))
    return moved.year, moved.month, moved.day


def matches(field: str, predicted: Any, gold: str, *, start: str | None = None) -> bool:
    """Whether a non-null prediction matches a non-empty gold answer for ``field``.

    An expiration stated as a term ("5 years following the Effective Date") matches the
    gold date it comes to from ``start``, the record's own effective (or agreement) date:
    CUAD's annotators turned such terms into dates the same way."""
    if field in YES_NO:
        return isinstance(predicted, bool) and predicted == _yes(gold)
    if field == "parties":
        wanted, given = _parties(gold), _parties(predicted)
        found = [g for g in wanted if any(same_party(g, p) for p in given)]
        return bool(found) and len(found) >= len(wanted) / 2
    text = " ".join(predicted) if isinstance(predicted, list) else str(predicted)
    if field.endswith("_date"):
        want, got = parse_date(gold), parse_date(text)
        term = parse_duration(text) if field == "expiration_date" and got is None else None
        begun = parse_date(start) if term is not None and start else None
        if begun is not None and term is not None:
            got = _plus(begun, term)
        if want is not None and got is not None:
            return all(w is None or w == g for w, g in zip(want, got, strict=True))
    if field in ("renewal_term", "notice_period_to_terminate_renewal"):
        duration, stated = parse_duration(gold), parse_duration(text)
        if duration is not None and stated is not None:
            return duration == stated
    if field == "governing_law":
        g, p = normalize_answer(gold), normalize_answer(text)
        return bool(g) and bool(p) and (g in p or p in g)
    return token_f1(text, [gold]) >= 0.5


class FieldScore(BaseModel):
    field: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    found: int = 0
    """Values kept (span verified)."""
    unverified: int = 0
    """Values the model gave whose span did not verify (dropped)."""

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def score(
    records: dict[str, ExtractionRecord], gold: Sequence[GoldContract], ids: dict[str, str]
) -> list[FieldScore]:
    """Per-field counts over every contract: one without a record (it failed ingestion, or
    was never extracted) predicts nothing, so each gold answer it has is a miss."""
    scores = {f: FieldScore(field=f) for f in FIELDS}
    for contract in gold:
        record = records.get(ids.get(contract.name, ""))
        for field, s in scores.items():
            value = record.fields.get(field) if record is not None else None
            predicted = value.value if value else None
            if value is not None:
                s.found += value.status == "found"
                s.unverified += value.status == "unverified"
            answer = contract.answers[field]
            if field in YES_NO:
                # Detection of a Yes: a gold No (or none) is no positive, a null no claim.
                said_yes, is_yes = predicted is True, _yes(answer) is True
                s.tp += said_yes and is_yes
                s.fp += said_yes and not is_yes
                s.fn += is_yes and not said_yes
                continue
            given = predicted not in (None, "", [])
            start = _start_date(record) if field == "expiration_date" else None
            if given and answer and matches(field, predicted, answer, start=start):
                s.tp += 1
                continue
            if given:
                s.fp += 1
            if answer:
                s.fn += 1
    return list(scores.values())


def _start_date(record: ExtractionRecord | None) -> str | None:
    """The date a record's own answers say its term runs from: its effective date, else its
    agreement date."""
    if record is None:
        return None
    for field in ("effective_date", "agreement_date"):
        value = record.fields.get(field)
        if value is not None and isinstance(value.value, str) and value.value:
            return value.value
    return None


def unscored(
    records: dict[str, ExtractionRecord],
    gold: Sequence[GoldContract],
    ids: dict[str, str],
    failures: dict[str, str],
) -> dict[str, str]:
    """Contract name -> why it has no record (scored as misses by :func:`score`)."""
    out: dict[str, str] = {}
    for contract in gold:
        if contract.name not in ids:
            out[contract.name] = failures.get(str(contract.text_path), "not in the corpus")
        elif ids[contract.name] not in records:
            out[contract.name] = "not extracted"
    return out


class Summary(BaseModel):
    model: str
    contracts: int
    """Contracts scored (every annotated contract with text, up to the limit)."""
    fields: list[FieldScore]
    seconds: float
    calls: int
    failed: int
    unscored: dict[str, str] = Field(default_factory=dict)
    """Contracts without a record, and why (ingestion failed, not extracted): misses."""


async def run(
    settings: Settings,
    *,
    limit: int = 30,
    fresh: bool = False,
    model: ChatModel | None = None,
    log: bool = True,
) -> Summary:
    """Extract the fields from the first ``limit`` contracts and score them."""
    clock = Stopwatch()
    chat = model or eval_model(settings)
    gold = load_gold(settings.data_dir)[:limit]
    stores = store_settings(settings)
    corpus = await Corpus.open("cuad", settings=stores, embedder=eval_embedder(settings))
    report = await corpus.ingest([c.text_path for c in gold])
    failures = {f.path: f"ingestion failed ({f.reason}): {f.detail}" for f in report.failed}
    by_path = {d.path: d for d in await corpus.documents()}
    ids = {c.name: by_path[str(c.text_path)].id for c in gold if str(c.text_path) in by_path}
    config = json.dumps(
        {"model": chat.name, "v": PROMPT_VERSION, "k": K, "group": FIELDS_PER_STEP}, sort_keys=True
    )
    digest = hashlib.sha256(config.encode()).hexdigest()[:10]
    directory = settings.cache_dir / "evals" / f"cuad-{digest}"
    if fresh and (directory / "records.jsonl").exists():
        (directory / "records.jsonl").unlink()
    output = ExtractionOutput(directory, ContractRecord, formats=("jsonl", "csv"))
    extractor = Extractor(
        Maestro(chat, concurrency=1, output_tokens=512, on_event=step_logger() if log else None),
        ContractRecord,
        k=K,
        fields_per_step=FIELDS_PER_STEP,
        budget=Budget(max_rounds=1, max_requests=3, max_tokens=40_000),
        concurrency=1,
        instructions="Copy dates and names as the contract writes them.",
    )
    done = len(output.done())

    def progress(record: ExtractionRecord) -> None:
        if log:
            nonlocal done
            done += 1
            found = [n for n, f in record.fields.items() if f.status == "found"]
            print(
                f"[cuad {done}/{len(ids)}] {record.title[:50]!r} {record.status} "
                f"{record.wall_seconds:.0f}s found={len(found)} "
                f"unverified={sum(f.status == 'unverified' for f in record.fields.values())}",
                flush=True,
            )

    await extractor.run(
        corpus=corpus, documents=list(ids.values()), output=output, on_record=progress
    )
    await corpus.close()
    records = output.records()
    return Summary(
        model=chat.name,
        contracts=len(gold),
        fields=score(records, gold, ids),
        seconds=clock.seconds,
        calls=sum(r.usage.requests for r in records.values()),
        failed=sum(r.status == "failed" for r in records.values()),
        unscored=unscored(records, gold, ids, failures),
    )


def table(summary: Summary) -> list[str]:
    """Per-field precision, recall and verified share, then the totals."""
    rows: list[list[Any]] = []
    for s in summary.fields:
        extracted = s.found + s.unverified
        rows.append(
            [
                s.field,
                s.precision,
                s.recall,
                s.tp,
                s.fp,
                s.fn,
                s.found / extracted if extracted else None,
            ]
        )
    tp = sum(s.tp for s in summary.fields)
    fp = sum(s.fp for s in summary.fields)
    fn = sum(s.fn for s in summary.fields)
    found = sum(s.found for s in summary.fields)
    extracted = found + sum(s.unverified for s in summary.fields)
    rows.append(
        [
            "**all fields (micro)**",
            tp / (tp + fp) if tp + fp else None,
            tp / (tp + fn) if tp + fn else None,
            tp,
            fp,
            fn,
            found / extracted if extracted else None,
        ]
    )
    return markdown_table(["field", "precision", "recall", "TP", "FP", "FN", "span verified"], rows)


def main(argv: list[str] | None = None) -> None:
    """Command line: run, print the table, append it to BENCHMARKS.md."""
    parser = argparse.ArgumentParser(
        prog="python -m evals.cuad",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, limit=30)
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    summary = asyncio.run(run(settings, limit=args.limit, fresh=args.fresh))
    publish(
        args,
        summary,
        table(summary),
        title="CUAD contract extraction: precision and recall per field",
        model=summary.model,
        data=f"{settings.data_dir}/cuad: the first {summary.contracts} annotated contracts "
        "with text, gold from master_clauses.csv",
        seconds=summary.seconds,
        notes=[
            f"Extractor: {FIELDS_PER_STEP} fields per call, k={K} chunks per field, one "
            f"round; {summary.calls} model calls in all, {summary.failed} contract(s) failed",
            "span verified: share of the values the model gave whose cited span is the "
            "stored text of that contract; values that did not verify were dropped (null)",
            "Cap On Liability and Termination For Convenience: detection of a Yes (a null "
            "answer for an absent clause is no false negative on a gold No)",
            f"{len(summary.unscored)} contract(s) without a record, scored as misses"
            + "".join(f"; {name}: {why}" for name, why in summary.unscored.items()),
        ],
    )


if __name__ == "__main__":
    main()
