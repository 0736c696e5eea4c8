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
    epilog="Exit codes: 0 ok, 1 the job failed (a one-line error; --debug shows the traceback), "
    "2 bad usage.",
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
def run(
    config: Annotated[
        Path | None, typer.Argument(help="The experiment's TOML file (see examples/).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="New run folder (default: runs/<config name>, numbered if taken)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume", metavar="RUN_DIR", help="Continue this run from its newest checkpoint."
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar; print only the run folder.")
    ] = False,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for torch (1 is fastest for tiny models).")
    ] = None,
) -> None:
    """Train from a config; write metrics, checkpoints, the model and plots to a run folder.

    Example: sprig run examples/experiment_static.toml --out runs/static

    Example: sprig run --resume runs/static   (after a stop or a crash)
    """
    from ._run import UsageError, run_command

    try:
        run_command(config, out, resume, quiet, threads, echo=typer.echo)
    except UsageError as err:
        typer.echo(f"usage error: {err} (see sprig run --help)", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); a failed job is one line (exit 1)."""
    try:
        app()
    except Exception as exc:  # the CLI is the one place that turns any error into a line
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
