"""Dynamic sparse training on MNIST-1D: dense vs static vs SET, RigL, SNFS, DeepR.

An MLP 40-256-256-10 masked to a global density (ERK layout) is trained for a fixed step
budget with SGD + momentum, batch 128, the same budget for every method; test accuracy over
seeds. Mask updates every 100 steps until 75% of training, fraction 0.3 with cosine decay
(RigL's schedule); DeepR rewires after every step.

python benchmarks/dst_mnist1d.py            # writes results/dst_mnist1d.md and .json
python benchmarks/dst_mnist1d.py --quick    # a smoke run (few steps), writes nothing
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import write_table
from torch import nn

import sprig
from sprig.data import Split, mnist1d
from sprig.dst import make_updater
from sprig.training import Callback, TrainConfig, train_classifier

METHODS = ["dense", "static", "set", "rigl", "snfs", "deepr"]
DEEPR = {"temperature": 1e-6, "l1": 1e-5}


def make_model(density: float, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )
    if density < 1.0:
        sprig.sparsify(net, density=density, distribution="erk", seed=seed)
    return net


def train_one(method: str, density: float, seed: int, data: Split, steps: int) -> float:
    net = make_model(1.0 if method == "dense" else density, seed)
    config = TrainConfig(
        steps=steps, lr=0.05, optimizer="sgd", momentum=0.9, batch_size=128, seed=seed
    )
    callbacks: list[Callback] = []
    if method not in ("dense", "static"):
        t_end = int(0.75 * steps)
        kwargs: dict[str, object] = DEEPR if method == "deepr" else {"every": 100}
        callbacks.append(make_updater(method, net, t_end=t_end, fraction=0.3, seed=seed, **kwargs))
    hist = train_classifier(net, data, config, callbacks=callbacks)
    if method != "dense":
        assert abs(sprig.density(net) - density) < 1e-3, "density drifted"
    return hist.final_accuracy


def main(steps: int, seeds: int, densities: list[float], write: bool) -> None:
    torch.set_num_threads(1)
    data = mnist1d()
    rows = []
    per_seed: dict[str, list[float]] = {}
    start = time.time()
    for density in densities:
        for method in METHODS:
            if method == "dense" and density != densities[0]:
                continue
            accs = [train_one(method, density, s, data, steps) for s in range(seeds)]
            key = f"{method}@{1.0 if method == 'dense' else density}"
            per_seed[key] = accs
            mean = statistics.mean(accs)
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            rows.append(
                [1.0 if method == "dense" else density, method, mean, std, min(accs), max(accs)]
            )
            print(f"{key:<14} mean {mean:.4f} std {std:.4f} {accs}", flush=True)
    wall = time.time() - start
    print(f"{wall:.0f} s")
    if write:
        md = write_table(
            "dst_mnist1d",
            ["density", "method", "test acc mean", "std", "min", "max"],
            rows,
            {
                "per_seed": per_seed,
                "steps": steps,
                "seeds": seeds,
                "model": "MLP 40-256-256-10, ERK layout",
                "optimizer": "SGD lr 0.05 momentum 0.9, batch 128",
                "schedule": "every 100 steps until 0.75*steps, fraction 0.3, cosine",
                "deepr": DEEPR,
                "wall_s": round(wall, 1),
                "note": "shared 2-core machine, other jobs running; accuracies do not depend "
                "on timing",
            },
        )
        print(f"wrote {md}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        main(steps=200, seeds=1, densities=[0.1], write=False)
    else:
        main(steps=args.steps, seeds=args.seeds, densities=[0.1, 0.02], write=True)
