"""sprig's command line: one typer app, one subcommand per job.

Exit codes: 0 success, 1 the job failed (a readable one-line error), 2 bad usage.
Pass ``--debug`` (before the subcommand) for a traceback instead of the one-line error.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

# Rich's option table gives each column a fixed share of the width and cuts what overflows with
# "…" ("--validation-s…", "runs/bonsai-T…"): below 100 columns (sprig bonsai's widest
# options) help is laid out by click's plain formatter, which wraps every line in any width.
_NARROW = shutil.get_terminal_size((100, 24)).columns < 100

app = typer.Typer(
    name="sprig",
    rich_markup_mode=None if _NARROW else "rich",
    help="Sparse neural networks on PyTorch: build, train, compress and see them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="Exit codes: 0 ok, 1 the job failed (a one-line error; --debug shows the traceback), "
    "2 bad usage.",
)

_state = {"debug": False}

# Rich lays help out in the terminal's width, and in 80 columns when the output is no terminal
# (a pipe, a notebook's !sprig, a CI log), where sprig bonsai's option table cut words with
# "…" ("--validation-sequ…"); 100 columns fit every command's help uncut.
if "COLUMNS" not in os.environ and not sys.stdout.isatty():
    import typer.rich_utils

    typer.rich_utils.MAX_WIDTH = typer.rich_utils.MAX_WIDTH or 100


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


@app.command(short_help="The tour: RigL, compression and a bonsai graph.")
def demo(
    out: Annotated[
        Path | None, typer.Option(help="Folder for the demo's run (default: runs/demo-TIME).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quick: Annotated[
        bool, typer.Option(help="A shorter tour (fewer steps, smaller layer).")
    ] = False,
) -> None:
    """The tour: static vs RigL on two moons, compression speed and memory, a bonsai graph.

    Writes a run folder with pictures, the viewer page and report.html (about 20 s of CPU time:
    20-30 s on 2 free cores; 80 s measured with the cores shared with other jobs).

    Example: sprig demo --out runs/demo
    """
    from ._demo import run_demo

    run_demo(out=out, seed=seed, echo=typer.echo, quick=quick)


@app.command(short_help="Print the sparsity table of a saved model.")
def summary(
    path: Annotated[Path, typer.Argument(help="A model file written by sprig.save.")],
) -> None:
    """Print the sparsity table of a saved model (tensor, shape, nnz, density, pattern).

    A sprig model is rebuilt and measured; a model of your own class (sprig.save(model, ...))
    is measured from the masks in the file.

    Example: sprig summary runs/demo/model.safetensors
    """
    import sprig
    from sprig.io import file_summary, read_file

    if read_file(path)[1].get("model"):
        typer.echo(str(sprig.summary(sprig.load(path))))
    else:  # not a sprig model: sprig cannot rebuild it, but its masks are in the file
        typer.echo(str(file_summary(path)))


@app.command(short_help="Train from a config into a run folder.")
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
    seed: Annotated[
        int | None,
        typer.Option(help="Use this seed instead of the config's (recorded in the run's copy)."),
    ] = None,
) -> None:
    """Train from a config; write metrics, checkpoints, the model and plots to a run folder.

    Example: sprig run examples/experiment_static.toml --out runs/static --seed 1

    Example: sprig run --resume runs/static   (after a stop or a crash)
    """
    from ._run import UsageError, run_command

    try:
        run_command(config, out, resume, quiet, threads, echo=typer.echo, seed=seed)
    except UsageError as err:
        typer.echo(f"usage error: {err} (see sprig run --help)", err=True)
        raise typer.Exit(2) from None


@app.command(short_help="Lottery tickets on MNIST-1D.")
def lottery(
    rounds: Annotated[int, typer.Option(help="Pruning rounds after the dense run.")] = 10,
    rate: Annotated[
        float, typer.Option(help="Fraction of remaining weights pruned per round.")
    ] = 0.25,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds, one full run each.")] = "0,1,2",
    steps: Annotated[int, typer.Option(help="Training steps of every run.")] = 3000,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    batch_size: Annotated[int, typer.Option(help="Minibatch size.")] = 128,
    rewind: Annotated[int, typer.Option(help="Rewind survivors to iteration k (0: init).")] = 0,
    scope: Annotated[str, typer.Option(help="Magnitude ranking: 'global' or 'layer'.")] = "global",
    hidden: Annotated[str, typer.Option(help="Hidden layer widths of the MLP.")] = "256,256",
    samples: Annotated[int, typer.Option(help="MNIST-1D samples (80% train).")] = 5000,
    controls: Annotated[
        str, typer.Option(help="Controls to train: reinit, random.")
    ] = "reinit,random",
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/lottery-TIME).")
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for torch (small nets: 1).")] = 1,
) -> None:
    """Lottery tickets on MNIST-1D: iterative magnitude pruning with rewinding, against random
    re-init and random pruning. Writes lottery.json, lottery.md and lottery.png.

    Example: sprig lottery --rounds 4 --rate 0.5 --seeds 0 --steps 500
    """
    from ._prune import run_lottery, set_threads

    set_threads(threads)
    run_lottery(
        rounds=rounds,
        rate=rate,
        seeds=seeds,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        rewind=rewind,
        scope=scope,
        hidden=hidden,
        samples=samples,
        controls=controls,
        out=out,
        echo=typer.echo,
    )


@app.command("sparse-vs-dense", short_help="Sparse vs dense on the course task.")
def sparse_vs_dense(
    densities: Annotated[str, typer.Option(help="Comma-separated densities.")] = "1.0,0.5,0.3,0.1",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    steps: Annotated[int, typer.Option(help="Full-batch Adam steps per training run.")] = 100,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 0.01,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/sparse-vs-dense-TIME).")
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for torch (small nets: 1).")] = 1,
) -> None:
    """The course task (MLP 20-64-2, label x0 + x1 > 0) at several densities: sparse from
    scratch vs pruned dense networks. Writes sparse_vs_dense.md, .json and
    the loss curves sparse_vs_dense_loss.png.

    Example: sprig sparse-vs-dense --densities 1,0.5,0.3,0.1 --seeds 0,1,2
    """
    from ._prune import run_sparse_vs_dense, set_threads

    set_threads(threads)
    run_sparse_vs_dense(
        densities=densities, seeds=seeds, steps=steps, lr=lr, out=out, echo=typer.echo
    )


@app.command(short_help="Grow, prune and view a bonsai RNN.")
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
        typer.Option(
            help="Cells as OUTxSTATE widths, comma-separated (default: a built-in task's "
            "preset; for your own task, a search from the smallest size up)."
        ),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="Training steps (default: the preset's or the search's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (the first one with --seeds).")] = 0,
    seeds: Annotated[
        int | None,
        typer.Option(
            help="Grow this many networks (seeds SEED, SEED+1, ...) and keep the smallest "
            "perfect graph: seeds differ a lot on the harder tasks (default 1; in the "
            "search of your own task, seeds per size, default 3).",
            min=1,
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            help="With --seeds: networks grown at once, one process each (default: one per "
            "CPU core).",
            min=1,
        ),
    ] = None,
    budget: Annotated[
        float,
        typer.Option(help="Seconds for the search of your own task's smallest network."),
    ] = 180.0,
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
    compile_machine: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="Also compile the graph's state machine into a network and keep it when "
            "smaller (default: the built-in's preset; off for your own task).",
        ),
    ] = None,
) -> None:
    """Grow a bonsai RNN on TASK, prune it to a graph, validate it, and write graph.json,
    graph.dot, graph.py, graph.html and the state machine fsm.dot into a run folder.

    Your own task (MODULE:NAME, imported from the current folder) without --cells or --steps
    gets an automatic search: sizes from the smallest up, several seeds each, within --budget.
    Exit code 1 when no graph is perfect (the files are written, marked failed).

    Example: sprig bonsai 1to111 --out runs/b111 (or: sprig bonsai mytasks:PARITY)
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
        seeds=seeds,
        budget=budget,
        jobs=jobs,
        compile_machine=compile_machine,
    )


