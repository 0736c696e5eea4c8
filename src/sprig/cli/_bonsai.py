"""``sprig bonsai`` and ``sprig view``: grow, prune and export a bonsai network; draw a graph."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .._words import plural
from ..bonsai import (
    best_result,
    get_task,
    grow_bonsai,
    load_graph,
    parse_inputs,
    preset_config,
    save_graph,
    to_dot,
    to_python,
    write_html,
)
from ..io import write_text_atomic
from ._folders import output_folder


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
    seeds: int = 1,
) -> None:
    from tqdm import tqdm

    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    task = get_task(task_name)
    overrides: dict[str, Any] = {}
    if cells:
        overrides["cells"] = parse_cells(cells)
    if steps is not None:
        overrides["steps"] = steps
    steps_in = parse_inputs(inputs, task.in_features) if inputs else None
    for option, value in (
        ("--validation-sequences", validation_sequences),
        ("--check-sequences", check_sequences),
    ):
        if value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
    folder = output_folder(out, f"bonsai-{task.name}")
    results = []
    for run_seed in range(seed, seed + seeds):
        config = preset_config(task.name, seed=run_seed, **overrides)
        echo(
            f"growing a bonsai on {task.name}: cells {list(config.cells)}, {config.steps} "
            f"steps, seed {run_seed}"
        )
        with tqdm(total=config.steps, unit="step", leave=False) as bar:

            def on_step(step: int, loss: float) -> None:
                bar.update(1)
                if step % 50 == 0:
                    bar.set_postfix(loss=f"{loss:.4f}")

            r = grow_bonsai(
                task,
                config,
                check_sequences=check_sequences,
                validation_sequences=validation_sequences,
                on_step=on_step,
                quantize=quantize,
            )
        results.append(r)
        if seeds > 1:
            c = r.graph.counts()
            echo(
                f"  seed {run_seed}: {c['neurons']}/{c['states']}/{c['edges']} "
                f"(neurons/states/edges), validation {r.score.accuracy:.4%}, {r.seconds:.0f} s"
            )
    result = best_result(results)
    kept = seed + results.index(result)
    if seeds > 1:
        echo(f"keeping seed {kept}")
    g = result.graph
    if steps_in is None:
        x, _ = task.batch(1, 24, torch.Generator().manual_seed(kept))
        steps_in = x[0].tolist()
    save_graph(g, folder / "graph.json")
    write_text_atomic(folder / "graph.dot", to_dot(g))
    write_text_atomic(folder / "graph.py", to_python(g))
    write_html(g, folder / "graph.html", steps_in)
    c = g.counts()
    echo(
        f"clip threshold {result.threshold:g}"
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
    s = result.score
    echo(
        f"validation ({s.sequences} fresh sequences of {s.length}): accuracy {s.accuracy:.4%}, "
        f"sequences all right {s.sequence_accuracy:.4%}"
    )
    total = sum(r.seconds for r in results)
    echo(
        f"wall time {result.seconds:.1f} s"
        + (f" ({total:.1f} s for all seeds)" if seeds > 1 else "")
    )
    echo(f"wrote {folder}/graph.json, graph.dot, graph.py, graph.html")


def run_view(
    graph_path: Path, inputs: str | None, out: Path | None, echo: Callable[[str], None]
) -> None:
    graph = load_graph(graph_path)
    steps = parse_inputs(inputs, graph.in_features) if inputs else None
    target = out or graph_path.with_suffix(".html")
    write_html(graph, target, steps)
    echo(f"wrote {target} (open it in a browser; it needs no network)")
