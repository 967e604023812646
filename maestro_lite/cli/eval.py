"""``maestro eval NAME [ARGS...]``: run an evaluation from ``evals/`` by name."""

from __future__ import annotations

import typer

from ..errors import UserError
from ._app import app


@app.command(
    "eval",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def eval_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Which eval: multihop, sec10q, cuad, scifact, ..."),
) -> None:
    """Run the eval NAME; further arguments go to it (`maestro eval cuad -h` lists them).

    Per-item results are cached, so an interrupted eval resumes; results tables are
    appended to BENCHMARKS.md with the model, the data, the date and the command.
    """
    from evals.registry import EVALS, run_eval

    if name not in EVALS:
        listing = "; ".join(f"{n}: {what}" for n, (_, what) in EVALS.items())
        raise UserError(f"no eval named {name!r}", hint=f"Known evals: {listing}.")
    run_eval(name, ctx.args)
