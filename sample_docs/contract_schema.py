"""The record the README extracts from the sample contracts:

    maestro extract sample_docs/contracts --schema sample_docs/contract_schema.py:Contract \
        --out extracted/

The fields are the CUAD fields both agreements state in plain sentences (see README.md and
the ``extract`` items of ``answers.json``). Every field is optional in the extraction: one a
contract does not state comes back null with the reason, never invented.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Contract(BaseModel):
    """The key terms of a supply agreement."""

    parties: list[str] = Field(description="The companies that are parties to the agreement")
    agreement_date: str = Field(description="The date the agreement is dated, as YYYY-MM-DD")
    effective_date: str = Field(description="The date the agreement takes effect, as YYYY-MM-DD")
    expiration_date: str = Field(
        description="The date the initial term of the agreement expires, as YYYY-MM-DD"
    )
    governing_law: str = Field(description="The state whose laws govern the agreement")
    renewal_term: str = Field(description="The length of each renewal term, such as 1 year")
    notice_period_to_terminate_renewal: str = Field(
        description="The notice a party must give to stop the agreement from renewing"
    )
    cap_on_liability: str = Field(
        description="The cap on each party's liability: an amount or how it is computed"
    )
    termination_for_convenience: bool = Field(
        description="Whether a party may terminate the agreement for convenience, without cause"
    )
