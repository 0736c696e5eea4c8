"""One-shot pruning with calibration data: Wanda and SparseGPT, uniform or OWL layer densities.

* **Wanda** (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language
  Models") scores ``|W_ij| * ||X_j||`` (weight times the norm of its input over the calibration
  tokens) and keeps the best within each output row (or N of every M inputs). No weight update.
* **SparseGPT** (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately
  Pruned in One-Shot") solves the layer-wise reconstruction ``min ||X W^T - X W'^T||`` column
  by column: with ``H = X^T X`` (dampened by ``damp * mean(diag H)``), each pruned weight's error
  is spread over the not-yet-visited columns through the upper Cholesky factor of ``H^-1``;
  the mask is chosen per block of ``block_size`` columns from ``w^2 / [H^-1]_jj^2`` (adaptive
  mask selection) and the updates to later blocks are applied lazily, once per block. This is
  the paper's Algorithm 1 (IST-DASLab/sparsegpt ``fasterprune``), with exact nonzero counts.
* **OWL** (Yin et al. 2023, "Outlier Weighed Layerwise Sparsity") gives layers with more
  outliers (Wanda scores above ``owl_m`` times the layer mean) a higher density: densities are
  spread over ``[d - lambda, d + lambda]`` by outlier ratio, then shifted so the overall
  density is exactly ``d``. The paper does this per transformer block; sprig, knowing no
  blocks, per weight tensor.

Layers are pruned one at a time in module order, each on inputs that have passed through the
already-pruned layers before it (the model runs once per layer, so only one layer's statistics,
one Hessian for SparseGPT, are held at a time). Only linear layers (``nn.Linear``, Hugging Face
``Conv1D``) are pruned; other weights are named in a :class:`~sprig.masks.LeftAloneWarning`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_density, check_int
from ..masks import (
    PatternSpec,
    apply_mask,
    check_transposed_layout,
    get_mask,
    is_transposed_linear,
    left_alone,
    make_mask,
    mask_pattern,
    parse_pattern,
    remove_mask,
    warn_left_alone,
)
from ._calibration import Batch, calibration_batches, check_finite_scale, gather_inputs
from ._pruners import Pruner, _register, _Target, _targets
from ._sparsegpt import sparsegpt

LAYER_DENSITIES = ("uniform", "owl")


@dataclass(frozen=True)
class _Linear:
    """A linear layer's weight seen as ``(out, in)``, whatever its storage."""

    target: _Target
    transposed: bool  # stored (in, out): Hugging Face Conv1D

    @property
    def qual(self) -> str:
        return self.target.qualname

    def weight(self) -> Tensor:
        w = self.target.param.detach()
        return (w.t() if self.transposed else w).float().clone()  # (out, in)

    def alive(self) -> Tensor:
        a = self.target.alive.to(self.target.param.device)
        return a.t() if self.transposed else a  # (out, in)

    def write(self, weight: Tensor, keep: Tensor, label: str) -> None:
        t = self.target
        if self.transposed:
            weight, keep = weight.t(), keep.t()
        with torch.no_grad():
            t.param.copy_(weight.to(t.param.dtype))
        apply_mask(t.module, t.name, keep.contiguous(), pattern=label)


