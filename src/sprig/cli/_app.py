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


@app.command()
def bonsai(
    task: Annotated[
        str,
        typer.Argument(
            help="A task: delay-1, delay-2, loop, parentheses, 1to111, switcher, or "
            "MODULE:NAME of your own sprig.bonsai.Task."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/bonsai-TASK-TIME).")
    ] = None,
    cells: Annotated[
        str | None,
        typer.Option(help="Cells as OUTxSTATE widths, comma-separated (default: the task's)."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps (default: the task's).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    input: Annotated[
        str | None,
        typer.Option(help='Input steps for the viewer page, e.g. "1 0 0 1" (default: a sample).'),
    ] = None,
    validation_sequences: Annotated[
        int, typer.Option(help="Fresh sequences (length 40) the graph is validated on.")
    ] = 50_000,
    check_sequences: Annotated[
        int, typer.Option(help="Fresh sequences each clip threshold must get all right.")
    ] = 5_000,
    quantize: Annotated[
        bool, typer.Option(help="Also round values to the coarsest step that stays perfect.")
    ] = False,
) -> None:
    """Grow a bonsai RNN on TASK, prune it to a graph, validate it, and write graph.json,
    graph.dot, graph.py and graph.html into a run folder.

    Example: sprig bonsai 1to111 --out runs/b111
    """
    from ._bonsai import run_bonsai

    run_bonsai(
        task,
        out,
        cells,
        steps,
        seed,
        input,
        validation_sequences,
        check_sequences,
        typer.echo,
        quantize=quantize,
    )


@app.command()
def view(
    graph: Annotated[Path, typer.Argument(help="A graph.json written by sprig bonsai.")],
    input: Annotated[
        str | None,
        typer.Option(
            help='Input steps: one token per step, 0/1 per input bit, e.g. "1 0 0 1" '
            "(default: 16 random steps)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write the page (default: GRAPH with .html).")
    ] = None,
) -> None:
    """Write the interactive viewer page (one self-contained HTML file) for a bonsai graph.

    Example: sprig view runs/b111/graph.json --input "1 0 0 0 1 0 0 1"
    """
    from ._bonsai import run_view

    run_view(graph, input, out, echo=typer.echo)


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); a failed job is one line (exit 1)."""
    try:
        app()
    except Exception as exc:  # the CLI is the one place that turns any error into a line
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
