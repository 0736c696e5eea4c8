"""``sprig bonsai`` and ``sprig view``: grow, prune and export a bonsai network; draw a graph."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .._words import plural
from ..bonsai import (
    RECIPE,
    TASKS,
    BonsaiResult,
    FSMError,
    GrowConfig,
    Progress,
    SearchConfig,
    StateMachine,
    Task,
    best_result,
    counterexample,
    extract_fsm,
    get_task,
    grow_bonsai,
    grow_seeds,
    load_graph,
    parse_inputs,
    preset_config,
    save_graph,
    to_dot,
    to_python,
    write_html,
)
from ..io import write_text_atomic
from ._folders import UsageError, output_folder


def parse_cells(text: str) -> list[tuple[int, int]]:
    """``"4x4,8x2"`` -> ``[(4, 4), (8, 2)]``: each cell's output width x state width."""
    cells = []
    for part in text.replace(" ", "").split(","):
        try:
            out, state = part.lower().split("x")
            cells.append((int(out), int(state)))
        except ValueError:
            raise ValueError(
                f"cell {part!r} is not OUTxSTATE; give e.g. --cells 4x4 or --cells 8x8,4x2"
            ) from None
    return cells


class GrowthFailed(RuntimeError):
    """No perfect graph: the files are written (marked failed) and the command exits 1."""


def _import_from_cwd(task_name: str) -> None:
    """MODULE:NAME imports from the current folder, as ``python -m`` would: the ``sprig``
    console script starts with its own bin folder on sys.path, not the current one."""
    if ":" in task_name and task_name not in TASKS:
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)


def _options(
    task_name: str,
    cells: str | None,
    steps: int | None,
    seed: int,
    inputs: str | None,
    validation_sequences: int,
    check_sequences: int,
    seeds: int | None,
    budget: float,
    jobs: int | None,
    compile_machine: bool | None,
) -> tuple[Task, bool, dict[str, Any], list[list[float]] | None, SearchConfig | None]:
    """The task, whether it is a built-in, the GrowConfig overrides, the viewer's input steps
    and the search (None: one recipe), from the options; ValueError or TypeError names a bad
    one."""
    if seeds is not None and seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    if not budget > 0:
        raise ValueError(f"--budget must be > 0 seconds, got {budget}")
    _import_from_cwd(task_name)
    task = get_task(task_name)
    builtin = task_name in TASKS  # a user task named like a built-in gets no preset
    overrides: dict[str, Any] = {}
    if cells:
        overrides["cells"] = parse_cells(cells)
    if steps is not None:
        overrides["steps"] = steps
    steps_in = parse_inputs(inputs, task.in_features) if inputs is not None else None
    for option, value in (
        ("--validation-sequences", validation_sequences),
        ("--check-sequences", check_sequences),
    ):
        if value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
    searching = not builtin and not overrides
    if compile_machine is not None:  # else the preset's (built-ins) or GrowConfig's choice
        overrides["compile_machine"] = compile_machine
    search = None
    if searching:
        recipe = {**RECIPE, **overrides}
        search = SearchConfig(seeds=seeds or 3, seed=seed, budget_s=budget, recipe=recipe)
    elif builtin:
        preset_config(task.name, **overrides)  # checks the cells and steps now, not mid-run
    else:
        GrowConfig(**overrides)
    return task, builtin, overrides, steps_in, search


