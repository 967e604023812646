"""Requirements a user declares for a run, and what checking one returns.

Three kinds:

* ``judge``: natural language ("cover both contract versions"), scored 0..1 by an LLM judge
  that sees the output and its evidence;
* ``check``: a Python callable over the output (and its citations), returning a bool, a score,
  or a :class:`CheckOutcome` with a reason;
* ``schema``: the output must validate against a pydantic model.

Plain strings become judge requirements, except length limits such as "answer in under 200
words", which become exact programmatic checks: an LLM cannot count words reliably.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .grounding import abstains

# Type-only: result.py holds requirement results: importing it back is a cycle.
if TYPE_CHECKING:
    from .result import Citation, Claim

__all__ = [
    "CheckContext",
    "CheckFn",
    "CheckOutcome",
    "Requirement",
    "RequirementLike",
    "RequirementResult",
    "normalize_requirements",
]


class CheckOutcome(BaseModel):
    """What a programmatic check found."""

    model_config = ConfigDict(frozen=True)

    score: float = Field(ge=0, le=1)
    reason: str = ""


@dataclass(frozen=True)
class CheckContext:
    """What a programmatic check sees."""

    task: str
    output: Any
    """The output: text, or an instance of the run's ``output_type``."""
    text: str
    """The output as text (JSON for structured outputs)."""
    claims: list[Claim] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    step_id: str | None = None
    """Set when the check runs on one step rather than on the final output."""


CheckFn: TypeAlias = Callable[[CheckContext], "bool | float | CheckOutcome"]


