"""Mask any PyTorch model with sprig, train it, save it and load it back.

python examples/mask_any_model.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

import sprig
from sprig.data import course_task


def main(steps: int = 200) -> float:
    data = course_task(seed=0)
    net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    sprig.sparsify(net, density=0.1, distribution="erk", seed=0)
    print(sprig.summary(net))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(data.x_train), data.y_train).backward()
        opt.step()
    with torch.no_grad():
        acc = float((net(data.x_test).argmax(1) == data.y_test).float().mean())
    path = Path(tempfile.mkdtemp()) / "net.safetensors"
    sprig.save(net, path)
    fresh = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    sprig.load_state(fresh, path)
    assert torch.equal(fresh(data.x_test), net(data.x_test))
    print(f"density {sprig.density(net):.3f}, test accuracy {acc:.3f}, reloaded from {path}")
    return acc


if __name__ == "__main__":
    main()
