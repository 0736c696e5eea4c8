"""Sparsity patterns: pure functions from (shape, density, scores) to a bool mask.

Every pattern keeps the highest-scoring entries (or rows, columns, blocks, N-of-M groups).
Without scores it draws random scores from the generator, so random masks and magnitude
pruning are the same code path. Ties are broken by position, so results are deterministic.

Pattern strings:
    ``"unstructured"``  exact nonzero count round(density * numel), at least 1
    ``"row"``           whole output neurons (dim 0)
    ``"column"``        whole inputs (dim 1, summed over any kernel dims)
    ``"block:BHxBW"``   bh x bw blocks of the (out, rest) view, e.g. ``"block:4x4"``
    ``"N:M"``           N kept in every M consecutive inputs, e.g. ``"2:4"`` (density is N/M)
    ``"fanin"``         every output keeps the same number of inputs, round(density * inputs),
                        at least 1 (the micrograd article's neurons; SRigL's constant fan-in,
                        which RigL and SET keep by swapping within each row)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .._checks import check_density, make_generator
from .._registry import Registry

# (shape, density, scores, **params) -> bool mask of shape
PatternFn = Callable[..., Tensor]

PATTERNS: Registry[PatternFn] = Registry("pattern")


@dataclass(frozen=True)
class PatternSpec:
    """A parsed pattern: a registry name plus its parameters (``block``'s size, N:M's n and m)."""

    name: str
    params: dict[str, int] = field(default_factory=dict)

    @property
    def fixed_density(self) -> float | None:
        """The density the pattern itself implies (N:M), or None."""
        if self.name == "nm":
            return self.params["n"] / self.params["m"]
        return None

    def __str__(self) -> str:
        if self.name == "nm":
            return f"{self.params['n']}:{self.params['m']}"
        if self.name == "block":
            return f"block:{self.params['bh']}x{self.params['bw']}"
        return self.name


_NM = re.compile(r"^(\d+):(\d+)$")
_BLOCK = re.compile(r"^block(?::(\d+)x(\d+))?$")


def parse_pattern(pattern: str | PatternSpec) -> PatternSpec:
    """Parse a pattern string (see the module docstring) into a :class:`PatternSpec`."""
    if isinstance(pattern, PatternSpec):
        return pattern
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string such as 'unstructured', got {pattern!r}")
    text = pattern.strip().lower()
    if m := _NM.match(text):
        n, mm = int(m.group(1)), int(m.group(2))
        if not 0 < n <= mm:
            raise ValueError(f"N:M pattern {pattern!r} needs 0 < N <= M, e.g. '2:4'")
        return PatternSpec("nm", {"n": n, "m": mm})
    if m := _BLOCK.match(text):
        bh, bw = (int(m.group(1)), int(m.group(2))) if m.group(1) else (4, 4)
        if bh < 1 or bw < 1:
            raise ValueError(f"block pattern {pattern!r} needs sizes >= 1, e.g. 'block:4x4'")
        return PatternSpec("block", {"bh": bh, "bw": bw})
    if text in PATTERNS and text not in ("nm", "block"):
        return PatternSpec(text)
    valid = (
        "'unstructured', 'row', 'column', 'fanin', 'block:BHxBW' (e.g. 'block:4x4'), "
        "'N:M' (e.g. '2:4')"
    )
    raise ValueError(f"unknown pattern {pattern!r}; valid patterns are {valid}")


def _keep_top(scores: Tensor, k: int) -> Tensor:
    """Bool mask of the k highest entries of a 1-D score vector (ties: lower index wins)."""
    flat = scores.flatten()
    n = flat.numel()
    if flat.is_meta or k <= 0 or k >= n or bool(torch.isnan(flat).any()):
        keep = torch.zeros(n, dtype=torch.bool)
        if k > 0:
            # stable descending sort makes tie-breaking deterministic (NaN counts as largest;
            # on the meta device, where load probes a config, only the shapes matter)
            keep[torch.sort(flat, descending=True, stable=True).indices[:k]] = True
        return keep
    # the same mask as that sort, without sorting: the k-th largest value by selection, all
    # above it, then the lowest indices among its ties (a 4096x4096 layer's random mask took
    # 2.4 s to sort)
    kth = torch.kthvalue(flat, n - k + 1).values
    keep = flat > kth
    need = k - int(keep.sum())
    keep[(flat == kth).nonzero().flatten()[:need]] = True
    return keep


def count_for(density: float, n: int) -> int:
    """How many of n units a pattern keeps at ``density``: round(density * n), at least 1."""
    return min(n, max(1, round(density * n)))


def _as_2d(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, shape[0]
    rest = 1
    for s in shape[1:]:
        rest *= s
    return shape[0], rest


@PATTERNS.register("unstructured")
def unstructured(shape: tuple[int, ...], density: float, scores: Tensor) -> Tensor:
    n = scores.numel()
    return _keep_top(scores.flatten(), count_for(density, n)).reshape(shape)


@PATTERNS.register("row")
def row(shape: tuple[int, ...], density: float, scores: Tensor) -> Tensor:
    rows, cols = _as_2d(shape)
    per_row = scores.reshape(rows, cols).sum(dim=1)
    keep = _keep_top(per_row, count_for(density, rows))
    return keep[:, None].expand(rows, cols).reshape(shape).clone()


@PATTERNS.register("column")
def column(shape: tuple[int, ...], density: float, scores: Tensor) -> Tensor:
    if len(shape) < 2:
        return unstructured(shape, density, scores)
    s = scores.reshape(shape[0], shape[1], -1)
    per_col = s.sum(dim=(0, 2))
    keep = _keep_top(per_col, count_for(density, shape[1]))
    return keep[None, :, None].expand_as(s).reshape(shape).clone()


@PATTERNS.register("fanin")
def fanin(shape: tuple[int, ...], density: float, scores: Tensor) -> Tensor:
    rows, cols = _as_2d(shape)
    k = count_for(density, cols)
    order = torch.sort(scores.reshape(rows, cols), dim=1, descending=True, stable=True).indices
    keep = torch.zeros(rows, cols, dtype=torch.bool)
    keep.scatter_(1, order[:, :k], True)
    return keep.reshape(shape)


@PATTERNS.register("block")
def block(shape: tuple[int, ...], density: float, scores: Tensor, bh: int, bw: int) -> Tensor:
    rows, cols = _as_2d(shape)
    nbr, nbc = -(-rows // bh), -(-cols // bw)
    s = scores.reshape(rows, cols)
    padded = torch.zeros(nbr * bh, nbc * bw, dtype=s.dtype)
    count = torch.zeros_like(padded)
    padded[:rows, :cols] = s
    count[:rows, :cols] = 1
    # mean score per block, so ragged edge blocks compete fairly
    sums = padded.reshape(nbr, bh, nbc, bw).sum(dim=(1, 3))
    sizes = count.reshape(nbr, bh, nbc, bw).sum(dim=(1, 3))
    keep = _keep_top((sums / sizes).flatten(), count_for(density, nbr * nbc)).reshape(nbr, nbc)
    full = keep.repeat_interleave(bh, dim=0).repeat_interleave(bw, dim=1)
    return full[:rows, :cols].reshape(shape).clone()


@PATTERNS.register("nm")
def n_of_m(shape: tuple[int, ...], density: float, scores: Tensor, n: int, m: int) -> Tensor:
    # groups run along the input dimension (dim 1; the last dim of the kernel-last layout)
    if len(shape) < 2:
        raise ValueError(f"N:M pattern needs a weight of rank >= 2, got shape {shape}")
    cin = shape[1]
    if cin % m != 0:
        raise ValueError(
            f"N:M pattern {n}:{m} needs the input dimension to be a multiple of {m}, "
            f"but weight shape {shape} has {cin} inputs; choose M dividing {cin} "
            "or another pattern"
        )
    moved = scores.reshape(shape).movedim(1, -1)  # (out, *kernel, in)
    groups = moved.reshape(-1, m)
    order = torch.sort(groups, dim=1, descending=True, stable=True).indices
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, order[:, :n], True)
    return keep.reshape(moved.shape).movedim(-1, 1).contiguous()


def make_mask(
    shape: Sequence[int],
    density: float | None = None,
    pattern: str | PatternSpec = "unstructured",
    *,
    scores: Tensor | None = None,
    generator: torch.Generator | int | None = None,
) -> Tensor:
    """A bool mask of ``shape`` keeping a ``density`` fraction of entries in ``pattern``.

    Args:
        shape: the weight's shape, e.g. ``(out_features, in_features)``.
        density: fraction kept, in (0, 1]; may be None for N:M (density N/M).
        pattern: see the module docstring.
        scores: optional tensor of ``shape``; the highest-scoring entries are kept
            (magnitudes for magnitude pruning). Random scores when None.
        generator: seed or generator for random scores.

    Returns:
        bool tensor of ``shape`` on the CPU.

    Example:
        >>> int(make_mask((8, 8), 0.25, generator=0).sum())
        16
    """
    spec = parse_pattern(pattern)
    shape = tuple(int(s) for s in shape)
    if any(s < 1 for s in shape):
        raise ValueError(f"cannot mask a tensor with an empty dimension, shape {shape}")
    fixed = spec.fixed_density
    if fixed is not None:
        if density is not None and abs(check_density(density) - fixed) > 1e-9:
            raise ValueError(
                f"pattern {spec} fixes density at {fixed:g}, but density={density!r} was given; "
                "pass density=None (or the matching value)"
            )
        density = fixed
    if density is None:
        raise ValueError(f"pattern {spec} needs a density in (0, 1]")
    density = check_density(density)
    if scores is None:
        scores = torch.rand(shape, generator=make_generator(generator))
    else:
        if tuple(scores.shape) != shape:
            raise ValueError(f"scores have shape {tuple(scores.shape)}, expected {shape}")
        scores = scores.detach().to("cpu", torch.float64)
    fn: Callable[..., Tensor] = PATTERNS.get(spec.name)
    return fn(shape, density, scores, **spec.params)
