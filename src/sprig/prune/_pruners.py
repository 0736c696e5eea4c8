"""Pruners: scores -> masks, applied through the one mask mechanism (``sprig.masks.apply_mask``).

A pruner only says how to *score* a weight (``|w|``, a random number, ``|w|^p`` summed over a
row...) and which pattern the kept entries form; :func:`sprig.masks.make_mask` keeps the
highest-scoring entries. The base class does the rest, the same way for every pruner:

* **within the current mask**: a pruned weight is never revived. Unstructured pruners give pruned
  entries a score of ``-inf`` (they lose every comparison); structured ones see them as zeros
  and the new mask is intersected with the old one.
* **exact targets**: layer scope keeps ``round(density * numel)`` weights in every layer (at least
  one; structured patterns keep ``round(density * units)`` rows, columns or blocks); global scope
  keeps ``round(density * total)`` weights over all layers together, wherever they are. (A
  structured pruner applied over an unstructured mask keeps whole units *of what survives*, so
  the weight density then ends below the target.)
* **remove-only**: a target above a layer's current density is an error (``strict=True``) or
  leaves that layer as it is (``strict=False``, what gradual schedules use).
* **all or nothing**: every mask is built before the first is applied, so a failed call leaves
  the model unchanged.

Scopes: ``"layer"`` gives every layer the same density; ``"global"`` ranks all weights together
(unstructured pruners only), so layers whose weights are large keep more of them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .._checks import check_density, make_generator, sub_seed
from .._registry import Registry
from .._stack import user_stacklevel
from ..masks import (
    CompressedWeight,
    ParameterRef,
    PatternSpec,
    apply_mask,
    compressed_weights,
    count_for,
    fixed_stored_weights,
    layer_mask,
    left_alone,
    make_mask,
    parse_pattern,
    selected,
    sparsifiable_parameters,
    warn_left_alone,
    warn_tied,
)

SCOPES = ("layer", "global")

# tolerance for "is the target above the current density" (float round-off of count / numel)
_EPS = 1e-9


@dataclass(frozen=True)
class _Target(ParameterRef):
    """A weight to prune, with its mask as the pruning began (all True for a dense weight)."""

    alive: Tensor  # bool, on the CPU


class Pruner:
    """Base class: subclasses define :meth:`score` and (optionally) a pattern.

    Args:
        scope: ``"layer"`` (every layer to the target density) or ``"global"`` (one ranking over
            all layers; unstructured pruners only).

    Example (a new pruner is a few lines; ``score`` sees the parameter, gradient included):
        >>> class TaylorPruner(Pruner):
        ...     name = "taylor"
        ...     def score(self, param, generator):
        ...         return (param * param.grad).abs()
        >>> lin = nn.Linear(4, 4)
        >>> lin(torch.randn(8, 4)).sum().backward()
        >>> _ = TaylorPruner().prune(lin, 0.5)
        >>> int(lin.weight_mask.sum())
        8
    """

    pattern: ClassVar[str] = "unstructured"
    name: ClassVar[str] = "pruner"

    def __init__(self, scope: str = "layer") -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; valid scopes are: {', '.join(SCOPES)}")
        if scope == "global" and self.spec().name != "unstructured":
            raise ValueError(
                f"scope 'global' needs an unstructured pruner, but {self.name!r} prunes "
                f"{self.spec()} structures; use scope='layer'"
            )
        self.scope = scope

    def spec(self) -> PatternSpec:
        return parse_pattern(self.pattern)

    def score(self, param: Tensor, generator: torch.Generator) -> Tensor:
        """Per-entry score of ``param`` (same shape, >= 0); the highest are kept."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scope={self.scope!r})"

    # ----------------------------------------------------------------------------------------
    def masks(
        self,
        model: nn.Module,
        density: float | Mapping[str, float] | None,
        *,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        seed: int = 0,
        strict: bool = True,
    ) -> dict[str, Tensor]:
        """The new masks (qualified name -> bool tensor) without applying them.

        Args, Returns: as :meth:`prune`, but nothing on ``model`` changes.
        """
        targets = _targets(model, include, exclude)
        spec = self.spec()
        if isinstance(density, Mapping):
            if self.scope == "global":
                raise ValueError(
                    "per-layer densities need scope='layer'; pass one float for scope='global'"
                )
            unknown = sorted(set(density) - {t.qualname for t in targets})
            if unknown:
                have = ", ".join(t.qualname for t in targets)
                raise ValueError(f"no prunable weights named {unknown}; the weights are: {have}")
            per = {q: check_density(d, f"density of {q}") for q, d in density.items()}
        else:
            fixed = spec.fixed_density
            if fixed is not None:
                if density is not None and abs(check_density(density) - fixed) > _EPS:
                    raise ValueError(
                        f"pattern {spec} fixes density at {fixed:g}, but density={density!r} was "
                        "given; pass density=None (or the matching value)"
                    )
                density = fixed
            if density is None:
                raise ValueError(f"{self.name} pruning needs a density in (0, 1], e.g. 0.5")
            d = check_density(density)
            per = {t.qualname: d for t in targets}
        if self.scope == "global":
            return self._global_masks(targets, per[targets[0].qualname], seed, strict)
        out: dict[str, Tensor] = {}
        for t in targets:
            if t.qualname not in per:
                continue
            new = self._layer_mask(t, per[t.qualname], spec, seed, strict)
            if new is not None:
                out[t.qualname] = new
        return out

    def prune(
        self,
        model: nn.Module,
        density: float | Mapping[str, float] | None,
        *,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        seed: int = 0,
        strict: bool = True,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> nn.Module:
        """Prune ``model`` in place to ``density`` and return it.

        Args:
            model: any module (dense or already masked) with Linear, Conv or RNN weights.
            density: target fraction of weights kept, in (0, 1]: one float (per layer, or over
                all layers for ``scope="global"``), or ``{qualified name: density}`` for layer
                scope (missing layers are kept as they are). None for N:M (density N/M).
            include: shell patterns of weight/module names to prune (default: every weight).
            exclude: shell patterns of names to leave alone.
            seed: seed for random scores (each layer derives its own stable sub-seed).
            strict: raise when a target is above a layer's current density (a pruner only
                removes); with False those layers are left unchanged.
            optimizer: the optimizer training ``model``, when it has compressed layers
                (``sprig.compress``, ``storage="compressed"``): their values shrink to the
                kept ones, and so must the optimizer's per-entry state (masked layers need
                nothing: their pruned entries are re-zeroed after every step).

        Returns:
            ``model``, pruned.
        """
        comp = _compressed_targets(model, include, exclude)
        new = {}
        if not comp or _has_targets(model, include, exclude):
            new = self.masks(
                model, density, include=include, exclude=exclude, seed=seed, strict=strict
            )
        kept = self._compressed_keep(comp, density, seed, strict)  # before anything changes
        label = str(self.spec())
        for t in _targets(model, include, exclude) if new else []:
            if t.qualname in new:
                apply_mask(t.module, t.name, new[t.qualname], pattern=label)
        for (_, c), keep in zip(comp, kept):
            if keep is not None:
                values = c.nonzero_values().detach()
                c.rewire(c.active_flat()[keep], values[keep], optimizer)
        if include is None:  # with include the user named what to prune
            skipped = [(q, w) for q, _, _, w in left_alone(model, exclude)]
            skipped += [
                (q, w) for q, w in fixed_stored_weights(model) if selected(q, q, None, exclude)
            ]
            warn_left_alone(f"{self.name} pruning", skipped)
        warn_tied(f"{self.name} pruning", model, list(new))
        empty = [q for q, m in new.items() if m.numel() > 0 and not bool(m.any())]
        if empty:
            # global scope can take every weight of a small layer (an output layer of a net
            # whose hidden layers hold larger magnitudes): its output is then a constant
            warnings.warn(
                f"{self.name} pruning left no weights in {', '.join(empty)}: "
                f"{'its' if len(empty) == 1 else 'their'} outputs no longer depend on the "
                "input. Prune with scope='layer', a higher density, or exclude "
                f"{'it' if len(empty) == 1 else 'them'} (exclude=[...]).",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return model

    def _compressed_keep(
        self,
        comp: list[tuple[str, CompressedWeight]],
        density: float | Mapping[str, float] | None,
        seed: int,
        strict: bool,
    ) -> list[Tensor | None]:
        """For each compressed layer, the (sorted) indices of the values it keeps, or None."""
        if not comp:
            return []
        if self.spec().name != "unstructured" or self.scope != "layer":
            raise ValueError(
                f"compressed layers {[q for q, _ in comp]} are pruned by unstructured pruners "
                f"with scope='layer'; {self!r} needs the dense layout: sprig.decompress the "
                "model, prune it, and compress it again"
            )
        out: list[Tensor | None] = []
        for qual, c in comp:
            if isinstance(density, Mapping):
                if qual not in density:
                    out.append(None)
                    continue
                d = check_density(density[qual], f"density of {qual}")
            else:
                if density is None:
                    raise ValueError(f"{self.name} pruning needs a density in (0, 1], e.g. 0.5")
                d = check_density(density)
            rows, cols = c.weight_shape()
            values = c.nonzero_values()
            numel, kept = rows * cols, values.numel()
            want = count_for(d, numel)
            if want > kept:
                if strict:
                    raise ValueError(
                        f"target density {d:g} is above the current density {kept / numel:.6g} "
                        f"of {qual}; a pruner only removes weights: choose a density at or below "
                        "the current one (or strict=False to leave such layers as they are)"
                    )
                out.append(None)
                continue
            if want == kept:
                out.append(None)
                continue
            gen = make_generator(sub_seed(seed, self.name, qual))
            with torch.no_grad():
                scores = self.score(values, gen).detach().to("cpu", torch.float64)
            # the highest scores stay; ties keep the lower position (as make_mask does)
            order = torch.argsort(-scores, stable=True)[:want]
            out.append(order.sort().values)
        return out

    # ----------------------------------------------------------------------------------------
    def _scores(self, t: _Target, seed: int) -> Tensor:
        gen = make_generator(sub_seed(seed, self.name, t.qualname))
        with torch.no_grad():
            s = self.score(t.param, gen).detach().to("cpu", torch.float64)
        if tuple(s.shape) != tuple(t.param.shape):
            raise ValueError(
                f"{type(self).__name__}.score returned shape {tuple(s.shape)} for {t.qualname} "
                f"of shape {tuple(t.param.shape)}"
            )
        # pruned entries are zero in the weight; make sure no score ever prefers them
        return s.masked_fill(~t.alive, 0.0)

    def _layer_mask(
        self, t: _Target, density: float, spec: PatternSpec, seed: int, strict: bool
    ) -> Tensor | None:
        numel = t.alive.numel()
        kept = int(t.alive.sum())
        if spec.name == "unstructured":
            want = count_for(density, numel)
            if want > kept:
                _too_high(t, density, kept, numel, strict)
                return None
            if want == kept:
                return None
            scores = self._scores(t, seed).masked_fill(~t.alive, -math.inf)
            return make_mask(t.alive.shape, want / numel, spec, scores=scores)
        if kept / numel < density - _EPS and spec.fixed_density is None:
            _too_high(t, density, kept, numel, strict)
            return None

        def make(view: tuple[int, ...], scores: Tensor | None) -> Tensor:
            return make_mask(view, density, spec, scores=scores)

        try:
            # rows, columns and N:M groups on the (out, in) view (Hugging Face Conv1D is (in, out))
            new = layer_mask(t.module, t.name, make, tuple(t.alive.shape), self._scores(t, seed))
        except ValueError as err:
            raise ValueError(f"{t.qualname}: {err}") from None
        new &= t.alive
        return None if torch.equal(new, t.alive) else new

    def _global_masks(
        self, targets: list[_Target], density: float, seed: int, strict: bool
    ) -> dict[str, Tensor]:
        total = sum(t.alive.numel() for t in targets)
        kept = sum(int(t.alive.sum()) for t in targets)
        want = min(total, max(1, round(density * total)))
        if want > kept:
            if strict:
                raise ValueError(
                    f"target density {density:g} is above the current density "
                    f"{kept / total:.6g} of the pruned weights; a pruner only removes weights: "
                    "choose a density at or below the current one"
                )
            return {}
        if want == kept:
            return {}
        flat = torch.cat(
            [self._scores(t, seed).masked_fill(~t.alive, -math.inf).flatten() for t in targets]
        )
        keep = make_mask((total,), want / total, "unstructured", scores=flat)
        out: dict[str, Tensor] = {}
        start = 0
        for t in targets:
            n = t.alive.numel()
            out[t.qualname] = keep[start : start + n].reshape(t.alive.shape).clone()
            start += n
        return out


def _too_high(t: _Target, density: float, kept: int, numel: int, strict: bool) -> None:
    """Raise for a target above the current density (strict); otherwise the layer is left."""
    if strict:
        raise ValueError(
            f"target density {density:g} is above the current density {kept / numel:.6g} of "
            f"{t.qualname}; a pruner only removes weights: choose a density at or below the "
            "current one (or strict=False to leave such layers as they are)"
        )


def _compressed_targets(
    model: nn.Module, include: Sequence[str] | None, exclude: Sequence[str] | None
) -> list[tuple[str, CompressedWeight]]:
    return [
        (q, c)
        for q, c in compressed_weights(model)
        if selected(q, q.removesuffix(".weight"), include, exclude)
    ]


def _has_targets(
    model: nn.Module, include: Sequence[str] | None, exclude: Sequence[str] | None
) -> bool:
    return any(True for _ in sparsifiable_parameters(model, include, exclude))


def _targets(
    model: nn.Module, include: Sequence[str] | None, exclude: Sequence[str] | None
) -> list[_Target]:
    out = []
    for qual, module, name in sparsifiable_parameters(model, include, exclude):
        ref = ParameterRef(qual, module, name)
        mask = ref.mask
        alive = torch.ones(ref.param.shape, dtype=torch.bool) if mask is None else mask.cpu()
        out.append(_Target(qual, module, name, alive))
    if not out:
        raise ValueError(
            f"found nothing to prune in {type(model).__name__} (include={include!r}, "
            f"exclude={exclude!r}); sprig prunes the weights of Linear, Conv and RNN layers"
        )
    return out


PRUNERS: Registry[type[Pruner]] = Registry("pruner")


def _register(cls: type[Pruner]) -> type[Pruner]:
    PRUNERS.add(cls.name, cls)
    return cls


@_register
class MagnitudePruner(Pruner):
    """Keep the weights of largest ``|w|`` (per layer or over all layers).

    Han et al. 2015, "Learning both Weights and Connections for Efficient Neural Networks".

    Example:
        >>> net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> _ = MagnitudePruner(scope="global").prune(net, 0.25)
        >>> from sprig.masks import density
        >>> density(net)
        0.25
    """

    name = "magnitude"

    def score(self, param: Tensor, generator: torch.Generator) -> Tensor:
        return param.abs()


@_register
class RandomPruner(Pruner):
    """Keep a uniformly random subset of the surviving weights (the baseline).

    Example:
        >>> lin = nn.Linear(10, 10)
        >>> _ = RandomPruner().prune(lin, 0.3, seed=1)
        >>> int(lin.weight_mask.sum())
        30
    """

    name = "random"

    def score(self, param: Tensor, generator: torch.Generator) -> Tensor:
        return torch.rand(param.shape, generator=generator, dtype=torch.float64)


@_register
class StructuredPruner(Pruner):
    """Keep whole rows or columns of largest L1 or L2 norm.

    ``axis="row"``: output neurons of a Linear, output channels of a Conv, gate units of an RNN
    weight (dim 0). ``axis="column"``: inputs / input channels (dim 1, kernel dims summed).
    Li et al. 2017, "Pruning Filters for Efficient ConvNets" (L1 filter norms).

    Args:
        norm: 1 or 2.
        axis: ``"row"`` or ``"column"``.

    Example:
        >>> lin = nn.Linear(4, 6)
        >>> _ = StructuredPruner(norm=2).prune(lin, 0.5)
        >>> lin.weight_mask.all(dim=1).sum().item(), lin.weight_mask.any(dim=1).sum().item()
        (3, 3)
    """

    name = "structured"

    def __init__(self, norm: int = 1, axis: str = "row", scope: str = "layer") -> None:
        if norm not in (1, 2):
            raise ValueError(f"norm must be 1 or 2, got {norm!r}")
        if axis not in ("row", "column"):
            raise ValueError(f"axis must be 'row' (neurons/channels) or 'column', got {axis!r}")
        self.norm = norm
        self.axis = axis
        super().__init__(scope)

    def spec(self) -> PatternSpec:
        return parse_pattern(self.axis)

    def score(self, param: Tensor, generator: torch.Generator) -> Tensor:
        # the pattern sums entry scores over a row: sum |w| is the L1 norm, sum w^2 the squared L2
        return param.abs() if self.norm == 1 else param.square()

    def __repr__(self) -> str:
        return f"StructuredPruner(norm={self.norm}, axis={self.axis!r})"


@_register
class BlockPruner(Pruner):
    """Keep the ``bh x bw`` blocks of largest mean ``|w|`` (of the ``(out, rest)`` view).

    Example:
        >>> lin = nn.Linear(8, 8)
        >>> _ = BlockPruner(block=(4, 4)).prune(lin, 0.5)
        >>> int(lin.weight_mask.sum())
        32
    """

    name = "block"

    def __init__(self, block: tuple[int, int] = (4, 4), scope: str = "layer") -> None:
        self.block = (int(block[0]), int(block[1]))
        parse_pattern(f"block:{self.block[0]}x{self.block[1]}")  # validates the sizes
        super().__init__(scope)

    def spec(self) -> PatternSpec:
        return parse_pattern(f"block:{self.block[0]}x{self.block[1]}")

    def score(self, param: Tensor, generator: torch.Generator) -> Tensor:
        return param.abs()

    def __repr__(self) -> str:
        return f"BlockPruner(block={self.block})"


@_register
class NMPruner(Pruner):
    """Keep the ``n`` largest ``|w|`` in every ``m`` consecutive inputs (density ``n/m``).

    Mishra et al. 2021, "Accelerating Sparse Deep Neural Networks" (2:4 sparsity). On an already
    masked weight the result is intersected with the current mask, so a group may keep fewer.

    Example:
        >>> lin = nn.Linear(8, 3)
        >>> _ = NMPruner(2, 4).prune(lin, None)
        >>> lin.weight_mask.reshape(3, 2, 4).sum(-1).tolist()
        [[2, 2], [2, 2], [2, 2]]
    """

    name = "nm"

    def __init__(self, n: int = 2, m: int = 4, scope: str = "layer") -> None:
        self.n, self.m = int(n), int(m)
        parse_pattern(f"{self.n}:{self.m}")  # validates 0 < n <= m
        super().__init__(scope)

    def spec(self) -> PatternSpec:
        return parse_pattern(f"{self.n}:{self.m}")

    def score(self, param: Tensor, generator: torch.Generator) -> Tensor:
        return param.abs()

    def __repr__(self) -> str:
        return f"NMPruner(n={self.n}, m={self.m})"


def make_pruner(name: str, **options: Any) -> Pruner:
    """A pruner from its registry name (``"magnitude"``, ``"random"``, ``"structured"``,
    ``"block"``, ``"nm"``) and its options.

    Example:
        >>> make_pruner("magnitude", scope="global")
        MagnitudePruner(scope='global')
    """
    cls = PRUNERS.get(name)
    try:
        return cls(**options)
    except TypeError as err:
        raise ValueError(f"bad options {options!r} for pruner {name!r}: {err}") from None


def prune(
    model: nn.Module,
    density: float | Mapping[str, float] | None,
    method: str = "magnitude",
    *,
    scope: str = "layer",
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    seed: int = 0,
    strict: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
    **options: Any,
) -> nn.Module:
    """Prune ``model`` in place with the pruner named ``method``; see :meth:`Pruner.prune`.

    Args:
        model: any module with Linear, Conv or RNN weights, dense or already masked.
        density: target fraction kept in (0, 1] (None for N:M).
        method: a name in :data:`PRUNERS`.
        scope: ``"layer"`` or ``"global"``.
        include, exclude, seed, strict, optimizer: as :meth:`Pruner.prune`.
        **options: the pruner's own options (``norm``, ``axis``, ``block``, ``n``, ``m``).

    Returns:
        ``model``, pruned.

    Example:
        >>> net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
        >>> _ = prune(net, 0.5)                    # magnitude, every layer to density 0.5
        >>> _ = prune(net, 0.2, scope="global")    # then 0.2 overall, within the 0.5 masks
        >>> from sprig.masks import density
        >>> round(density(net), 3)
        0.2
    """
    return make_pruner(method, scope=scope, **options).prune(
        model,
        density,
        include=include,
        exclude=exclude,
        seed=seed,
        strict=strict,
        optimizer=optimizer,
    )
