"""SparseMLP: a stack of SparseLinear layers, each with its own density."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from .._checks import check_int, reject_keywords, sub_seed
from ._activations import ACTIVATIONS, make_activation
from ._base import sprig_module
from ._linear import STORAGES, SparseLinear


@sprig_module("SparseMLP")
class SparseMLP(nn.Module):
    """A multi-layer perceptron of :class:`SparseLinear` layers with a density per layer.

    Args:
        sizes: layer widths including input and output, e.g. ``[2, 16, 16, 1]``.
        densities: one density per layer (``len(sizes) - 1``), or one for all.
        activation: name of the activation between layers (none after the last).
        pattern: sparsity pattern of every layer.
        bias: whether layers learn biases.
        seed: seed for the masks (each layer derives its own).
        storage: ``"masked"`` (:class:`SparseLinear` layers) or ``"compressed"`` (trainable
            layers holding only their nonzeros, never an ``out x in`` tensor: for networks
            whose dense twin does not fit in memory; unstructured pattern).

    Shapes:
        input ``(*, sizes[0])`` -> output ``(*, sizes[-1])``.

    Example (the RigL-on-micrograd article's network):
        >>> mlp = SparseMLP([2, 16, 16, 1], densities=[1.0, 0.1, 0.2], seed=0)
        >>> [int(layer.weight_mask.sum()) for layer in mlp.layers]
        [32, 26, 3]
    """

    def __init__(
        self,
        sizes: Sequence[int],
        densities: float | Sequence[float] | None = None,
        activation: str = "relu",
        pattern: str = "unstructured",
        bias: bool = True,
        seed: int = 0,
        storage: str = "masked",
        **unknown: Any,
    ) -> None:
        super().__init__()
        reject_keywords("SparseMLP", unknown, "densities")
        if isinstance(sizes, int):  # micrograd's MLP(nin, nouts)
            raise TypeError(
                f"SparseMLP takes one list of widths, sizes=[inputs, *hidden, outputs], got "
                f"sizes={sizes!r}: micrograd's MLP({sizes}, {list(densities)!r}) is "
                f"SparseMLP([{sizes}, {', '.join(map(str, densities))}], densities=...)"
                if isinstance(densities, Sequence)
                else f"SparseMLP takes sizes=[inputs, *hidden, outputs], got sizes={sizes!r}"
            )
        if densities is None:
            raise TypeError("SparseMLP needs densities=: one per layer, or one for all")
        if isinstance(sizes, str) or not isinstance(sizes, Sequence):
            raise TypeError(
                f"SparseMLP takes sizes=[inputs, *hidden, outputs] as a list of ints, got {sizes!r}"
            )
        sizes = [check_int(s, "each of sizes", 1) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(
                f"sizes must list at least input and output widths, all >= 1, got {sizes}"
            )
        n_layers = len(sizes) - 1
        if isinstance(densities, (int, float)):
            densities = [float(densities)] * n_layers
        densities = [float(d) for d in densities]
        if len(densities) != n_layers:
            raise ValueError(
                f"{n_layers} layers ({sizes}) need {n_layers} densities, got {len(densities)}: "
                f"{densities}"
            )
        ACTIVATIONS.get(activation)
        self.sizes, self.densities, self.activation = sizes, densities, activation
        self.pattern, self.bias, self.seed, self.storage = pattern, bias, seed, storage
        STORAGES.get(storage)
        self.layers = nn.ModuleList(
            SparseLinear(
                sizes[i],
                sizes[i + 1],
                densities[i],
                pattern,
                bias,
                seed=sub_seed(seed, i),
                storage=storage,
            )
            for i in range(n_layers)
        )
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        return x

    def config(self) -> dict[str, Any]:
        return {
            "sizes": self.sizes,
            "densities": self.densities,
            "activation": self.activation,
            "pattern": self.pattern,
            "bias": self.bias,
            "seed": self.seed,
            "storage": self.storage,
        }
