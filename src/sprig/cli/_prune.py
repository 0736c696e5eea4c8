"""``sprig lottery`` and ``sprig sparse-vs-dense``: the pruning experiments of the course module.

The experiments themselves live in the library (:func:`sprig.lottery.find_tickets`, the pruners);
this module parses options, prints progress and writes the run folder (JSON, markdown, PNG).
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import check_density
from ..data import Split, course_task, mnist1d
from ..io import write_text_atomic
from ..lottery import LotteryConfig, LotteryResult, LotteryRound, find_tickets
from ..masks import sparsify, summary
from ..prune import prune
from ..training import TrainConfig, train_classifier
from ._folders import UsageError, output_folder

Echo = Callable[[str], None]


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads. Small networks train fastest on one: with more, torch's
    threads spin-wait on each other, which on a busy machine makes steps many times slower
    (``benchmarks/results/design_measurements.md``, row ``small-threads``)."""
    if threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def parse_ints(text: str, what: str, low: int = 0, example: str = "0,1,2") -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``, each at least ``low``, with an error naming the bad value."""
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise UsageError(
            f"{what} must be integers separated by commas, e.g. {example}; got {text!r}"
        ) from None
    if not values:
        raise UsageError(f"{what} needs at least one value, e.g. {example}")
    if min(values) < low:
        raise UsageError(f"{what} values must be >= {low}, got {text!r}")
    return values


def parse_floats(text: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise UsageError(
            f"{what} must be numbers separated by commas, e.g. 1,0.5; got {text!r}"
        ) from None
    if not values:
        raise UsageError(f"{what} needs at least one value")
    return values


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _markdown(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def lottery_markdown(result: LotteryResult, title: str) -> str:
    """The averaged table of a lottery result, with where each arm stops matching dense."""
    arms = result.arms()
    tab = result.table()
    rows = []
    for r in tab:
        cells = [str(int(r["round"])), f"{r['density']:.4f}"]
        cells += [f"{100 * r[a]:.1f} ± {100 * r[a + '_std']:.1f}" for a in arms]
        cells.append(f"{100 * (r['ticket'] - tab[0]['ticket']):+.1f}")
        rows.append(cells)
    head = ["round", "density", *[f"{a} acc. (%)" for a in arms], "ticket − dense (points)"]
    cfg = result.config
    lines = [
        f"# {title}",
        "",
        f"{cfg.get('model', 'model')} on {cfg.get('data', 'data')}. Mean ± std over "
        f"{len(cfg['seeds'])} seed(s) {cfg['seeds']} of the final test accuracy. Iterative "
        f"magnitude pruning ({cfg['scope']} scope), {cfg['rate']:.0%} of the remaining weights "
        f"per round, rewind to iteration {cfg['rewind']}; every network trains "
        f"{cfg['train']['steps'] - cfg['rewind']} steps ({cfg['train']['optimizer']}, "
        f"lr {cfg['train']['lr']}, batch {cfg['train']['batch_size']}). Round 0 is the dense "
        "network, shared by all columns. reinit: the ticket's masks, fresh random weights. "
        "random: random masks with the ticket's per-layer counts, the ticket's initial weights.",
        "",
        _markdown(head, rows),
        "",
        "Where each stops matching dense within 1 point (mean over seeds): the lowest density "
        "within 1 point, and (stricter) the lowest before the first round that is not:",
        "",
    ]
    for arm in arms:
        low = result.matching_density(arm, tolerance=0.01)
        first = result.matching_density(arm, tolerance=0.01, contiguous=True)
        lines.append(f"- {arm}: {low:.4f} (stricter: {first:.4f})")
    return "\n".join(lines) + "\n"


def run_lottery(
    *,
    rounds: int,
    rate: float,
    seeds: str,
    steps: int,
    lr: float,
    batch_size: int,
    rewind: int,
    scope: str,
    hidden: str,
    samples: int,
    controls: str,
    out: Path | None,
    echo: Echo,
) -> Path:
    """The MNIST-1D lottery-ticket experiment; returns the run folder."""
    seed_list = parse_ints(seeds, "--seeds")
    sizes = (40, *parse_ints(hidden, "--hidden", low=1, example="64,64"), 10)
    if steps < 1:
        raise UsageError(f"--steps must be at least 1, got {steps}")
    if samples < 10:
        raise UsageError(
            f"--samples must be >= 10 (MNIST-1D keeps 80% for training), got {samples}"
        )
    ctrl = tuple(c for c in controls.replace(" ", "").split(",") if c)
    config = LotteryConfig(
        rounds=rounds,
        rate=rate,
        rewind=rewind,
        scope=scope,
        controls=ctrl,
        seeds=seed_list,
        train=TrainConfig(steps=steps, lr=lr, batch_size=batch_size),
    )
    folder = output_folder(out, "lottery")
    n_train = int(0.8 * samples)
    echo(
        f"sprig lottery: MLP {'-'.join(map(str, sizes))} on MNIST-1D "
        f"({n_train} train, {samples - n_train} test)"
    )
    echo(f"  {rounds} rounds at {rate:.0%}/round, seeds {list(seed_list)}, writing to {folder}")
    data = mnist1d(num_samples=samples)
    start = time.perf_counter()

    def progress(r: LotteryRound) -> None:
        accs = "  ".join(f"{a} {100 * v:5.1f}%" for a, v in r.accuracy.items())
        took = time.perf_counter() - start
        echo(f"  seed {r.seed} round {r.round:2d} density {r.density:.4f}  {accs}  ({took:.0f} s)")

    result = find_tickets(lambda s: mlp(sizes), data, config, on_round=progress)
    result.config["model"] = f"MLP {'-'.join(map(str, sizes))}"
    result.config["data"] = (
        f"MNIST-1D (mnist1d package, seed 42, {data.x_train.shape[0]} train / "
        f"{data.x_test.shape[0]} test)"
    )
    result.save(folder / "lottery.json")
    md = lottery_markdown(result, "Lottery tickets on MNIST-1D")
    write_text_atomic(folder / "lottery.md", md)
    _plot(result, folder / "lottery.png", "Lottery tickets on MNIST-1D")
    echo("")
    echo(md)
    echo(f"done in {time.perf_counter() - start:.0f} s; results in {folder}")
    return folder


def _plot(result: LotteryResult, path: Path, title: str) -> None:
    from ..plots import plot_accuracy_vs_density

    tab = result.table()
    spread = {a: [r[a + "_std"] for r in tab] for a in result.arms()}
    plot_accuracy_vs_density(
        result.series(), path, title=title, spread=spread, reference=tab[0]["ticket"]
    )


def _course_runs(data: Split, dens: float, seed: int, steps: int, lr: float) -> dict[str, Any]:
    """Test accuracy of each column at one density and seed, the weights kept, and the
    from-scratch run's training loss per step (``"loss"``)."""
    tc = TrainConfig(steps=steps, lr=lr, batch_size=None, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        base = mlp((20, 64, 2))
    dense = copy.deepcopy(base)
    train_classifier(dense, data, tc)
    # the course's SparseMLP: a random mask of this density in every layer, trained from init
    # (density 1.0: the dense network itself)
    scratch = sparsify(copy.deepcopy(base), dens, distribution="uniform", seed=seed)
    hist = train_classifier(scratch, data, tc)
    out: dict[str, Any] = {"scratch": hist.final_accuracy, "loss": hist.loss}
    for method in ("magnitude", "random"):
        # prune the trained dense network once, retrain (density 1.0: just train it longer)
        net = prune(copy.deepcopy(dense), dens, method, seed=seed)
        out[method] = train_classifier(net, data, tc).final_accuracy
    out["nnz"] = summary(scratch).nnz
    return out


def run_sparse_vs_dense(
    *,
    densities: str,
    seeds: str,
    steps: int,
    lr: float,
    out: Path | None,
    echo: Echo,
) -> Path:
    """The course task at several densities; returns the run folder."""
    dens_list = tuple(
        check_density(d, "--densities value") for d in parse_floats(densities, "--densities")
    )
    seed_list = parse_ints(seeds, "--seeds")
    if steps < 1:
        raise UsageError(f"--steps must be >= 1, got {steps}")
    folder = output_folder(out, "sparse-vs-dense")
    data = course_task()
    echo("sprig sparse-vs-dense: MLP 20-64-2 on the course task (2000 train, 1000 test)")
    cols = {
        "scratch": "sparse from scratch (random mask)",
        "magnitude": "dense, magnitude-pruned, retrained",
        "random": "dense, random-pruned, retrained",
    }
    rows: list[dict[str, float | list[float]]] = []
    body: list[list[str]] = []
    curves: dict[str, list[float]] = {}
    for d in dens_list:
        runs = [_course_runs(data, d, s, steps, lr) for s in seed_list]
        # the from-scratch loss per step, averaged over seeds (the course notebook's picture)
        curves[f"density {d:.2f}"] = [statistics.mean(v) for v in zip(*(r["loss"] for r in runs))]
        row: dict[str, float | list[float]] = {"density": d, "weights": runs[0]["nnz"]}
        cells = [f"{d:.2f}", str(int(runs[0]["nnz"]))]
        for key in cols:
            accs = [r[key] for r in runs]
            mean = statistics.mean(accs)
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            row.update({key: mean, key + "_std": std, key + "_all": accs})
            cells.append(f"{100 * mean:.1f} ± {100 * std:.1f}")
        rows.append(row)
        body.append(cells)
        echo(f"  density {d:.2f}: " + "  ".join(f"{k} {c}%" for k, c in zip(cols, cells[2:])))
    head = ["density", "weights kept", *cols.values()]
    md = "\n".join(
        [
            "# Sparse vs dense on the course task",
            "",
            f"MLP 20-64-2, x ~ N(0, I_20), label x0 + x1 > 0; 2000 train / 1000 test points. "
            f"Test accuracy (%), mean ± std over seeds {list(seed_list)}; full-batch Adam, "
            f"lr {lr}, {steps} steps per training run (the course's recipe). Same density in "
            "both layers (random masks drawn uniformly per layer). 'Retrained' columns prune the "
            f"trained dense network once, then train {steps} more steps (fresh optimizer), so "
            f"they see {2 * steps} steps in all; their density-1.00 entry is the dense network "
            f"trained for those {2 * steps} steps, the fair reference for them.",
            "",
            _markdown(head, body),
            "",
        ]
    )
    payload = {
        "task": "course_task (20-D Gaussian, label x0 + x1 > 0), 2000 train / 1000 test",
        "model": "MLP 20-64-2",
        "train": asdict(TrainConfig(steps=steps, lr=lr, batch_size=None)),
        "seeds": list(seed_list),
        "columns": cols,
        "rows": rows,
    }
    write_text_atomic(folder / "sparse_vs_dense.json", json.dumps(payload, indent=1) + "\n")
    write_text_atomic(folder / "sparse_vs_dense.md", md)
    from ..plots import plot_loss_curves

    plot_loss_curves(
        curves,
        folder / "sparse_vs_dense_loss.png",
        title=f"sparse from scratch: training loss, mean of seeds {list(seed_list)}",
    )
    echo("")
    echo(md)
    echo(f"results in {folder}")
    return folder
