"""``sprig demo``: the tour. Each later capability adds a section here."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..data import moons
from ..masks import density, summary
from ..nn import SparseMLP


def _train_moons(model: nn.Module, seed: int, steps: int = 400) -> float:
    data = moons(n_samples=200, noise=0.1, n_test=200, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(data.x_train), data.y_train)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((model(data.x_test).argmax(1) == data.y_test).float().mean())


def run_demo(out: Path | None, seed: int, echo: Callable[[str], None]) -> None:
    start = time.perf_counter()
    torch.manual_seed(seed)
    echo("sprig demo: dense vs static-sparse MLP 2-32-32-2 on two moons (200 train, 200 test)")
    rows = []
    for dens in (1.0, 0.5, 0.2, 0.1):
        model = SparseMLP([2, 32, 32, 2], densities=[1.0, dens, min(1.0, 2 * dens)], seed=seed)
        acc = _train_moons(model, seed)
        nnz = summary(model).nnz
        rows.append((f"{density(model):.3f}", str(nnz), f"{acc:.3f}"))
    head = ("density", "weights kept", "test accuracy")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(3)]
    for r in (head, tuple("-" * w for w in widths), *rows):
        echo("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    echo(f"done in {time.perf_counter() - start:.1f} s")