@app.command(short_help="Write the viewer page for bonsai graphs.")
def view(
    graph: Annotated[
        list[Path],
        typer.Argument(help="graph.json files written by sprig bonsai (several: a picker)."),
    ],
    input: Annotated[
        str | None,
        typer.Option(
            help='Input steps: one token per step, 0/1 per input bit, e.g. "1 0 0 1" '
            "(default: 16 random steps)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the page (default: the first GRAPH with .html)."),
    ] = None,
) -> None:
    """Write the interactive viewer page (one self-contained HTML file) for bonsai graphs.

    Example: sprig view runs/b111/graph.json --input "1 0 0 0 1 0 0 1"
    (or: sprig view a/graph.json b/graph.json --out both.html)
    """
    from ._bonsai import run_view

    run_view(graph, input, out, echo=typer.echo)


@app.command(short_help="Time one sparse layer on this machine.")
def bench(
    size: Annotated[int, typer.Option(help="Square layer size N (N x N weight).")] = 4096,
    batch: Annotated[int, typer.Option(help="Rows per call.")] = 1,
    density: Annotated[float, typer.Option(help="Fraction of weights kept, in (0, 1].")] = 0.05,
    rounds: Annotated[int, typer.Option(help="Interleaved timing rounds.")] = 20,
) -> None:
    """Time one sparse layer on this machine: dense, torch CSR by hand, scipy and sprig.

    The full grids are the scripts in the repository's benchmarks/ folder (make bench).

    Example: sprig bench --size 8192 --batch 1 --density 0.05
    """
    from ._bench import run_bench

    run_bench(size, batch, density, rounds, echo=typer.echo)


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); a failed job is one line (exit 1)."""
    from ._run import UsageError

    try:
        app()
    except UsageError as exc:  # a bad option value found after parsing: bad usage too
        typer.echo(f"usage error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # the CLI is the one place that turns any error into a line
        from ._folders import remove_empty_outputs

        remove_empty_outputs()
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
