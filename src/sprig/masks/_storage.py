"""Compressed weights: layers that store only their nonzeros, as the rest of sprig sees them.

A masked layer keeps a dense weight and a bool mask; a compressed layer (``sprig.compress``,
``storage="compressed"``) keeps the nonzero values as its trainable parameter and their
positions in index buffers, and no tensor of the dense shape ever exists. Code that changes
which weights exist (mask updaters, pruners) or reads dense gradients (RigL) talks to such a
layer through this protocol, so it never imports the layer's module.

Positions are *flat* indices into the row-major dense weight, sorted, so the order of a
layer's values is the order of ``mask.nonzero()`` on its masked twin: scores and tie-breaks
computed on either agree entry for entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn


class StoredWeight(NamedTuple):
    """One weight a layer keeps in another form than a dense tensor (CSR buffers)."""

    name: str  # as on the masked twin: "weight", "weight_hh_l0"
    shape: tuple[int, ...]  # the dense shape it stands for: (out, in), (out, in, kh, kw)
    nnz: int
    pattern: str


@runtime_checkable
class StoresWeights(Protocol):
    """A layer that keeps its weights in another form describes them (``sprig.summary``,
    ``sprig.density``, file checks). Compressed torch modules and sprig's Keras layers do."""

    def stored_weights(self) -> list[StoredWeight]:
        """``[(name, shape, nnz, pattern)]``, one per weight it stores."""
        ...


@runtime_checkable
class CompressedWeight(StoresWeights, Protocol):
    """What a module that stores only its one weight's nonzeros offers to updaters and pruners."""

    def weight_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the 2-D view its flat positions index: ``(out, in)`` for a
        linear layer, ``(out, in * kh * kw)`` for a convolution (a row-major flat position
        is the same in the convolution's ``(out, in, kh, kw)``)."""
        ...

    def nonzero_values(self) -> nn.Parameter:
        """The stored weights ``(nnz,)``, in the order of :meth:`active_flat`."""
        ...

    def active_flat(self) -> Tensor:
        """Sorted int64 flat positions ``(nnz,)`` of the stored weights."""
        ...

    def set_dense_capture(self, on: bool) -> None:
        """Record what the dense gradient needs on the following backward passes (or stop)."""
        ...

    def dense_grad_rows(self, start: int, stop: int) -> Tensor | None:
        """Rows ``start:stop`` of the dense weight gradient of the recorded passes, or None."""
        ...

    def resize_nonzeros(self, nnz: int) -> None:
        """Make room for ``nnz`` stored weights (contents undefined until loaded: a file saved
        after pruning or rewiring holds another count than the config built)."""
        ...

    def rewire(self, flat: Tensor, values: Tensor, optimizer: torch.optim.Optimizer | None) -> None:
        """Store ``values`` at the sorted flat positions ``flat``.

        Positions kept from before carry their optimizer state (every per-entry tensor the
        optimizer holds for the values) to their new place; new positions start with zero
        state.
        """
        ...


@dataclass(frozen=True)
class CompressedLayer:
    """One compressed layer as an updater or pruner sees it: values ``(nnz,)`` at sorted flat
    positions. No tensor of the weight's dense shape is ever made for it (the compressed
    counterpart of :class:`~sprig.masks.MaskedParameter`)."""

    qualname: str
    module: CompressedWeight

    @property
    def param(self) -> nn.Parameter:
        return self.module.nonzero_values()

    @property
    def nnz(self) -> int:
        return self.param.numel()

    @property
    def numel(self) -> int:
        rows, cols = self.module.weight_shape()
        return rows * cols


def compressed_weights(model: nn.Module) -> list[tuple[str, CompressedWeight]]:
    """``(qualified name of the weight, module)`` for every compressed layer, in module order.

    The name is the weight's as on the masked twin (``"layers.0.weight"``), so updater state
    and logs read the same for both storages.
    """
    return [
        (f"{name}.weight" if name else "weight", m)
        for name, m in model.named_modules()
        if isinstance(m, CompressedWeight)
    ]


def fixed_stored_weights(model: nn.Module) -> list[tuple[str, str]]:
    """``(qualified name, why)`` of every weight a compressed module stores whose connections
    cannot move (it offers no :class:`CompressedWeight`: compressed RNNs), for
    the ``LeftAloneWarning`` of pruning and mask updates."""
    return [
        (
            f"{name}.{w.name}" if name else w.name,
            f"{type(m).__name__} keeps its connections fixed (its values still train); "
            "sprig.decompress the model to prune or rewire it",
        )
        for name, m in model.named_modules()
        if isinstance(m, StoresWeights) and not isinstance(m, CompressedWeight)
        for w in m.stored_weights()
    ]


_EXACT_MAX = 1 << 24  # below this many positions, sample from the explicit complement


def sample_positions(
    numel: int, k: int, generator: torch.Generator, exclude: Tensor | None = None
) -> Tensor:
    """``k`` distinct flat positions in ``[0, numel)`` outside ``exclude``, uniformly: sorted int64.

    Memory is O(k + len(exclude)) for large ``numel`` (rejection sampling of unique draws, then
    a uniform k-subset of them), so a layer of 65536 x 65536 never holds a dense tensor.

    Args:
        numel: number of positions (``out * in``).
        k: how many to draw.
        generator: CPU generator (the draws are reproducible from it).
        exclude: sorted int64 positions that may not be drawn (the active ones).
    """
    ex = torch.empty(0, dtype=torch.int64) if exclude is None else exclude.cpu().long()
    free = numel - ex.numel()
    if not 0 <= k <= free:
        raise ValueError(f"cannot draw {k} positions out of {free} free ones (of {numel})")
    if k == 0:
        return torch.empty(0, dtype=torch.int64)
    if numel <= _EXACT_MAX:
        taken = torch.zeros(numel, dtype=torch.bool)
        taken[ex] = True
        pool = (~taken).nonzero().squeeze(1)
        pick = pool[torch.randperm(pool.numel(), generator=generator)[:k]]
        return pick.sort().values
    found = torch.empty(0, dtype=torch.int64)
    while found.numel() < k:
        need = k - found.numel()
        draws = torch.randint(0, numel, (int(need * numel / free * 1.1) + 16,), generator=generator)
        cand = torch.unique(torch.cat([found, draws]))
        if ex.numel():
            at = torch.searchsorted(ex, cand).clamp_(max=ex.numel() - 1)
            cand = cand[ex[at] != cand]
        found = cand
    pick = found[torch.randperm(found.numel(), generator=generator)[:k]]
    return pick.sort().values
