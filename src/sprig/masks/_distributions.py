"""Layer-wise density distributions: how a global density is shared among layers.

* ``uniform``: every layer gets the global density.
* ``er`` (Erdos-Renyi, Mocanu et al. 2018): density proportional to
  (n_in + n_out) / (n_in * n_out); kernel dimensions are ignored.
* ``erk`` (Erdos-Renyi-Kernel, Evci et al. 2020, "Rigging the Lottery"): density proportional
  to sum(shape) / prod(shape), so kernel dimensions count too.

For ER and ERK, layers whose density would exceed 1 are made dense and the scale is solved
again for the rest (RigL's ``get_sparsities_erdos_renyi``). Densities are then turned into
integer nonzero counts whose total is exactly round(density * total weights): each layer gets
the floor of its share and the remainder goes to the largest fractional parts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from .._checks import check_density
from .._registry import Registry

Shapes = Mapping[str, tuple[int, ...]]

DISTRIBUTIONS: Registry[Callable[[Shapes, float], dict[str, float]]] = Registry("distribution")


@DISTRIBUTIONS.register("uniform")
def uniform(shapes: Shapes, density: float) -> dict[str, float]:
    return {name: density for name in shapes}


def _scaled(shapes: Shapes, density: float, raw: dict[str, float]) -> dict[str, float]:
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    total = sum(sizes.values())
    dense: set[str] = set()
    while True:
        budget = density * total - sum(sizes[n] for n in dense)
        denom = sum(raw[n] * sizes[n] for n in shapes if n not in dense)
        if denom <= 0:
            return {n: 1.0 for n in shapes}
        eps = budget / denom
        over = [n for n in shapes if n not in dense and eps * raw[n] > 1.0]
        if not over:
            return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}
        # make the layer with the largest raw density dense, then solve again
        dense.add(max(over, key=lambda n: raw[n]))


@DISTRIBUTIONS.register("er")
def erdos_renyi(shapes: Shapes, density: float) -> dict[str, float]:
    raw = {}
    for name, shape in shapes.items():
        n_out = shape[0]
        n_in = shape[1] if len(shape) > 1 else 1
        raw[name] = (n_in + n_out) / (n_in * n_out)
    return _scaled(shapes, density, raw)


@DISTRIBUTIONS.register("erk")
def erdos_renyi_kernel(shapes: Shapes, density: float) -> dict[str, float]:
    raw = {name: sum(shape) / math.prod(shape) for name, shape in shapes.items()}
    return _scaled(shapes, density, raw)


def layer_counts(shapes: Shapes, density: float, distribution: str = "erk") -> dict[str, int]:
    """Nonzero count per layer, summing to exactly round(density * total), each at least 1.

    Args:
        shapes: layer name -> weight shape.
        density: global fraction of weights kept, in (0, 1].
        distribution: ``"uniform"``, ``"er"`` or ``"erk"``.

    Example:
        >>> layer_counts({"a": (10, 10), "b": (10, 10)}, 0.5, "uniform")
        {'a': 50, 'b': 50}
    """
    density = check_density(density)
    fn = DISTRIBUTIONS.get(distribution)
    if not shapes:
        return {}
    dens = fn(shapes, density)
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    target = round(density * sum(sizes.values()))
    want = {n: min(1.0, dens[n]) * sizes[n] for n in shapes}
    counts = {n: min(sizes[n], max(1, math.floor(want[n]))) for n in shapes}
    short = target - sum(counts.values())
    # hand out the remainder by largest fractional part, never past a layer's size
    order = sorted(shapes, key=lambda n: want[n] - math.floor(want[n]), reverse=True)
    i = 0
    while short > 0 and any(counts[n] < sizes[n] for n in shapes):
        n = order[i % len(order)]
        if counts[n] < sizes[n]:
            counts[n] += 1
            short -= 1
        i += 1
    return counts
