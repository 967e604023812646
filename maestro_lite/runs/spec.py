"""What a run was asked to do, stored so that the run can be resumed.

Python objects cannot be stored. A requirement given as a sentence is stored as that
sentence and rebuilt from it; a requirement given as a callable or a schema keeps its id,
kind and description, and a resume must be given it again. Output types are stored as their
JSON schema so that a resume can check it was given the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..budget import Budget
from ..errors import UserError
from ..models.generate import json_schema_for
from ..plan import Plan
from ..requirements import Requirement, RequirementLike, normalize_requirements

__all__ = ["RunSpec"]


def _qualname(cls: type[BaseModel]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class RunSpec(BaseModel):
    """Everything needed to run a run again or to resume it."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    task: str
    model: str | None = None
    """The name of the model that answered the steps (resuming with another is allowed)."""
    corpus: str | None = None
    """The corpus name, when the run was given one."""
    corpus_object: bool = False
    """The run searched a retriever passed as an object: a resume needs it again."""
    requirements: list[Requirement] = Field(default_factory=list)
    """Without their callables and schema types (see the module documentation)."""
    textual: list[str] = Field(default_factory=list)
    """Ids of the requirements given as sentences (rebuilt from their description)."""
    budget: Budget = Field(default_factory=Budget)
    plan: Plan | None = None
    """A plan declared in Python (``None`` when the planner wrote it)."""
    output_type: str | None = None
    """The qualified name of the output type, for messages."""
    output_schema: dict[str, Any] | None = None
    data_types: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """JSON schemas of the ``extract`` steps' types, by step id."""
    cache: bool = True
    """Whether the run answers from the response cache (when the orchestrator has one)."""

    @classmethod
    def of(
        cls,
        *,
        run_id: str,
        task: str,
        model: str | None = None,
        corpus: str | object | None,
        requirements: Sequence[RequirementLike],
        normalized: Sequence[Requirement] | None = None,
        budget: Budget,
        plan: Plan | None,
        output_type: type[BaseModel] | None,
        data_types: Mapping[str, type[BaseModel]],
        cache: bool,
    ) -> RunSpec:
        """The spec of a run started with these arguments (as given to ``Maestro.run``);
        ``normalized``: the requirements as ``Maestro.run`` normalised them (normalised
        here when ``None``)."""
        if normalized is None:
            normalized = normalize_requirements(requirements)
        given = zip(requirements, normalized, strict=True)
        return cls(
            run_id=run_id,
            task=task,
            model=model,
            corpus=corpus if isinstance(corpus, str) else None,
            corpus_object=corpus is not None and not isinstance(corpus, str),
            requirements=list(normalized),
            textual=[r.id for raw, r in given if isinstance(raw, str)],
            budget=budget,
            plan=plan,
            output_type=_qualname(output_type) if output_type is not None else None,
            output_schema=json_schema_for(output_type) if output_type is not None else None,
            data_types={k: json_schema_for(v) for k, v in data_types.items()},
            cache=cache,
        )

    def restore_requirements(self, given: Sequence[RequirementLike] | None) -> list[Requirement]:
        """The run's requirements for a resume: ``given`` again (checked against the stored
        ones), or rebuilt from storage when no callable is needed.

        Raises:
            UserError: ``given`` differs from the run's requirements, or is missing while the
                run has requirements that need a callable or a schema type.
        """
        if given is not None:
            fresh = normalize_requirements(given)
            if _shape(fresh) != _shape(self.requirements):
                raise UserError(
                    f"the requirements given to resume run {self.run_id} differ from the "
                    f"run's: {_listing(self.requirements)}",
                    hint="Pass the requirements the run was started with, in the same order.",
                )
            return fresh
        out: list[Requirement] = []
        missing: list[Requirement] = []
        for req in self.requirements:
            if req.kind == "judge":
                out.append(req)
            elif req.id in self.textual:
                rebuilt = Requirement.from_text(req.description)
                out.append(rebuilt.model_copy(update={"id": req.id}))
            else:
                missing.append(req)
        if missing:
            raise UserError(
                f"run {self.run_id} has requirements that are Python objects, which a run "
                f"store cannot keep: {_listing(missing)}",
                hint="Resume it from Python with the same requirements: "
                "maestro.resume(run_id, requirements=[...]).",
            )
        return out

    def check_types(
        self,
        output_type: type[BaseModel] | None,
        data_types: Mapping[str, type[BaseModel]] | None,
    ) -> None:
        """Check that a resume was given the run's output types again.

        Raises:
            UserError: A type is missing, extra, or not the one the run used.
        """
        given = json_schema_for(output_type) if output_type is not None else None
        if given != self.output_schema:
            expected = self.output_type or "no output type"
            raise UserError(
                f"run {self.run_id} was started with {expected}; resume it with the same "
                "output_type",
                hint="Python types cannot be stored: pass output_type= to resume() again.",
            )
        schemas = {k: json_schema_for(v) for k, v in (data_types or {}).items()}
        if schemas != self.data_types:
            raise UserError(
                f"run {self.run_id} was started with data types for steps "
                f"{sorted(self.data_types) or 'none'}; resume it with the same data_types",
                hint="Python types cannot be stored: pass data_types= to resume() again.",
            )


def _shape(requirements: Sequence[Requirement]) -> list[tuple[str, str, str]]:
    return [(r.id, r.kind, r.description) for r in requirements]


def _listing(requirements: Sequence[Requirement]) -> str:
    return "; ".join(f"{r.id} ({r.kind}): {r.description}" for r in requirements) or "none"