def run_bonsai(
    task_name: str,
    out: Path | None,
    cells: str | None,
    steps: int | None,
    seed: int,
    inputs: str | None,
    validation_sequences: int,
    check_sequences: int,
    echo: Callable[[str], None],
    quantize: bool = False,
    seeds: int | None = None,
    budget: float = 180.0,
    jobs: int | None = None,
    compile_machine: bool | None = None,
) -> None:
    """Grow, prune, validate and export; without --cells/--steps on a user's task, the
    automatic search (built-in tasks use their presets)."""
    try:  # every option is checked before anything runs: a bad one is bad usage (exit 2)
        task, builtin, overrides, steps_in, search = _options(
            task_name, cells, steps, seed, inputs, validation_sequences, check_sequences,
            seeds, budget, jobs, compile_machine,
        )  # fmt: skip
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    folder = output_folder(out, f"bonsai-{task.name}")
    common: dict[str, Any] = {
        "check_sequences": check_sequences,
        "validation_sequences": validation_sequences,
        "quantize": quantize,
    }
    if search is not None:
        result = _search(task, search, common, echo)
        kept = result.graph.meta.get("seed", seed)
    else:
        n_jobs = (os.cpu_count() or 1) if jobs is None else jobs
        result, kept = _fixed(task, builtin, overrides, seed, seeds or 1, common, echo, n_jobs)
    g = result.graph
    perfect = result.score.perfect
    g.meta["status"] = "perfect" if perfect else "failed"
    try:
        machine: StateMachine | FSMError = extract_fsm(g)
    except FSMError as err:
        machine = err
    targets = None
    if steps_in is None:  # a sample of the task: its targets are known, the page shows them
        x, y = task.batch(1, 24, torch.Generator().manual_seed(kept))
        steps_in, targets = x[0].tolist(), y[0].tolist()
    wrong = None
    if isinstance(machine, StateMachine):
        try:  # the task's own machine (from its step function): an exact comparison
            wrong = counterexample(machine, task)
            g.meta["exact_check"] = "passed" if wrong is None else "failed"
        except ValueError:  # no step function, or too many task states: no exact check
            pass
    save_graph(g, folder / "graph.json", machine)
    write_text_atomic(folder / "graph.dot", to_dot(g))
    write_text_atomic(folder / "graph.py", to_python(g))
    write_html(g, folder / "graph.html", steps_in, targets=targets, task=task)
    written = "graph.json, graph.dot, graph.py, graph.html"
    if isinstance(machine, StateMachine):
        write_text_atomic(folder / "fsm.dot", machine.to_dot())
        written += ", fsm.dot"
    c = g.counts()
    if "compile_machine" in g.meta:  # asked for, not kept: say why
        echo(f"compile_machine: {g.meta['compile_machine']}")
    if "grown" in g.meta:
        grown = g.meta["grown"]
        echo(
            f"compiled from the grown graph's {g.meta['compiled_states']}-state machine (grown "
            f"graph {grown['neurons']}/{grown['states']}/{grown['edges']} neurons/states/edges)"
        )
    echo(
        ("grown network's clip threshold " if "grown" in g.meta else "clip threshold ")
        + f"{result.threshold:g}"
        + (
            ""
            if result.perfect
            else " (no threshold kept every check sequence right: the network itself makes errors)"
        )
    )
    echo(
        f"graph: {plural(c['neurons'], 'neuron')}, {plural(c['states'], 'state')}, "
        f"{plural(c['edges'], 'edge')}"
    )
    if isinstance(machine, StateMachine):
        echo(
            f"state machine: {plural(machine.num_states, 'state')} "
            "(minimal Mealy machine; "
            f"{machine.raw_states} state codes at tolerance {machine.tolerance:g})"
        )
        if wrong is not None:
            bits = " ".join("".join(str(int(v > 0)) for v in step) for step in wrong.tolist())
            echo(f"warning: the machine differs from the task's targets on input {bits}")
        elif "exact_check" in g.meta:
            echo("the machine gives the task's targets on every input sequence (exact check)")
    else:
        echo(f"state machine: none ({machine})")
    s = result.score
    echo(
        f"validation ({s.sequences} fresh sequences of {s.length}): accuracy {s.accuracy:.4%}, "
        f"sequences all right {s.sequence_accuracy:.4%}"
    )
    echo(f"wall time {result.seconds:.1f} s")
    if not perfect:
        write_text_atomic(
            folder / "FAILED",
            f"no perfect graph: validation accuracy {s.accuracy:.4%} "
            f"({s.sequence_accuracy:.4%} of sequences all right); these files hold the best "
            "run\n",
        )
        raise GrowthFailed(
            f"no perfect graph (validation {s.accuracy:.4%}); wrote the best run to {folder} "
            "(marked failed: FAILED, graph.json meta status). Try --budget, --seeds or --cells"
        )
    echo(f"wrote {folder}/{written}")


