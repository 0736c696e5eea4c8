"""A sparse ResNet-18 for CPU inference: fold BatchNorm, mask the convolutions, compress.

The model is defined here (ResNet-18's basic blocks, widths 64/128/256/512; no torchvision).
For inference each BatchNorm folds into the convolution before it
(``torch.nn.utils.fusion.fuse_conv_bn_eval``), every convolution but the 3-channel stem is
masked to the same density (``sprig.sparsify``, uniform), and ``sprig.compress`` turns the
masked convolutions (the 3x3 ones and the 1x1 shortcuts) into ``CompressedConv``: the direct
sparse kernel where the dispatcher's measured table says it beats dense. The stem (3 input
channels, 7x7) and the final linear layer stay dense: together a few percent of the work, and
the first layer's 147 weights per output channel are the ones a network can least afford to
lose.

``benchmarks/bench_conv.py`` times this model end to end (``benchmarks/results/conv.md``).

    python examples/resnet_sparse.py [--density 0.1] [--size 224]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

import sprig


class MaxPool(nn.Module):
    """3x3 max pooling, stride 2, run in channels-last layout.

    torch's max pooling of a contiguous (NCHW) tensor at batch 1 on one thread ran 20x slower
    than of a channels-last one here, a fifth of the dense model's time, in dense and compressed
    models alike (``benchmarks/results/conv.md``, note "max pooling").
    """

    def forward(self, x: Tensor) -> Tensor:
        y = F.max_pool2d(x.contiguous(memory_format=torch.channels_last), 3, 2, 1)
        return y.contiguous()


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (a 1x1 shortcut when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18: a 7x7 stem, four stages of two basic blocks, global pooling, a linear head."""

    def __init__(self, num_classes: int = 1000, widths: tuple[int, ...] = (64, 128, 256, 512)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
            MaxPool(),
        )
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            blocks += [BasicBlock(cin, w, stride), BasicBlock(w, w, 1)]
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        y = self.blocks(self.stem(x))
        return self.head(y.mean(dim=(2, 3)))


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm trained-looking statistics (so that folding them changes weights)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return model


def fold_batchnorm(model: ResNet18) -> ResNet18:
    """Fold each BatchNorm into the convolution before it (eval mode); the norms become identity."""
    model.eval()

    def fold(parent: nn.Module, conv: str, bn: str) -> None:
        fused = fuse_conv_bn_eval(getattr(parent, conv), getattr(parent, bn))
        setattr(parent, conv, fused)
        setattr(parent, bn, nn.Identity())

    fold(model.stem, "0", "1")
    for block in model.blocks:
        assert isinstance(block, BasicBlock)
        fold(block, "conv1", "bn1")
        fold(block, "conv2", "bn2")
        if isinstance(block.shortcut, nn.Sequential):
            fold(block.shortcut, "0", "1")
    return model


def sparse_resnet(density: float, seed: int = 0, stem: bool = False) -> ResNet18:
    """ResNet-18 with BatchNorm folded and every convolution masked to ``density``, the stem
    only if ``stem``."""
    torch.manual_seed(seed)
    model = fold_batchnorm(randomize_batchnorm(ResNet18(), seed))
    include = ["blocks.*", "stem.*"] if stem else ["blocks.*"]
    sprig.sparsify(model, density, distribution="uniform", include=include, seed=seed)
    return model


def main(density: float = 0.1, size: int = 224, backend: str = "auto", runs: int = 10) -> float:
    """Compress the masked model, check it against masked dense, time both; return the error."""
    masked = sparse_resnet(density)
    fast = sprig.compress(masked, backend=backend)
    print(sprig.summary(fast))
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        want, got = masked(x), fast(x)
        err = float((got - want).abs().max() / want.abs().max())
        print(f"max |compressed - masked dense| / max |output|: {err:.2e}")
        for name, model in (("masked dense", masked), ("compressed", fast)):
            model(x)
            start = time.perf_counter()
            for _ in range(runs):
                model(x)
            print(f"{name}: {(time.perf_counter() - start) / runs * 1e3:.1f} ms per image")
    return err


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    assert main(args.density, args.size) < 1e-5, "compressed outputs differ from masked dense"