class CalibratedPruner(Pruner):
    """Base of pruners that score weights by their inputs on calibration data.

    Args:
        calibration: a tensor of model inputs or an iterable of batches (a batch: a tensor, a
            tuple of positional inputs, or a dict of keyword inputs).
        pattern: ``"unstructured"`` or N:M (``"2:4"``; groups run along the inputs).
        layer_density: ``"uniform"`` (every layer at the density) or ``"owl"``.
        owl_lambda: OWL's spread of layer densities around the target (0.08 in the paper).
        owl_m: OWL's outlier threshold, in multiples of a layer's mean score (5 in the paper).
        scope: ``"layer"`` only (the densities are per layer).
    """

    name = "calibrated"

    def __init__(
        self,
        calibration: Any = None,
        pattern: str = "unstructured",
        layer_density: str = "uniform",
        owl_lambda: float = 0.08,
        owl_m: float = 5.0,
        scope: str = "layer",
    ) -> None:
        spec = parse_pattern(pattern)
        if spec.name not in ("unstructured", "nm"):
            raise ValueError(
                f"{self.name} prunes 'unstructured' or N:M patterns (e.g. '2:4'), got {pattern!r}"
            )
        if layer_density not in LAYER_DENSITIES:
            raise ValueError(
                f"layer_density must be one of {LAYER_DENSITIES}, got {layer_density!r}"
            )
        if layer_density == "owl" and spec.name == "nm":
            raise ValueError(
                f"OWL varies the density per layer, but {spec} fixes it; use layer_density="
                "'uniform' with N:M patterns"
            )
        if not (0.0 <= owl_lambda < 0.5 and math.isfinite(owl_m) and owl_m > 0):
            raise ValueError(
                f"need 0 <= owl_lambda < 0.5 and owl_m > 0, got {owl_lambda!r} and {owl_m!r} "
                "(the paper uses 0.08 and 5)"
            )
        if scope != "layer":
            raise ValueError(f"{self.name} prunes layer by layer: use scope='layer', got {scope!r}")
        self.pattern_spec = spec
        self.calibration = calibration
        self.layer_density = layer_density
        self.owl_lambda, self.owl_m = float(owl_lambda), float(owl_m)
        self._calls: dict[str, int] = {}  # forward calls per layer, from prune's dense pass
        super().__init__(scope)

    def spec(self) -> PatternSpec:
        return self.pattern_spec

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(pattern={str(self.pattern_spec)!r}, "
            f"layer_density={self.layer_density!r})"
        )

    def masks(self, model: nn.Module, density: Any, **kwargs: Any) -> dict[str, Tensor]:
        raise TypeError(
            f"{self.name} prunes layer by layer on the inputs of the already-pruned layers (and "
            "may update weights), so it has no masks to return before pruning; call prune()"
        )

    def _once(self, layer: _Linear, batches: Sequence[Batch]) -> bool:
        """Whether the layer runs once per forward, so a forward may stop right after it."""
        return self._calls.get(layer.qual) == len(batches)

    # -- what subclasses define ------------------------------------------------------------
    def statistics(self, model: nn.Module, batches: Sequence[Batch], layer: _Linear) -> Tensor:
        """The layer's input statistics (Wanda: squared norms; SparseGPT: the Hessian)."""
        raise NotImplementedError

    def prune_layer(
        self, weight: Tensor, alive: Tensor, stats: Tensor, density: float
    ) -> tuple[Tensor, Tensor]:
        """``(new weight, keep mask)`` for an ``(out, in)`` weight."""
        raise NotImplementedError

    # -- the shared procedure ----------------------------------------------------------------
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
        """Prune ``model``'s linear layers in place to ``density`` on the calibration data.

        Args:
            model: any module; its ``nn.Linear`` and Hugging Face ``Conv1D`` weights are pruned.
            density: fraction kept in (0, 1] per layer (the mean for OWL), or
                ``{qualified name: density}``; None for N:M.
            include, exclude: shell patterns of weight/module names, as :meth:`Pruner.prune`.
            seed: unused (one-shot pruning is deterministic); kept for the common signature.
            strict: raise when a target is above a layer's current density (else skip it).
            optimizer: unused (the common signature): one-shot pruning works on dense and
                masked layers, whose optimizer state needs no change.

        Returns:
            ``model``, pruned. If anything fails, the model is left as it was.
        """
        batches = calibration_batches(self.calibration, self.name)
        targets = _targets(model, include, exclude)
        layers: list[_Linear] = []
        skipped: list[tuple[str, str]] = []
        for t in targets:
            if t.name == "weight" and is_transposed_linear(t.module):
                check_transposed_layout(t.module)
                layers.append(_Linear(t, transposed=True))
            elif t.name == "weight" and isinstance(t.module, nn.Linear):
                layers.append(_Linear(t, transposed=False))
            else:
                skipped.append(
                    (t.qualname, f"{self.name} prunes Linear and Conv1D weights, not "
                     f"{type(t.module).__name__}'s (its inputs are not a hook's first argument)")
                )  # fmt: skip
        # a dense pass first: every batch must run and every layer must be reached before
        # anything changes; its input norms also feed OWL
        self._calls = {}
        norms = _input_sq_norms(model, batches, layers, calls=self._calls)
        for layer in list(layers):
            if norms[layer.qual] is None:
                layers.remove(layer)
                skipped.append((layer.qual, "its forward never ran on the calibration data"))
        per = self._densities(layers, density, norms)
        checked = [(layer, per[layer.qual]) for layer in layers if layer.qual in per]
        todo = [(layer, d) for layer, d in checked if self._check(layer, d, strict)]

        undo: list[tuple[_Linear, Tensor, Tensor | None, str | None]] = []
        label = str(self.pattern_spec)
        try:
            for layer, d in todo:
                t = layer.target
                stats = self.statistics(model, batches, layer)
                weight, keep = self.prune_layer(layer.weight(), layer.alive(), stats, d)
                old_mask = get_mask(t.module, t.name)
                undo.append(
                    (
                        layer,
                        t.param.detach().clone(),
                        None if old_mask is None else old_mask.clone(),
                        mask_pattern(t.module, t.name),
                    )
                )
                layer.write(weight, keep, label)
        except BaseException:
            for layer, w, mask, pattern in reversed(undo):  # nothing half-changed
                t = layer.target
                with torch.no_grad():
                    t.param.copy_(w)
                if mask is None:
                    remove_mask(t.module, t.name)
                else:
                    apply_mask(t.module, t.name, mask, pattern=pattern or "custom")
            raise
        if include is None:
            skipped += [(q, why) for q, _, _, why in left_alone(model, exclude)]
        warn_left_alone(f"{self.name} pruning", skipped)
        return model

    def _densities(
        self,
        layers: list[_Linear],
        density: float | Mapping[str, float] | None,
        norms: Mapping[str, Tensor | None],
    ) -> dict[str, float]:
        fixed = self.pattern_spec.fixed_density
        if isinstance(density, Mapping):
            if self.layer_density == "owl":
                raise ValueError("OWL sets the layer densities itself; pass one float density")
            names = {layer.qual for layer in layers}
            unknown = sorted(set(density) - names)
            if unknown:
                raise ValueError(
                    f"no prunable linear weights named {unknown}; they are: {sorted(names)}"
                )
            return {q: check_density(d, f"density of {q}") for q, d in density.items()}
        if fixed is not None:
            if density is not None and abs(check_density(density) - fixed) > 1e-9:
                raise ValueError(
                    f"pattern {self.pattern_spec} fixes density at {fixed:g}, but "
                    f"density={density!r} was given; pass density=None"
                )
            return {layer.qual: fixed for layer in layers}
        if density is None:
            raise ValueError(f"{self.name} pruning needs a density in (0, 1], e.g. 0.5")
        d = check_density(density)
        if self.layer_density == "uniform" or len(layers) < 2:
            return {layer.qual: d for layer in layers}
        return self._owl(layers, d, norms)

    def _owl(
        self, layers: list[_Linear], density: float, norms: Mapping[str, Tensor | None]
    ) -> dict[str, float]:
        ratios, sizes = [], []
        for layer in layers:
            sq = norms[layer.qual]
            assert sq is not None
            score = layer.weight().abs() * sq.sqrt()[None, :]  # Wanda's score, dense model
            ratios.append(float((score > self.owl_m * score.mean()).float().mean()))
            sizes.append(score.numel())
        r = torch.tensor(ratios, dtype=torch.float64)
        n = torch.tensor(sizes, dtype=torch.float64)
        spread = r.max() - r.min()
        shift = (r - r.min()) / spread * 2 * self.owl_lambda if spread > 0 else torch.zeros_like(r)
        # centred on the size-weighted mean, so the overall density is the target exactly
        dens = shift - (shift * n).sum() / n.sum() + density
        out = {}
        for layer, d in zip(layers, dens.tolist()):
            if not 0.0 < d <= 1.0:
                raise ValueError(
                    f"OWL gives {layer.qual} density {d:.4g}, outside (0, 1]; lower owl_lambda "
                    f"({self.owl_lambda:g}) or move the density ({density:g}) away from 0 and 1"
                )
            out[layer.qual] = d
        return out

    def _check(self, layer: _Linear, density: float, strict: bool) -> bool:
        """Validate one layer's target before any change; False: leave this layer alone."""
        alive = layer.target.alive
        numel, kept = alive.numel(), int(alive.sum())
        n_in = alive.shape[0] if layer.transposed else alive.shape[1]
        if self.pattern_spec.name == "nm":
            m = self.pattern_spec.params["m"]
            if n_in % m:
                raise ValueError(
                    f"{layer.qual}: N:M pattern {self.pattern_spec} needs the input dimension to "
                    f"be a multiple of {m}, but it has {n_in} inputs; exclude it or choose M "
                    f"dividing {n_in}"
                )
            return True
        if round(density * n_in) < 1:
            raise ValueError(
                f"density {density:.4g} leaves {layer.qual} empty: it keeps round(density * "
                f"{n_in}) = 0 of the {n_in} inputs of each output; use a density of at least "
                f"{0.5 / n_in:.4g} (or exclude the layer)"
            )
        if round(density * numel) > kept:
            if strict:
                raise ValueError(
                    f"target density {density:g} is above the current density "
                    f"{kept / numel:.6g} of {layer.qual}; a pruner only removes weights: choose "
                    "a density at or below the current one (or strict=False to skip such layers)"
                )
            return False
        return True


