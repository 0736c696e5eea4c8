"""Cost of sprig's mask mechanism in training: one step (forward, backward, Adam) of a masked
4096x4096 linear layer at density 0.1, batch 64, against a plain nn.Linear; same run, interleaved.

Goal (foundation issue): at most 1.15x the dense step.

Finding: torch's default (foreach) Adam/AdamW is itself slower on any masked weight, whatever
the masking mechanism: its sqrt over exp_avg_sq runs ~6x slower on a tensor that is 90% exact
zeros on this CPU. fused=True Adam does not have that slow path (and is faster overall).

    python benchmarks/bench_masked_step.py [--n 4096] [--batch 64] [--density 0.1]
"""

from __future__ import annotations

import argparse
import copy

import torch
from _common import time_interleaved, write_table
from torch import nn

import sprig

OPTIMIZERS = {
    "adam (default foreach)": (torch.optim.Adam, {"lr": 1e-3}),
    "adam fused=True": (torch.optim.Adam, {"lr": 1e-3, "fused": True}),
    "adamw wd=0.01 fused=True": (
        torch.optim.AdamW,
        {"lr": 1e-3, "weight_decay": 0.01, "fused": True},
    ),
    "sgd momentum=0.9": (torch.optim.SGD, {"lr": 1e-3, "momentum": 0.9}),
}


def make_step(model: nn.Module, x: torch.Tensor, opt_name: str) -> object:
    cls, kwargs = OPTIMIZERS[opt_name]
    opt = cls(model.parameters(), **kwargs)

    def step() -> None:
        opt.zero_grad(set_to_none=False)
        model(x).square().mean().backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.n)
    rows = []
    for opt_name in OPTIMIZERS:
        dense = nn.Linear(args.n, args.n)
        masked = sprig.sparsify(copy.deepcopy(dense), density=args.density)
        t = time_interleaved(
            {"dense": make_step(dense, x, opt_name), "masked": make_step(masked, x, opt_name)},
            rounds=args.rounds,
        )
        rows.append((opt_name, t["dense"] * 1e3, t["masked"] * 1e3, t["masked"] / t["dense"]))
        print(
            f"{opt_name}: dense {t['dense'] * 1e3:.1f} ms, masked {t['masked'] * 1e3:.1f} ms, "
            f"ratio {t['masked'] / t['dense']:.3f}x"
        )
    path = write_table(
        "masked_step",
        ["optimizer", "dense ms", "sprig masked ms", "masked / dense"],
        rows,
        {"n": args.n, "batch": args.batch, "density": args.density, "goal": "<= 1.15x"},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
