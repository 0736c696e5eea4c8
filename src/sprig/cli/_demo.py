"""``sprig demo``: the tour, in about 20 s of CPU time (``sprig demo --help``), nothing downloaded.

1. Static sparse vs RigL on two moons (the RigL-on-micrograd article's 2-16-16 network), with
   decision boundaries, masks and the topology after stripping dead units.
2. Compression: a 4096x4096 layer at density 0.05, masked dense vs CSR, speed and memory.
3. A bonsai network grown on 1 -> 111, pruned to a graph, with its viewer page.

Everything lands in one run folder with a report page (``report.html``) linking every picture.
"""

from __future__ import annotations

import contextlib
import html
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import nn

from .._timing import time_blocks
from ._folders import UsageError, output_folder

Echo = Callable[[str], None]


@dataclass
class _Section:
    title: str
    text: str
    table: list[tuple[str, ...]] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    links: list[tuple[str, Path]] = field(default_factory=list)


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    # tiny models run much faster on one thread than on two fighting over a busy CPU
    # (benchmarks/results/design_measurements.md, row small-threads)
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _echo_table(rows: list[tuple[str, ...]], echo: Echo) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        echo("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if i == 0:
            echo("  " + "  ".join("-" * w for w in widths))


def _moons(folder: Path, seed: int, steps: int, echo: Echo) -> _Section:
    import sprig
    from sprig.plots import plot_decision_boundary, plot_topology
    from sprig.runs import config_from_dict, run_experiment

    echo("1/3 static sparse vs RigL on two moons (MLP 2-16-16-2, densities 1.0/0.1/0.2)")
    base = {
        "steps": steps,
        "seed": seed,
        "eval_every": max(1, steps // 20),
        "checkpoint_every": steps,
        "data": {"name": "moons", "n_samples": 100, "noise": 0.1, "n_test": 200},
        "model": {"name": "mlp", "hidden": [16, 16], "densities": [1.0, 0.1, 0.2]},
        "optimizer": {"name": "sgd", "lr": 0.5, "momentum": 0.9},
        "schedule": {"name": "linear", "final_factor": 0.1},
    }
    methods = {
        "static": {"name": "static"},
        "RigL": {"name": "rigl", "fraction": 0.3, "every": 10, "end_fraction": 0.75},
    }
    rows: list[tuple[str, ...]] = [("method", "density", "train acc", "test acc", "stripped")]
    models: dict[str, nn.Module] = {}
    images: list[Path] = []
    links: list[tuple[str, Path]] = []
    for label, method in methods.items():
        cfg = config_from_dict({**base, "name": f"moons-{label.lower()}", "method": method})
        result = run_experiment(cfg, folder / f"moons-{label.lower()}")
        model = sprig.load(result.path / "model.safetensors")
        models[label] = model
        stripped = sprig.strip(model)
        rows.append(
            (
                label,
                f"{result.final['density']:.2f}",
                f"{result.final['train_accuracy']:.3f}",
                f"{result.final['test_accuracy']:.3f}",
                "-".join(map(str, stripped.sizes_after)),
            )
        )
        images.append(
            plot_topology(model, folder / f"topology-{label.lower()}.png", title=f"{label}")
        )
        links.append((f"{label} run folder (metrics, checkpoints, plots)", result.path))
    from sprig.data import moons

    data = moons(n_samples=100, noise=0.1, n_test=200, seed=0)
    images.insert(
        0,
        plot_decision_boundary(
            models, data.x_test, data.y_test, folder / "moons-boundaries.png", title="two moons"
        ),
    )
    _echo_table(rows, echo)
    return _Section(
        "Static sparse vs RigL on two moons",
        "The same sparse network (10% and 20% of the hidden weights kept) trained with fixed "
        "masks and with RigL, which drops the smallest weights and grows connections where the "
        "dense gradient is largest. 'stripped' is the network left after removing neurons with "
        "no inputs or no outputs (sprig.strip); grey units in the topology are dead.",
        rows,
        images,
        links,
    )


def _compress(size: int, rounds: int, echo: Echo) -> _Section:
    import sprig

    echo(f"2/3 compressing a {size}x{size} layer at density 0.05")
    layer = sprig.SparseLinear(size, size, density=0.05, seed=0)
    fast = sprig.compress(layer)
    dense = nn.Linear(size, size)  # what a user without sprig runs: the same weights, dense
    dense.load_state_dict({"weight": layer.weight.detach(), "bias": layer.bias.detach()})
    dense_bytes = sum(t.numel() * t.element_size() for t in dense.state_dict().values())
    fast_bytes = sum(t.numel() * t.element_size() for t in fast.state_dict().values())
    rows: list[tuple[str, ...]] = [("batch", "dense ms", "compressed ms", "speedup", "max |diff|")]
    with torch.inference_mode():
        for batch in (1, 64):
            x = torch.randn(batch, size)
            # blocks of consecutive calls, as a layer runs in a loop (sprig._timing)
            fns = {"dense": partial(dense, x), "fast": partial(fast, x)}
            t = time_blocks(fns, budget=0.05 * rounds, block=10e-3)
            t_dense, t_fast = t["dense"], t["fast"]
            diff = float((dense(x) - fast(x)).abs().max())
            rows.append(
                (
                    str(batch),
                    f"{t_dense * 1e3:.2f}",
                    f"{t_fast * 1e3:.2f}",
                    f"{t_dense / t_fast:.1f}x",
                    f"{diff:.1e}",
                )
            )
    rows.append(
        ("memory", f"{dense_bytes / 2**20:.1f} MiB", f"{fast_bytes / 2**20:.1f} MiB", "", "")
    )
    _echo_table(rows, echo)
    return _Section(
        "Compressing for speed",
        f"sprig.compress turns a masked {size}x{size} SparseLinear (density 0.05) into a module "
        "that stores only its nonzeros (CSR, int32 indices) and runs sparse kernels; times are "
        "medians measured on this machine just now, interleaved, against nn.Linear holding the "
        "same weights densely (the memory row compares the stored bytes).",
        rows,
    )


def _bonsai(folder: Path, seed: int, steps: int | None, echo: Echo) -> _Section:
    from sprig.bonsai import get_task, grow_bonsai, preset_config, save_graph, to_dot, write_html
    from sprig.io import write_text_atomic

    echo("3/3 growing a bonsai network on 1 -> 111 and pruning it to a graph")
    task = get_task("1to111")
    overrides: dict[str, object] = {"seed": seed}
    if steps is not None:
        overrides["steps"] = steps
    config = preset_config(task.name, **overrides)
    result = grow_bonsai(task, config, check_sequences=2_000, validation_sequences=10_000)
    graph = result.graph
    out = folder / "bonsai"
    out.mkdir(exist_ok=True)
    save_graph(graph, out / "graph.json")
    write_text_atomic(out / "graph.dot", to_dot(graph))
    x, _ = task.batch(1, 24, torch.Generator().manual_seed(seed))
    page = write_html(graph, out / "graph.html", x[0].tolist())
    counts = graph.counts()
    rows: list[tuple[str, ...]] = [
        ("neurons", "states", "edges", "validation accuracy", "seconds"),
        (
            str(counts["neurons"]),
            str(counts["states"]),
            str(counts["edges"]),
            f"{result.score.accuracy:.2%}",
            f"{result.seconds:.0f}",
        ),
    ]
    _echo_table(rows, echo)
    return _Section(
        "A bonsai network for 1 -> 111",
        "A small RNN (Ameo activation, sparsity-promoting regularizer) trained on the task "
        "'an input 1 makes the output 1 for this step and the next two', then clipped to the "
        "smallest graph that still gets every output sign right. Open the viewer page and step "
        "through time (published graph: 3 neurons, 2 states, 7 edges).",
        rows,
        links=[("viewer page", Path(page)), ("graph.json", out / "graph.json")],
    )


def _report(folder: Path, sections: list[_Section], seconds: float) -> Path:
    from sprig.io import write_text_atomic

    def rel(p: Path) -> str:
        return html.escape(str(Path(p).resolve().relative_to(folder.resolve())))

    parts = [
        "<!doctype html><meta charset='utf-8'><title>sprig demo</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;"
        "text-align:right}img{max-width:100%;border:1px solid #eee;margin:6px 0}</style>",
        f"<h1>sprig demo</h1><p>Finished in {seconds:.0f} s on this machine.</p>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2><p>{html.escape(s.text)}</p>")
        if s.table:
            head, *body = s.table
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head))
            for row in body:
                parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row))
            parts.append("</table>")
        for img in s.images:
            parts.append(f"<div><img src='{rel(img)}' alt='{html.escape(img.stem)}'></div>")
        if s.links:
            parts.append(
                "<ul>"
                + "".join(f"<li><a href='{rel(p)}'>{html.escape(t)}</a></li>" for t, p in s.links)
                + "</ul>"
            )
    return write_text_atomic(folder / "report.html", "\n".join(parts) + "\n")


def run_demo(out: Path | None, seed: int, echo: Echo, quick: bool = False) -> Path:
    """Run the tour into ``out`` (default ``runs/demo-TIME``); return the report page's path.

    ``quick`` shrinks every part (fewer steps, a smaller layer) for tests.
    """
    start = time.perf_counter()
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, got {seed}")
    folder = output_folder(out, "demo")
    with _threads(1):
        sections = [_moons(folder, seed, 60 if quick else 400, echo)]
    sections.append(_compress(1024 if quick else 4096, 5 if quick else 30, echo))
    with _threads(1):
        sections.append(_bonsai(folder, seed, 60 if quick else None, echo))
    seconds = time.perf_counter() - start
    report = _report(folder, sections, seconds)
    echo(f"done in {seconds:.0f} s; report: {report}")
    return report
