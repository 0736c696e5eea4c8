"""SparseLinear: an ``nn.Linear`` born masked."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._checks import make_generator
from ..masks import apply_mask, make_mask, parse_pattern
from ._base import sprig_module


@sprig_module("SparseLinear")
class SparseLinear(nn.Linear):
    """A linear layer y = x W^T + b whose weight W keeps only a ``density`` fraction of entries.

    The weight is masked through sprig's one mask mechanism: pruned entries are exactly zero in
    every forward, get zero gradient and stay zero through optimizer steps. Being an
    ``nn.Linear``, it works wherever one does.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        density: fraction of weights kept, in (0, 1] (None for an N:M pattern).
        pattern: ``"unstructured"``, ``"row"``, ``"column"``, ``"block:4x4"``, ``"2:4"``.
        bias: whether to learn an additive bias.
        seed: seed for the random mask.

    Shapes:
        input ``(*, in_features)`` -> output ``(*, out_features)``.

    Example:
        >>> layer = SparseLinear(64, 32, density=0.1, seed=0)
        >>> int(layer.weight_mask.sum())
        205
        >>> layer(torch.randn(8, 64)).shape
        torch.Size([8, 32])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        density: float | None = None,
        pattern: str = "unstructured",
        bias: bool = True,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        spec = parse_pattern(pattern)
        mask = make_mask((out_features, in_features), density, spec, generator=make_generator(seed))
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.density = float(mask.float().mean()) if density is None else float(density)
        self.pattern = str(spec)
        self.seed = seed
        apply_mask(self, "weight", mask, pattern=self.pattern)

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "density": self.density,
            "pattern": self.pattern,
            "bias": self.bias is not None,
            "seed": self.seed,
        }

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, density={self.density:g}, pattern={self.pattern}"