def _input_sq_norms(
    model: nn.Module,
    batches: Sequence[Batch],
    layers: list[_Linear],
    stop_early: bool = False,
    calls: dict[str, int] | None = None,
) -> dict[str, Tensor | None]:
    """Per layer, the sum over calibration tokens of each input's square (None: never ran);
    ``calls`` (if given) receives each layer's number of forward calls."""
    sums: dict[str, Tensor] = {}

    def sink(name: str, x: Tensor) -> None:
        s = x.square().sum(dim=0)
        sums[name] = s if name not in sums else sums[name] + s

    modules = {layer.qual: layer.target.module for layer in layers}
    seen = gather_inputs(model, batches, modules, sink, stop_early=stop_early)
    for name, s in sums.items():
        check_finite_scale(s, f"the input norms of {name}")
    if calls is not None:
        calls.update(seen.calls)
    return {q: sums[q] if seen.rows[q] else None for q in modules}


@_register
class WandaPruner(CalibratedPruner):
    """Wanda: keep the weights of largest ``|W_ij| * ||X_j||`` within each output (no update).

    Sun, Liu, Bair & Kolter 2023, "A Simple and Effective Pruning Approach for Large Language
    Models". Arguments as :class:`CalibratedPruner`.

    Example:
        >>> torch.manual_seed(0) is not None
        True
        >>> net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
        >>> _ = WandaPruner(calibration=torch.randn(64, 16)).prune(net, 0.25)
        >>> net[0].weight_mask.sum(dim=1).unique().tolist()   # 4 of 16 inputs in every row
        [4]
    """

    name = "wanda"

    def statistics(self, model: nn.Module, batches: Sequence[Batch], layer: _Linear) -> Tensor:
        norms = _input_sq_norms(model, batches, [layer], self._once(layer, batches))[layer.qual]
        assert norms is not None  # the dense pass saw it run
        return norms

    def prune_layer(
        self, weight: Tensor, alive: Tensor, stats: Tensor, density: float
    ) -> tuple[Tensor, Tensor]:
        score = weight.abs() * stats.sqrt()[None, :]  # (out, in)
        score = score.masked_fill(~alive, -math.inf)  # never revive a pruned weight
        spec = self.pattern_spec
        if spec.name == "nm":
            keep = make_mask(tuple(weight.shape), None, spec, scores=score).to(alive.device)
        else:
            k = round(density * weight.shape[1])
            order = torch.sort(score, dim=1, descending=True, stable=True).indices[:, :k]
            keep = torch.zeros_like(alive).scatter_(1, order, True)
        keep &= alive
        return weight * keep, keep


