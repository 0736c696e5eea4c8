"""The mask-updater base of dynamic sparse training: methods differ only in their scores.

Every ``every`` steps until ``t_end``, each masked layer drops its ``k`` lowest-scoring active
connections and grows its ``k`` highest-scoring inactive ones (google-research/rigl's
``MaskUpdater``: ``drop_scores``/``grow_scores``). The base owns everything that is easy to get
subtly wrong, so a method is a short subclass:

* counts: ``k = floor(fraction * nnz)``, capped so that at least one connection stays and only
  connections inactive *before* the update can grow; so the dropped and grown sets never overlap
  and every layer's nonzero count is exactly unchanged (a method that redistributes, SNFS, keeps
  the total exact instead, and each layer at its planned count);
* the update fraction decays as ``fraction/2 * (1 + cos(pi t / t_end))`` (RigL), or by another
  named or user-given decay;
* regrown weights start at zero (``init="zero"``), and every tensor of the parameter's shape that
  the torch optimizer keeps for it (momentum, Adam's moments, ...) is zeroed at dropped and
  regrown entries, whatever the optimizer;
* masks change only through :func:`sprig.masks.apply_mask` (masks live on the modules);
* all new masks are computed before any is applied, so a failure changes nothing;
* under ``torch.distributed`` scores are averaged over ranks and rank 0's masks are broadcast,
  so every rank holds identical masks even with different seeds per rank.

A layer with nothing left to grow (a dense layer) or with ``k = 0`` is left as it is (no-op).

Compressed layers (``sprig.compress``, ``storage="compressed"``; :class:`CompressedLayer`) are
updated by the same counts and drop rule over their ``(nnz,)`` values; a method grows them
through :meth:`MaskUpdater.grow_positions`, which never builds a dense tensor (RigL: the dense
gradient a block of rows at a time with a running top-k, the same choice as on the masked
twin; SET: uniform draws among the inactive positions). Their kept values and per-entry
optimizer state move with the structure, grown ones start at zero.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from .._callback import Callback
from .._checks import check_int, make_generator
from .._registry import Registry
from ..masks import (
    CompressedLayer,
    compressed_weights,
    dense_gradients,
    fixed_stored_weights,
    mask_pattern,
    masked_parameters,
    warn_left_alone,
)
from ..masks import MaskedParameter as Layer
from ..masks import apply_mask as _apply_mask
from ._args import check_call, warn_late_end, warn_unswappable
from ._fanin import FANIN, fanin_per_row, swap_rows

DECAYS: Registry[Callable[[float], float]] = Registry("decay")
DECAYS.add("cosine", lambda p: 0.5 * (1.0 + math.cos(math.pi * p)))
DECAYS.add("linear", lambda p: 1.0 - p)
DECAYS.add("constant", lambda p: 1.0)

INITS: Registry[Callable[[Tensor, Tensor, torch.Generator], Tensor]] = Registry("regrowth init")


@INITS.register("zero")
def _zero_init(weight: Tensor, active: Tensor, gen: torch.Generator) -> Tensor:
    return torch.zeros_like(weight)


@INITS.register("normal")
def _normal_init(weight: Tensor, active: Tensor, gen: torch.Generator) -> Tensor:
    # the spread of the layer's surviving weights, so new connections look like old ones
    std = float(weight[active].float().std()) if int(active.sum()) > 1 else 0.0
    noise = torch.randn(weight.shape, generator=gen)
    return (noise * std).to(device=weight.device, dtype=weight.dtype)


_UNSTRUCTURED = ("unstructured", "custom", "dense")


@dataclass
class DSTConfig:
    """When and how much a mask updater changes the masks.

    Args:
        t_end: last step (exclusive) at which masks are updated.
        fraction: update fraction alpha at t = 0, in (0, 1).
        every: update every ``every`` steps (Delta T).
        start: first update step (default: ``every``; step 0 never has a gradient history).
        decay: ``"cosine"`` (RigL), ``"linear"``, ``"constant"``, or a function of t / t_end.
        init: value of regrown weights: ``"zero"`` (default) or ``"normal"``.
    """

    t_end: int
    fraction: float = 0.3
    every: int = 100
    start: int | None = None
    decay: str | Callable[[float], float] = "cosine"
    init: str = "zero"

    def __post_init__(self) -> None:
        if isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float)):
            raise TypeError(f"fraction must be a number in (0, 1), got {self.fraction!r}")
        if not 0.0 < float(self.fraction) < 1.0:
            raise ValueError(
                f"fraction must be in (0, 1) (the share of each layer's connections swapped at "
                f"an update), got {self.fraction!r}; RigL uses 0.3"
            )
        check_int(self.every, "every", 1, " (steps between updates)")
        if self.start is None:
            self.start = self.every
        check_int(self.start, "start", 0, " (the step of the first update)")
        check_int(self.t_end, "t_end", None, " (the step after which masks stop changing)")
        if self.t_end <= self.start:
            raise ValueError(
                f"t_end={self.t_end!r} is not after the first update at step {self.start}; "
                f"pass t_end > {self.start} (the RigL paper stops updates at 75% of training), "
                "or lower start/every"
            )
        if not callable(self.decay):
            DECAYS.get(self.decay)
        INITS.get(self.init)

    def decay_fn(self) -> Callable[[float], float]:
        return self.decay if callable(self.decay) else DECAYS.get(self.decay)


@dataclass(frozen=True)
class UpdateStats:
    """What one update did: the step, the fraction used, per-layer dropped and grown counts."""

    step: int
    fraction: float
    dropped: dict[str, int]
    grown: dict[str, int]

    @property
    def changed(self) -> int:
        return sum(self.dropped.values()) + sum(self.grown.values())


def _world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _top_k(scores: Tensor, eligible: Tensor, k: int) -> Tensor:
    """Bool mask of the k highest scores among ``eligible`` (ties: lower flat index first).

    O(n): a partition finds the k-th value; entries above it are in, and the tied entries at
    it are taken in index order, so the result is the same as a stable sort's, on every rank.
    NaN scores lose to every number. numpy's partition beats ``torch.topk`` with a large k,
    and RigL asks for k in the hundreds of thousands
    (``benchmarks/results/design_measurements.md``, row ``topk-partition``).
    """
    t = scores.detach().flatten().cpu()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.double()  # exact for the ints and half floats scores come in
    a = t.numpy().copy()
    a[np.isnan(a)] = -np.inf
    a[~eligible.detach().flatten().cpu().numpy()] = -np.inf
    out = np.zeros(a.size, dtype=bool)
    if k > 0:
        kth = np.partition(a, a.size - k)[a.size - k]
        out = a > kth
        need = k - int(out.sum())
        out[np.flatnonzero(a == kth)[:need]] = True
    return torch.from_numpy(out).reshape(scores.shape).to(scores.device)


def _bottom_k(scores: Tensor, eligible: Tensor, k: int) -> Tensor:
    """Bool mask of the k lowest scores among ``eligible`` (ties: lower flat index first)."""
    s = torch.nan_to_num(scores.detach().double(), nan=math.inf)
    return _top_k(-s, eligible, k)


BLOCK_ENTRIES = 1 << 22  # dense-gradient rows are scored this many entries at a time


def top_k_blocked(
    block_scores: Callable[[int, int], Tensor],
    shape: tuple[int, int],
    active: Tensor,
    k: int,
    block_entries: int = BLOCK_ENTRIES,
) -> Tensor:
    """The ``k`` highest-scoring inactive positions, scored a block of rows at a time.

    Gives exactly :func:`_top_k` over the full score matrix (ties: lower flat index first)
    while holding one block of rows and ``k`` running candidates, never ``rows x cols``.

    Args:
        block_scores: ``(start, stop) -> (stop - start, cols)`` scores of those rows.
        shape: ``(rows, cols)``.
        active: sorted flat positions that may not grow.
        k: how many to grow (at most the inactive count).

    Returns:
        sorted int64 flat positions ``(k,)``.
    """
    rows, cols = shape
    block = max(1, block_entries // max(cols, 1))
    best_s = torch.empty(0, dtype=torch.float64)
    best_i = torch.empty(0, dtype=torch.int64)
    active = active.cpu()
    for start in range(0, rows, block):
        stop = min(rows, start + block)
        lo, hi = (int(i) for i in torch.searchsorted(active, torch.tensor([start, stop]) * cols))
        eligible = torch.ones((stop - start) * cols, dtype=torch.bool)
        eligible[active[lo:hi] - start * cols] = False
        kk = min(k, (stop - start) * cols - (hi - lo))
        if kk == 0:
            continue
        scores = block_scores(start, stop).detach().cpu().flatten()
        pick = _top_k(scores, eligible, kk).nonzero().squeeze(1)
        s_all = torch.cat([best_s, torch.nan_to_num(scores[pick].double(), nan=-math.inf)])
        i_all = torch.cat([best_i, pick + start * cols])
        # the k best by (score descending, position ascending): the order _top_k keeps
        order = torch.from_numpy(np.lexsort((i_all.numpy(), -s_all.numpy()))[:k])
        best_s, best_i = s_all[order], i_all[order]
    return best_i.sort().values


def reset_optimizer_state(optimizer: torch.optim.Optimizer, param: Tensor, where: Tensor) -> None:
    """Zero every tensor of ``param``'s shape that ``optimizer`` keeps for it, at ``where``.

    Momentum buffers, Adam's ``exp_avg``/``exp_avg_sq``/``max_exp_avg_sq``, RMSprop's
    ``square_avg``... whatever the optimizer names them. Scalars (step counts) are left alone.
    """
    state = optimizer.state.get(param)
    if not state:
        return
    for value in state.values():
        if isinstance(value, Tensor) and value.shape == param.shape:
            value.masked_fill_(where.to(value.device), 0)


class MaskUpdater(Callback):
    """Base of dynamic sparse training methods: subclasses give drop and grow scores.

    Use it as a :class:`sprig.training.Callback` (``train_classifier(..., callbacks=[u])``) or
    from your own loop::

        with updater.backward_context(step):   # dense gradients on the steps that need them
            loss.backward()
        updater.after_backward(step, model, optimizer)
        optimizer.step()
        updater.after_step(step, model, optimizer)  # updates masks on update steps

    Args:
        model: a masked model (``sprig.sparsify`` or sprig's layers); its unstructured masks are
            updated in place.
        t_end, fraction, every, start, decay, init: see :class:`DSTConfig`.
        seed: seed (or generator) for random scores and inits; ranks may use different seeds.

    Subclasses override :meth:`grow_scores` (and maybe :meth:`drop_scores`, :meth:`drop_counts`,
    :meth:`grow_counts`, ``needs_dense``) and register a name in ``METHODS``.
    """

    name: ClassVar[str] = "base"
    #: grow scores read dense gradients on update steps
    needs_dense: ClassVar[bool] = False
    #: average scores over ranks (they come from rank-local gradients)
    average_scores: ClassVar[bool] = False
    #: why this method cannot update compressed layers ("" when it can: it has
    #: :meth:`grow_positions`)
    compressed_refusal: ClassVar[str] = (
        "this method scores every possible connection with a dense tensor; use RigL or SET"
    )
    #: keeps "fanin" masks' constant fan-in by swapping within rows (grow counts = drop counts)
    keeps_fanin: ClassVar[bool] = True

    def __init__(
        self,
        model: nn.Module,
        *,
        t_end: int | None = None,
        fraction: float = 0.3,
        every: int = 100,
        start: int | None = None,
        decay: str | Callable[[float], float] = "cosine",
        init: str = "zero",
        seed: int | torch.Generator | None = 0,
    ) -> None:
        if t_end is None:
            raise TypeError(
                f"{type(self).__name__} needs t_end, the step after which masks stop changing: "
                "pass t_end= (the RigL paper stops updates at 75% of training, e.g. "
                "t_end=int(0.75 * total_steps))"
            )
        self.config = DSTConfig(t_end, fraction, every, start, decay, init)
        self.model = model
        self.layers = list(masked_parameters(model))
        self.compressed = [CompressedLayer(q, m) for q, m in compressed_weights(model)]
        warn_left_alone(f"{type(self).__name__} mask updates", fixed_stored_weights(model))
        if not self.layers and not self.compressed:
            raise ValueError(
                f"{type(model).__name__} has no sprig masks to update; mask it first, e.g. "
                "sprig.sparsify(model, density=0.1, distribution='erk')"
            )
        if self.compressed and self.compressed_refusal:
            raise ValueError(
                f"{type(self).__name__} cannot update compressed layers "
                f"{[c.qualname for c in self.compressed]}: {self.compressed_refusal}"
            )
        swappable = _UNSTRUCTURED + ((FANIN,) if self.keeps_fanin else ())
        bad = {
            layer.qualname: mask_pattern(layer.module, layer.name)
            for layer in self.layers
            if mask_pattern(layer.module, layer.name) not in swappable
        }
        if bad:
            raise ValueError(
                f"{type(self).__name__} swaps single connections, but these masks are "
                f"structured: {bad}; sparsify with pattern='unstructured'"
                + (" or 'fanin' (constant fan-in)" if self.keeps_fanin else "")
            )
        self.generator = make_generator(seed)
        self._adopt_rank0_masks()
        masks = [layer.mask for layer in self.layers]
        names = [layer.qualname for layer in self.layers]
        warn_unswappable(type(self).__name__, names, masks, self.config.fraction)
        self.updates = 0
        self.last_stats: UpdateStats | None = None
        self._checked_optimizer: int | None = None

    @torch.no_grad()
    def _adopt_rank0_masks(self) -> None:
        # Ranks may start from different masks (different sparsify seeds; DDP with
        # broadcast_buffers=False does not sync buffers); from here on they all follow rank 0.
        _, world = _world()
        if world == 1:
            return
        for c in self.compressed:
            flat = c.module.active_flat().clone()
            values = c.param.detach().clone()
            torch.distributed.broadcast(flat, src=0)
            torch.distributed.broadcast(values, src=0)
            if not torch.equal(flat, c.module.active_flat()):
                c.module.rewire(flat, values, None)
            c.param.copy_(values)  # rank 0's values everywhere (rewire keeps its own kept ones)
        for layer in self.layers:
            buf = layer.mask.to(torch.uint8)
            torch.distributed.broadcast(buf, src=0)
            if not torch.equal(buf.bool(), layer.mask):
                pattern = mask_pattern(layer.module, layer.name) or "unstructured"
                _apply_mask(layer.module, layer.name, buf.bool(), pattern=pattern)

    # ---- schedule ------------------------------------------------------------------------
    def is_update_step(self, step: int) -> bool:
        c = self.config
        assert c.start is not None
        return c.start <= step < c.t_end and (step - c.start) % c.every == 0

    def fraction_at(self, step: int) -> float:
        """The update fraction at ``step``: ``fraction * decay(step / t_end)``."""
        return self.config.fraction * self.config.decay_fn()(step / self.config.t_end)

    # ---- Callback --------------------------------------------------------------------------
    def needs_dense_grad(self, step: int) -> bool:
        return self.needs_dense and self.is_update_step(step)

    def backward_context(self, step: int) -> contextlib.AbstractContextManager[Any]:
        """``dense_gradients(model)`` on steps that need them, else a no-op context."""
        if self.needs_dense_grad(step):
            return dense_gradients(self.model)
        return contextlib.nullcontext()

    def _check_model(self, model: nn.Module) -> None:
        if not any(m is self.model for m in model.modules()):  # a DDP wrapper holds it
            raise ValueError(
                f"this updater was made for another model than the {type(model).__name__} it "
                "was called with; make one updater per model"
            )

    def before_training(self, steps: int) -> None:
        warn_late_end(type(self).__name__, self.config.t_end, steps)

    def after_backward(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        check_call(self, "after_backward", step, optimizer, model)

    def after_step(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        check_call(self, "after_step", step, optimizer, model)
        self._check_model(model)
        if self.is_update_step(step):
            self.update(optimizer, step)

    # ---- what methods override ---------------------------------------------------------------
    def drop_scores(self, layer: Layer) -> Tensor:
        """Scores of ``layer``'s entries; the lowest active ones are dropped (default ``|w|``)."""
        return layer.param.detach().abs()

    def grow_scores(self, layer: Layer) -> Tensor:
        """Scores of ``layer``'s entries; the highest inactive ones grow."""
        raise NotImplementedError

    def all_layers(self) -> list[Layer | CompressedLayer]:
        """Masked layers, then compressed ones: the order of counts and of the state."""
        return [*self.layers, *self.compressed]

    def grow_positions(self, layer: CompressedLayer, active: Tensor, k: int) -> Tensor:
        """Sorted flat positions of ``k`` connections to grow in a compressed layer, chosen
        among the inactive ones (not in ``active``) without a dense tensor of scores."""
        raise NotImplementedError

    def drop_counts(self, fraction: float) -> list[int]:
        """How many connections each layer drops: ``floor(fraction * nnz)``, capped (see module).

        One count per layer, masked layers first, then compressed ones.
        """
        out = []
        for layer in self.all_layers():
            if isinstance(layer, Layer) and mask_pattern(layer.module, layer.name) == FANIN:
                out.append(layer.mask.shape[0] * fanin_per_row(layer.mask, fraction))
                continue  # k per row, every row
            nnz, free = layer.nnz, layer.numel - layer.nnz
            out.append(max(0, min(math.floor(fraction * nnz), free, nnz - 1)))
        return out

    def grow_counts(self, drops: Sequence[int]) -> list[int]:
        """How many connections each layer grows (default: as many as it dropped)."""
        return list(drops)

    # ---- the update ----------------------------------------------------------------------------
    def _check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        if self._checked_optimizer == id(optimizer):
            return
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        layers = self.all_layers()
        missing = [layer.qualname for layer in layers if id(layer.param) not in held]
        if missing:
            raise ValueError(
                f"the optimizer does not hold the masked parameters {missing}; build it from "
                "model.parameters() of the model given to the updater"
            )
        self._checked_optimizer = id(optimizer)

    def _reduce(self, scores: Tensor) -> Tensor:
        rank, world = _world()
        if world == 1 or not self.average_scores:
            return scores
        scores = scores.detach().clone()
        torch.distributed.all_reduce(scores)
        return scores / world

    @torch.no_grad()
    def update(self, optimizer: torch.optim.Optimizer, step: int) -> UpdateStats:
        """Drop and grow connections in every layer now; returns what changed.

        Raises:
            ValueError: the optimizer does not hold the masked parameters.
            RuntimeError: a method needs dense gradients that were not recorded.
        """
        check_call(self, "update", step, optimizer, takes_model=False)
        self._check_optimizer(optimizer)
        fraction = self.fraction_at(step)
        drops = self.drop_counts(fraction)
        grows = self.grow_counts(drops)
        n = len(self.layers)
        # compressed layers: every new structure is decided before anything changes
        plans = [
            self._plan_compressed(c, d, g) for c, d, g in zip(self.compressed, drops[n:], grows[n:])
        ]
        drops, grows = drops[:n], grows[:n]
        old = [layer.mask.clone() for layer in self.layers]
        for layer, m, d, g in zip(self.layers, old, drops, grows):
            nnz = int(m.sum())
            assert 0 <= d < max(nnz, 1) and 0 <= g <= m.numel() - nnz, (layer.qualname, d, g)
        assert sum(drops) == sum(grows), (drops, grows)
        # 1. decide every new mask before touching anything
        new = []
        for layer, m, d, g in zip(self.layers, old, drops, grows):
            if d == 0 and g == 0:
                new.append(m)
                continue
            drop, grow = (
                self._reduce(self.drop_scores(layer)),
                self._reduce(self.grow_scores(layer)),
            )
            if mask_pattern(layer.module, layer.name) == FANIN:
                dropped, grown = swap_rows(drop, grow, m, d // m.shape[0])
            else:
                dropped, grown = _bottom_k(drop, m, d), _top_k(grow, ~m, g)
            new.append((m & ~dropped) | grown)
        # 2. every rank adopts rank 0's masks
        rank, world = _world()
        if world > 1:
            for i, m in enumerate(new):
                buf = m.to(torch.uint8)
                torch.distributed.broadcast(buf, src=0)
                new[i] = buf.bool()
        # 3. apply masks, set regrown weights, reset optimizer state at every changed entry
        init = INITS.get(self.config.init)
        dropped_n: dict[str, int] = {}
        grown_n: dict[str, int] = {}
        for layer, m, nm in zip(self.layers, old, new):
            grown = nm & ~m
            changed = grown | (m & ~nm)
            dropped_n[layer.qualname] = int((m & ~nm).sum())
            grown_n[layer.qualname] = int(grown.sum())
            if not bool(changed.any()):
                continue
            param = layer.param
            values = init(param.detach(), m & nm, self.generator)
            if world > 1 and self.config.init != "zero":
                torch.distributed.broadcast(values, src=0)
            pattern = mask_pattern(layer.module, layer.name) or "unstructured"
            _apply_mask(layer.module, layer.name, nm, pattern=pattern)
            param[grown] = values[grown]
            reset_optimizer_state(optimizer, param, changed)
            self.on_changed(layer, dropped=m & ~nm, grown=grown)
        for c, plan in zip(self.compressed, plans):
            dropped_n[c.qualname], grown_n[c.qualname] = 0, 0
            if plan is None:
                continue
            flat, grown_flat, kept_values, n_dropped = plan
            values = torch.zeros(flat.shape, dtype=kept_values.dtype)
            if self.config.init == "normal" and grown_flat.numel():
                std = float(kept_values.float().std()) if kept_values.numel() > 1 else 0.0
                noise = torch.randn(flat.shape, generator=self.generator) * std
                if world > 1:
                    torch.distributed.broadcast(noise, src=0)
                values = noise.to(values.dtype)
            dropped_n[c.qualname], grown_n[c.qualname] = n_dropped, int(grown_flat.numel())
            c.module.rewire(flat, values, optimizer)  # kept values and state move, new start at 0
        self.updates += 1
        self.last_stats = UpdateStats(step, fraction, dropped_n, grown_n)
        return self.last_stats

    def _plan_compressed(
        self, layer: CompressedLayer, d: int, g: int
    ) -> tuple[Tensor, Tensor, Tensor, int] | None:
        """(new sorted flat positions, the grown ones, the kept values, how many were dropped)
        or None (no change)."""
        if d == 0 and g == 0:
            return None
        active = layer.module.active_flat()
        scores = self._reduce(self.drop_scores_compressed(layer))
        dropped = _bottom_k(scores, torch.ones_like(active, dtype=torch.bool), d)
        grown = self.grow_positions(layer, active, g).to(active.device)
        flat = torch.cat([active[~dropped], grown]).sort().values
        if _world()[1] > 1:  # every rank takes rank 0's structure
            torch.distributed.broadcast(flat, src=0)
            at = torch.searchsorted(active, flat).clamp_(max=active.numel() - 1)
            grown = flat[active[at] != flat]
        kept = flat.numel() - grown.numel()
        return flat, grown, layer.param.detach()[~dropped], active.numel() - kept

    def drop_scores_compressed(self, layer: CompressedLayer) -> Tensor:
        """Drop scores ``(nnz,)`` of a compressed layer's stored weights (default ``|w|``)."""
        return layer.param.detach().abs()

    def on_changed(self, layer: Layer, dropped: Tensor, grown: Tensor) -> None:
        """Called after a layer's mask changed (for methods that keep per-entry state)."""

    # ---- state -----------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Tensor]:
        """Per-method tensors to checkpoint (SNFS momentum, DeepR signs)."""
        return {}

    def load_extra_state(self, tensors: dict[str, Tensor]) -> None:
        """Restore what :meth:`extra_state` gave."""

    def state_dict(self) -> dict[str, Any]:
        """The updater's state: JSON-able values plus ``"tensors"`` (a dict of tensors).

        Masks are not in it (they are buffers of the model's own ``state_dict``). To resume,
        restore the model, the optimizer and this, in any order.
        """
        tensors = {"generator": self.generator.get_state()}
        tensors.update(
            {f"extra.{k}": v.detach().cpu().clone() for k, v in self.extra_state().items()}
        )
        return {
            "method": self.name,
            "version": 1,
            "updates": self.updates,
            "layers": [layer.qualname for layer in self.all_layers()],
            "tensors": tensors,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; fails (changing nothing) if it is for another setup."""
        if state.get("method") != self.name:
            raise ValueError(
                f"state is for method {state.get('method')!r}, this updater is {self.name!r}"
            )
        layers = [layer.qualname for layer in self.all_layers()]
        if list(state.get("layers", [])) != layers:
            raise ValueError(f"state is for layers {state.get('layers')}, this model has {layers}")
        tensors = state["tensors"]
        torch.Generator().set_state(tensors["generator"].clone())  # fails here if malformed
        extra = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
        self.load_extra_state(extra)
        self.generator.set_state(tensors["generator"].clone())
        self.updates = int(state["updates"])

    def iter_layers(self) -> Iterator[Layer]:
        return iter(self.layers)
