"""``maestro demo``: the main job on the offline defaults."""

from __future__ import annotations

import asyncio
import time

import typer
from pydantic import BaseModel, Field

from ..models import Message, generate
from . import app
from ._common import console, load_settings, open_model

_SNIPPET = (
    "Northwind Robotics reported third-quarter revenue of $48.2 million, up 12% from a year "
    "earlier, with gross margin of 41.5%. The company raised its full-year revenue guidance "
    "to $190-195 million. CFO Maria Keller said the Lisbon plant would open in March."
)


class EarningsFacts(BaseModel):
    """Key figures from an earnings statement."""

    company: str
    quarter: str = Field(description="e.g. Q3")
    revenue_musd: float = Field(description="Revenue in millions of US dollars")
    revenue_growth_pct: float | None = Field(description="Year-over-year growth in percent")
    gross_margin_pct: float | None
    guidance: str | None = Field(description="Forward guidance, quoted briefly")
    people: list[str] = Field(description="People named in the text")


@app.command()
def demo(
    model: str | None = typer.Option(None, "--model", "-m", help="provider:model to use."),
) -> None:
    """Run the offline demo: the local model answers a structured request."""
    settings = load_settings(model)
    chat = open_model(settings)
    console.print(f"[bold]model[/] {chat.name}")
    console.print(f"[bold]text[/]  {_SNIPPET}")
    started = time.perf_counter()
    result = asyncio.run(
        generate(
            chat,
            [
                Message.system("You extract facts from financial text. Use only the text."),
                Message.user(_SNIPPET),
            ],
            output_type=EarningsFacts,
        )
    )
    elapsed = time.perf_counter() - started
    console.print_json(result.output.model_dump_json())
    u = result.usage
    console.print(
        f"[dim]{u.requests} call(s), {u.input_tokens} input + {u.output_tokens} output tokens, "
        f"{elapsed:.1f}s[/]"
    )
