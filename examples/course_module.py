"""The sparse-networks course module (Module 05), redone with sprig.

The course masks a 20-64-2 MLP on a toy task (20-D Gaussian inputs, label x0 + x1 > 0): it
shows sparsity patterns, compares magnitude with random pruning, trains sparse networks against
a dense one at several densities, and finds a lottery ticket by iterative magnitude pruning.

python examples/course_module.py [OUT]    # writes OUT (default ./course_module) with masks.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

import sprig
from sprig.data import course_task
from sprig.plots import plot_masks
from sprig.prune import prune
from sprig.training import TrainConfig, accuracy, train_classifier


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))


def main(steps: int = 100, out: Path | None = None) -> dict[str, float]:
    out = out or Path("course_module")
    out.mkdir(parents=True, exist_ok=True)
    print(f"writing into {out.resolve()}")
    data = course_task(seed=0)
    train = TrainConfig(steps=steps, lr=1e-2, batch_size=None)
    results: dict[str, float] = {}

    # 1. patterns: the same layer masked four ways, drawn side by side
    layers = nn.Sequential(
        *(
            sprig.SparseLinear(32, 32, 0.25, p, seed=0)
            for p in ("unstructured", "row", "block:4x4", "column")
        )
    )
    plot_masks(layers, out / "masks.png")

    # 2. magnitude vs random pruning of a trained dense network, without retraining
    dense = mlp()
    train_classifier(dense, data, train)
    results["dense"] = accuracy(dense, data.x_test, data.y_test)
    for method in ("magnitude", "random"):
        net = mlp()
        net.load_state_dict(dense.state_dict())
        prune(net, 0.1, method, scope="global", seed=0)
        results[f"{method} pruned to 0.1"] = accuracy(net, data.x_test, data.y_test)

    # 3. sparse training from scratch at several densities
    for d in (0.5, 0.3, 0.1):
        net = sprig.sparsify(mlp(), density=d, distribution="uniform", seed=0)
        train_classifier(net, data, train)
        results[f"sparse {d}"] = accuracy(net, data.x_test, data.y_test)

    # 4. a lottery ticket: 3 rounds of global magnitude pruning at 50%, rewound to init
    cfg = sprig.LotteryConfig(rounds=3, rate=0.5, controls=("reinit",), train=train)
    ticket = sprig.find_tickets(mlp, data, cfg)
    last = ticket.table()[-1]
    results["ticket density"] = last["density"]
    results["ticket"] = last["ticket"]
    results["reinit"] = last["reinit"]

    for name, value in results.items():
        print(f"{name:>24}: {value:.3f}")
    return results


if __name__ == "__main__":
    main(out=Path(sys.argv[1]) if len(sys.argv) > 1 else None)
