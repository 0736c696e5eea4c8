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
from collections.abc import Callable, Mapping, Sequence

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
    names = list(shapes)
    want = [min(1.0, dens[n]) * sizes[n] for n in names]
    counts = largest_remainder(want, target, [sizes[n] for n in names], minimum=1)
    return dict(zip(names, counts))


def largest_remainder(
    shares: Sequence[float], total: int, caps: Sequence[int], minimum: int = 0
) -> list[int]:
    """Whole counts near ``shares`` that add up to ``total``, each at most its cap.

    Each count starts at the floor of its share (at least ``minimum``, at most its cap). The
    shortfall goes one at a time to the largest fractional parts first, then to the counts with
    the most room left, in passes until none is short or no count has room (the sum then stays
    below ``total``). Ties keep the order given, so results are reproducible.

    Example:
        >>> largest_remainder([1.5, 2.7, 0.8], 5, [10, 10, 10])
        [1, 3, 1]
        >>> largest_remainder([4.0, 1.0], 5, [2, 10])
        [2, 3]
    """
    counts = [min(cap, max(minimum, math.floor(s))) for s, cap in zip(shares, caps)]
    index = range(len(counts))
    order = sorted(index, key=lambda i: shares[i] - math.floor(shares[i]), reverse=True)
    order += sorted(index, key=lambda i: caps[i] - counts[i], reverse=True)
    short = total - sum(counts)
    while short > 0 and any(counts[i] < caps[i] for i in index):
        for i in order:
            if short and counts[i] < caps[i]:
                counts[i] += 1
                short -= 1
    return counts