def _fixed(
    task: Task,
    builtin: bool,
    overrides: dict[str, Any],
    seed: int,
    seeds: int,
    common: dict[str, Any],
    echo: Callable[[str], None],
    jobs: int,
) -> tuple[BonsaiResult, int]:
    """One recipe (the built-in's preset, or GrowConfig's defaults, with the options), over
    ``seeds`` seeds, ``jobs`` at once; the smallest perfect graph is kept."""
    from tqdm import tqdm

    configs = [
        preset_config(task.name, seed=s, **overrides)
        if builtin
        else GrowConfig(seed=s, **overrides)
        for s in range(seed, seed + seeds)
    ]
    first = configs[0]
    jobs = min(seeds, jobs)
    echo(
        f"growing a bonsai on {task.name}: cells {list(first.cells)}, {first.steps} steps, "
        + (f"seed {seed}" if seeds == 1 else f"seeds {seed}-{seed + seeds - 1}")
        + (f", {jobs} at once (one process each)" if jobs > 1 else "")
    )

    def done(config: GrowConfig, r: BonsaiResult) -> None:
        if seeds > 1:
            c = r.graph.counts()
            echo(
                f"  seed {config.seed}: {c['neurons']}/{c['states']}/{c['edges']} "
                f"(neurons/states/edges), validation {r.score.accuracy:.4%}, {r.seconds:.0f} s"
            )

    start = time.perf_counter()
    if jobs > 1:
        results = grow_seeds(task, configs, jobs, on_done=done, **common)
    else:  # one at a time, with a progress bar over each run's steps
        results = []
        for config in configs:
            with tqdm(total=config.steps, unit="step", leave=False) as bar:

                def on_step(step: int, loss: float) -> None:
                    bar.update(1)
                    if step % 50 == 0:
                        bar.set_postfix(loss=f"{loss:.4f}")

                results += grow_seeds(task, [config], 1, on_done=done, on_step=on_step, **common)
    result = best_result(results)
    kept = seed + results.index(result)
    if seeds > 1:
        echo(f"keeping seed {kept} ({time.perf_counter() - start:.1f} s for all seeds)")
    return result, kept


def _search(
    task: Task, search: SearchConfig, common: dict[str, Any], echo: Callable[[str], None]
) -> BonsaiResult:
    """The automatic search, with a progress bar over the time budget."""
    from tqdm import tqdm

    echo(
        f"growing a bonsai on {task.name}: searching sizes from {list(search.sizes[0])} up, "
        f"{search.seeds} seeds each, budget {search.budget_s:g} s"
    )
    # seconds of the budget, without tqdm's rate (seconds per second says nothing)
    fmt = "{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}"
    with tqdm(total=round(search.budget_s or 0), bar_format=fmt, leave=False) as bar:

        def on_progress(p: Progress) -> None:
            bar.n = min(round(p.elapsed), bar.total)
            cells = ",".join(f"{o}x{s}" for o, s in p.cells)
            bar.set_postfix_str(
                f"cells {cells} seed {p.seed} length {p.check.length} "
                f"accuracy {p.check.accuracy:.2%}"
            )

        result = grow_bonsai(task, search=search, on_progress=on_progress, **common)
    for a in result.attempts:
        c = a.counts
        cells = ",".join(f"{o}x{s}" for o, s in a.cells)
        echo(
            f"  cells {cells} seed {a.seed}: {a.steps} steps (to length {a.length}), "
            f"{c['neurons']}/{c['states']}/{c['edges']} (neurons/states/edges), validation "
            f"{a.accuracy:.4%}, {a.seconds:.0f} s"
        )
    echo(f"kept cells {list(result.model.cell_sizes)}, seed {result.graph.meta.get('seed')}")
    return result


def run_view(
    graph_paths: list[Path], inputs: str | None, out: Path | None, echo: Callable[[str], None]
) -> None:
    """Write one viewer page for one graph or several (the page then has a picker)."""
    if not graph_paths:
        raise ValueError("give at least one graph.json")
    graphs = [load_graph(p) for p in graph_paths]
    steps = parse_inputs(inputs, graphs[0].in_features) if inputs is not None else None
    target = out or graph_paths[0].with_suffix(".html")
    write_html(graphs, target, steps)
    echo(f"wrote {target} (open it in a browser; it needs no network)")
