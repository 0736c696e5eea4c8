"""RigL on two moons, after the article "Implementing Sparse Networks with MicroGrad".

The article's set-up, with sprig: ``make_moons(n_samples=100, noise=0.1)`` (numpy seed 1337 as
in micrograd's demo), labels +-1, an MLP 2-16-16-1 with densities [1.0, 0.1, 0.2], weights
uniform in [-0.1, 0.1] and zero biases as in the article, max-margin (hinge) loss plus L2 1e-4
on every parameter, full-batch SGD with lr = 1 - 0.9 k/400 for 400 steps. RigL (and SET)
update the masks after every step k >= 1 with fraction 0.3 * lr. Accuracy is on the 100
training points, as in the article. Then the dead units of the RigL nets are stripped.

One difference: the article scores growth with a fresh dense gradient taken after the SGD
step; sprig's RigL uses the dense gradient of the step's own backward (as google-research/rigl).

python examples/rigl_moons.py            # 10 seeds, prints the tables
python examples/rigl_moons.py --out benchmarks/results/dst_moons.md
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

import sprig
from sprig.data import moons
from sprig.dst import SET, MaskUpdater, RigL
from sprig.training import Callback, TrainConfig, accuracy, train_classifier

SIZES = [2, 16, 16, 1]
DENSITIES = [1.0, 0.1, 0.2]
# The article's SparseNeuron keeps ceil(density * fan_in) inputs per neuron: 2 of 16 and 4 of 16,
# i.e. 32 and 4 connections (densities 0.125 and 0.25); sprig's layer-wise rounding keeps
# round(0.1 * 256) = 26 and round(0.2 * 16) = 3. Both are reported.
ARTICLE_DENSITIES = [1.0, 0.125, 0.25]


class LinearLR(Callback):
    """The article's lr = 1 - 0.9 k / steps, set before step k + 1."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def after_step(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        for group in optimizer.param_groups:
            group["lr"] = 1.0 - 0.9 * (step + 1) / self.steps


def hinge(out: Tensor, y: Tensor) -> Tensor:
    """SVM max-margin loss on labels +-1 (sprig's splits hold 0/1)."""
    return torch.relu(1 - (2 * y.float() - 1) * out[:, 0]).mean()


def l2(model: nn.Module) -> Tensor:
    return 1e-4 * sum(p.square().sum() for p in model.parameters())  # type: ignore[return-value]


def make_net(seed: int, densities: list[float]) -> sprig.SparseMLP:
    net = sprig.SparseMLP(SIZES, densities=densities, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # the article's init: w ~ U(-0.1, 0.1), b = 0
        for layer in net.layers:
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=gen) * 0.2 - 0.1)
            layer.weight.mul_(layer.weight_mask)
            layer.bias.zero_()
    return net


@dataclass
class Run:
    method: str
    seed: int
    accuracy: float
    net: nn.Module


def run(method: str, seed: int, steps: int = 400, densities: list[float] = DENSITIES) -> Run:
    data = moons(n_samples=100, noise=0.1, seed=1337)
    net = make_net(seed, densities)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    callbacks: list[Callback] = [LinearLR(steps)]
    updater: MaskUpdater | None = None
    if method != "static":
        cls = {"rigl": RigL, "set": SET}[method]
        # fraction 0.3 * lr = 0.3 * (1 - 0.9 k / steps) after every step k >= 1
        updater = cls(
            net, t_end=steps, every=1, start=1, fraction=0.3, decay=lambda p: 1 - 0.9 * p, seed=seed
        )
        callbacks.append(updater)
    config = TrainConfig(steps=steps, lr=1.0, optimizer="sgd", batch_size=None, seed=seed)
    train_classifier(
        net, data, config, optimizer=opt, callbacks=callbacks, loss_fn=hinge, extra_loss=l2
    )
    return Run(method, seed, accuracy(net, data.x_train, data.y_train), net)


@dataclass
class Report:
    densities: list[float]
    accuracy: dict[str, list[float]]  # method -> one accuracy per seed
    stripped: list[sprig.StripResult]  # the RigL nets, one per seed

    def __str__(self) -> str:
        seeds = len(self.stripped)
        nnz = [round(d * a * b) for d, a, b in zip(self.densities, SIZES, SIZES[1:])]
        lines = [
            f"two moons, MLP {'-'.join(map(str, SIZES))}, densities {self.densities} "
            f"(connections {nnz}), {seeds} seeds, accuracy on the 100 training points",
            "method  mean   min    max",
        ]
        for method, accs in self.accuracy.items():
            lines.append(
                f"{method:<7} {statistics.mean(accs):.3f}  {min(accs):.3f}  {max(accs):.3f}"
            )
        lines.append("RigL nets after stripping dead units:")
        lines += [f"  seed {seed}: {res}" for seed, res in enumerate(self.stripped)]
        return "\n".join(lines)


def main(seeds: int = 10, steps: int = 400, densities: list[float] = DENSITIES) -> Report:
    data = moons(n_samples=100, noise=0.1, seed=1337)
    accuracy: dict[str, list[float]] = {}
    stripped: list[sprig.StripResult] = []
    for method in ("static", "rigl", "set"):
        runs = [run(method, s, steps, densities) for s in range(seeds)]
        accuracy[method] = [r.accuracy for r in runs]
        if method == "rigl":
            for r in runs:
                res = sprig.strip(r.net)
                with torch.no_grad():  # the stripped net computes the same function
                    torch.testing.assert_close(res.model(data.x_train), r.net(data.x_train))
                stripped.append(res)
    report = Report(list(densities), accuracy, stripped)
    print(report)
    return report


NOTES = """\
The article reports static 88% and RigL 100% for one seed. With densities [1.0, 0.1, 0.2]
sprig's output layer keeps round(0.2 * 16) = 3 connections, and floor(0.3 * 3) = 0, so RigL
never rewires it and cannot route around dead hidden units: RigL ~ static. The article's
neurons keep ceil(density * fan_in) inputs (32 and 4 connections): the second table uses
those counts, where RigL can rewire the output layer early on. The stripped nets are checked
to give the same outputs as the unstripped ones."""


def write(reports: list[Report], out: Path) -> None:
    """Write the reports as markdown (``out``) and JSON (``out`` with ``.json``)."""
    text = "\n\n".join(str(r) for r in reports)
    out.write_text(f"# RigL on two moons (examples/rigl_moons.py)\n\n```\n{text}\n```\n\n{NOTES}\n")
    data = [
        {
            "densities": r.densities,
            "accuracy": r.accuracy,
            "stripped_sizes": [list(s.sizes_after) for s in r.stripped],
            "stripped_params": [[s.params_before, s.params_after] for s in r.stripped],
        }
        for r in reports
    ]
    out.with_suffix(".json").write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", type=Path, help="also write the table here (.md and .json)")
    args = ap.parse_args()
    reports = [main(args.seeds, densities=DENSITIES)]
    print()
    reports.append(main(args.seeds, densities=ARTICLE_DENSITIES))
    if args.out:
        write(reports, args.out)
