"""sprig's command line: one typer app, one subcommand per job.

Exit codes: 0 success, 1 the job failed (a readable one-line error), 2 bad usage.
Pass ``--debug`` (before the subcommand) for a traceback instead of the one-line error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="sprig",
    help="Sparse neural networks on PyTorch: build, train, compress and see them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def demo(
    out: Annotated[
        Path | None, typer.Option(help="Folder for the demo's run (default: runs/demo-TIME).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """A short tour: dense vs static-sparse MLPs on two moons, as a table.

    Example: sprig demo
    """
    from ._demo import run_demo

    run_demo(out=out, seed=seed, echo=typer.echo)


@app.command()
def summary(
    path: Annotated[Path, typer.Argument(help="A model file written by sprig.save.")],
) -> None:
    """Print the sparsity table of a saved model (tensor, shape, nnz, density, pattern).

    Example: sprig summary runs/demo/model.safetensors
    """
    import sprig

    model = sprig.load(path)
    typer.echo(str(sprig.summary(model)))


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); a failed job is one line (exit 1)."""
    try:
        app()
    except Exception as exc:  # the CLI is the one place that turns any error into a line
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
