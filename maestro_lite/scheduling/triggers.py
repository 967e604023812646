"""Completion triggers: what starts when a job finishes.

A :class:`Trigger` follows the jobs of one name (a schedule, a watch, another trigger or a
submission): when such a job finishes with the status it waits for, the trigger's job is
queued with the finished job's outcome as input (``{run_id}``, ``{output}``, ...; see
:mod:`~maestro_lite.scheduling.jobs`). Triggers form chains, ``A -> B -> C``; a chain that
would come back to where it started is refused when the trigger is declared
(:func:`check_triggers`), so no set of triggers can start jobs forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError
from .jobs import JobInputs, JobOutcome, JobSpec, PreviousJob, check_name, check_placeholders

__all__ = ["Trigger", "TriggerCycleError", "TriggerOn", "check_triggers"]

TriggerOn = Literal["success", "failure", "always"]
"""``success``: the job passed (every requirement met); ``failure``: it ended ``unmet`` or
``failed`` (errors included); ``always``: either."""


class TriggerCycleError(UserError):
    """Declaring a trigger would close a cycle of triggers.

    Attributes:
        cycle: The names around the cycle, the first repeated at the end.
    """

    def __init__(self, cycle: Sequence[str]) -> None:
        path = " -> ".join(cycle)
        super().__init__(
            f"trigger {cycle[0]!r} would start a cycle: {path}",
            hint="A trigger cannot (even indirectly) start the job it follows; remove one "
            "of these triggers or point it elsewhere.",
        )
        self.cycle = list(cycle)


class Trigger(BaseModel):
    """Start ``job`` when a job named ``after`` finishes with the status ``on`` names."""

    model_config = ConfigDict(frozen=True)

    name: str
    after: str
    """The name of the jobs it follows (a schedule, watch, trigger or submission)."""
    on: TriggerOn = "success"
    job: JobSpec
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def create(cls, name: str, *, after: str, job: JobSpec, on: TriggerOn = "success") -> Trigger:
        """A validated trigger (cycles are checked against the others by the store).

        Raises:
            UserError: A bad name or placeholder.
        """
        check_name(name, "trigger")
        check_name(after, "job")
        check_placeholders(job, "trigger")
        return cls(name=name, after=after, on=on, job=job)

    def matches(self, name: str, outcome: JobOutcome) -> bool:
        """Whether the job ``name`` finishing with ``outcome`` starts this trigger."""
        if name != self.after:
            return False
        if self.on == "always":
            return True
        return (outcome.status == "passed") == (self.on == "success")

    def inputs(self, job_id: str, name: str, outcome: JobOutcome, given: JobInputs) -> JobInputs:
        """The inputs of the job this trigger starts: the finished job's outcome, and what
        that job was given (its file, corpus, schedule time) passed along."""
        return JobInputs(
            source="trigger",
            name=self.name,
            fired_at=given.fired_at,
            file=given.file,
            files=given.files,
            corpus=given.corpus,
            previous=PreviousJob(job_id=job_id, name=name, outcome=outcome),
        )


def check_triggers(triggers: Iterable[Trigger], *, first: str | None = None) -> None:
    """Refuse a set of triggers in which one (indirectly) follows itself.

    Args:
        triggers: The triggers.
        first: Look for a cycle through this trigger first (the one being declared), so
            the error names it.

    Raises:
        TriggerCycleError: Naming the first cycle found.
    """
    followers: dict[str, list[str]] = {}
    for trigger in triggers:
        followers.setdefault(trigger.after, []).append(trigger.name)

    def walk(name: str, path: list[str]) -> list[str] | None:
        for follower in followers.get(name, []):
            if follower == path[0]:
                return [*path, follower]
            if follower not in path:
                found = walk(follower, [*path, follower])
                if found:
                    return found
        return None

    names = sorted({t for group in followers.values() for t in group})
    for start in ([first] if first else []) + names:
        cycle = walk(start, [start])
        if cycle:
            raise TriggerCycleError(cycle)