class Requirement(BaseModel):
    """One requirement of a run."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str = ""
    """Short id (``r1``, ``r2``...); assigned in order when empty."""
    description: str
    kind: Literal["judge", "check", "schema"] = "judge"
    threshold: float = Field(default=0.7, ge=0, le=1)
    """The score at or above which the requirement passes."""
    scope: Literal["final", "steps"] = "final"
    """``final``: checked on the run's output; ``steps``: on every step's output."""
    evidence: Literal["cited", "gathered"] = "cited"
    """What a judged requirement is judged against: the evidence the output cites, or also
    the evidence the run retrieved and the output left uncited (``gathered``): for
    requirements about what an answer leaves out, such as a contradiction between sources
    that it ignores by citing only one side."""
    fn: CheckFn | None = Field(default=None, exclude=True, repr=False)
    schema_type: type[BaseModel] | None = Field(default=None, exclude=True, repr=False)

    @classmethod
    def judge(cls, description: str, *, threshold: float = 0.7, **kw: Any) -> Requirement:
        """A natural-language requirement scored by the LLM judge."""
        return cls(description=description, kind="judge", threshold=threshold, **kw)

    @classmethod
    def check(
        cls, fn: CheckFn, description: str | None = None, *, threshold: float = 1.0, **kw: Any
    ) -> Requirement:
        """A programmatic requirement: ``fn(context)`` returns a bool, a score 0..1, or a
        :class:`CheckOutcome`."""
        text = description or (fn.__doc__ or fn.__name__).strip().splitlines()[0]
        return cls(description=text, kind="check", fn=fn, threshold=threshold, **kw)

    @classmethod
    def conforms_to(cls, model: type[BaseModel], **kw: Any) -> Requirement:
        """The output must validate against ``model``."""
        return cls(
            description=f"output validates against {model.__name__}",
            kind="schema",
            schema_type=model,
            threshold=1.0,
            **kw,
        )

    @classmethod
    def max_words(cls, limit: int, description: str | None = None) -> Requirement:
        """The output text has at most ``limit`` words."""

        def count(ctx: CheckContext) -> CheckOutcome:
            words = len(ctx.text.split())
            ok = words <= limit
            return CheckOutcome(score=1.0 if ok else 0.0, reason=f"{words} words (limit {limit})")

        return cls.check(count, description or f"at most {limit} words")

    @classmethod
    def cite_every_claim(cls) -> Requirement:
        """Every claim of the output carries at least one verified citation."""

        def cited(ctx: CheckContext) -> CheckOutcome:
            if not ctx.claims:
                if abstains(ctx.text):
                    return CheckOutcome(
                        score=1.0,
                        reason="the output says the evidence does not hold the answer; "
                        "nothing to cite",
                    )
                return CheckOutcome(score=0.0, reason="the output makes no cited claims")
            bare = [c.text for c in ctx.claims if not c.citations]
            score = 1 - len(bare) / len(ctx.claims)
            reason = f"{len(bare)} of {len(ctx.claims)} claims uncited"
            if bare:
                reason += ": " + "; ".join(t[:80] for t in bare[:3])
            return CheckOutcome(score=score, reason=reason)

        return cls.check(cited, "every claim cites a source")

    @classmethod
    def from_text(cls, text: str) -> Requirement:
        """A requirement from a sentence: a word limit becomes an exact check, anything else
        a judge requirement."""
        match = _WORD_LIMIT.search(text)
        if match:
            return cls.max_words(int(match.group(1)), description=text)
        return cls.judge(text)

    def evaluate(self, ctx: CheckContext) -> CheckOutcome:
        """Run a ``check`` or ``schema`` requirement (judges are run by the validator)."""
        if self.kind == "schema":
            assert self.schema_type is not None
            try:
                if isinstance(ctx.output, self.schema_type):
                    self.schema_type.model_validate(ctx.output.model_dump())
                else:
                    self.schema_type.model_validate_json(ctx.text)
            except ValidationError as exc:
                return CheckOutcome(
                    score=0.0,
                    reason=f"{exc.error_count()} validation error(s): {exc.errors()[0]['msg']}",
                )
            return CheckOutcome(score=1.0, reason="valid")
        assert self.kind == "check" and self.fn is not None
        try:
            value = self.fn(ctx)
        except Exception as exc:  # a user's check crashing is a failed check, with the cause
            return CheckOutcome(score=0.0, reason=f"check raised {type(exc).__name__}: {exc}")
        # Every result carries a reason, also when the check gave only a bool or a score.
        if isinstance(value, CheckOutcome):
            return value if value.reason else value.model_copy(update={"reason": _scored(value)})
        if isinstance(value, bool):
            return CheckOutcome(score=1.0 if value else 0.0, reason=f"the check returned {value}")
        outcome = CheckOutcome(score=max(0.0, min(1.0, float(value))))
        return outcome.model_copy(update={"reason": _scored(outcome)})


def _scored(outcome: CheckOutcome) -> str:
    return f"the check scored {outcome.score:.2f}"


_WORD_LIMIT = re.compile(
    r"\b(?:under|fewer than|less than|at most|no more than|maximum of|max\.?|within|up to)\s+"
    r"(\d+)\s+words\b",
    re.IGNORECASE,
)

RequirementLike: TypeAlias = "str | Requirement | CheckFn"


def normalize_requirements(items: Sequence[RequirementLike]) -> list[Requirement]:
    """Requirements with ids ``r1``, ``r2``... from strings, callables or requirements."""
    out: list[Requirement] = []
    for item in items:
        if isinstance(item, Requirement):
            req = item
        elif isinstance(item, str):
            req = Requirement.from_text(item)
        elif callable(item):
            req = Requirement.check(item)
        else:
            raise TypeError(f"not a requirement: {item!r}")
        out.append(req)
    used = {r.id for r in out if r.id}
    counter = 0
    numbered: list[Requirement] = []
    for req in out:
        if not req.id:
            counter += 1
            while f"r{counter}" in used:
                counter += 1
            req = req.model_copy(update={"id": f"r{counter}"})
        numbered.append(req)
    ids = [r.id for r in numbered]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        from .errors import UserError

        raise UserError(
            f"requirement ids {sorted(duplicates)} are used twice",
            hint="Give each requirement a unique id.",
        )
    return numbered


class RequirementResult(BaseModel):
    """How one requirement fared."""

    model_config = ConfigDict(frozen=True)

    id: str
    description: str
    kind: Literal["judge", "check", "schema", "builtin"]
    score: float = Field(ge=0, le=1)
    passed: bool
    reason: str = ""
    step_id: str | None = None
    """Set when the result is about one step."""
    finding: bool = False
    """Something a user should see even when the check passed (a document that tries to
    instruct the model): shown where passed built-in checks are left out."""