@_register
class SparseGPTPruner(CalibratedPruner):
    """SparseGPT: prune with the paper's second-order weight update (Frantar & Alistarh 2023).

    Args:
        damp: dampening added to the Hessian's diagonal, as a fraction of its mean (0.01).
        block_size: columns per lazy-update block and per adaptive-mask block (128).
        others: as :class:`CalibratedPruner`.

    Example:
        >>> torch.manual_seed(0) is not None
        True
        >>> net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
        >>> _ = SparseGPTPruner(calibration=torch.randn(64, 16), pattern="2:4").prune(net, None)
        >>> net[0].weight_mask.reshape(32, 4, 4).sum(-1).unique().tolist()
        [2]
    """

    name = "sparsegpt"

    def __init__(
        self,
        calibration: Any = None,
        pattern: str = "unstructured",
        layer_density: str = "uniform",
        owl_lambda: float = 0.08,
        owl_m: float = 5.0,
        damp: float = 0.01,
        block_size: int = 128,
        scope: str = "layer",
    ) -> None:
        if not (math.isfinite(damp) and damp > 0):
            raise ValueError(f"damp must be > 0 (0.01 in the paper), got {damp!r}")
        check_int(block_size, "block_size", 1, " (128 in the paper)")
        super().__init__(calibration, pattern, layer_density, owl_lambda, owl_m, scope)
        self.damp = float(damp)
        m = self.pattern_spec.params.get("m", 1)
        self.block_size = -(-block_size // m) * m  # whole N:M groups in every block

    def statistics(self, model: nn.Module, batches: Sequence[Batch], layer: _Linear) -> Tensor:
        n_in = layer.alive().shape[1]
        hessian = torch.zeros(n_in, n_in, dtype=torch.float64, device=layer.target.param.device)

        def sink(name: str, x: Tensor) -> None:
            xd = x.double()
            hessian.addmm_(xd.t(), xd)

        seen = gather_inputs(
            model, batches, {layer.qual: layer.target.module}, sink, self._once(layer, batches)
        )
        # the paper's scale, 2/N X^T X: the update does not depend on it, but the unit
        # diagonal given to dead inputs is relative to it
        hessian *= 2.0 / max(seen.rows[layer.qual], 1)
        check_finite_scale(hessian, f"the Hessian of {layer.qual}")
        return hessian

    def prune_layer(
        self, weight: Tensor, alive: Tensor, stats: Tensor, density: float
    ) -> tuple[Tensor, Tensor]:
        return sparsegpt(
            weight, stats, alive, density, self.pattern_spec, self.damp, self.block_size
        )
