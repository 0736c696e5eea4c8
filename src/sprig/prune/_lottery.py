"""Lottery-ticket mechanics: rewinding a network and the masks of iterative magnitude pruning.

Frankle & Carbin 2019, "The Lottery Ticket Hypothesis"; rewinding to iteration k from Frankle
et al. 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis" (OpenLTH's recipe).

This module holds the pieces that act on one model and its masks: the next round's masks
(:func:`imp_masks`), the random-mask control (:func:`random_masks_like`) and the rewind itself
(:func:`rewind`). The experiment that trains ticket and controls round after round, with data
and a training loop, lives in the outer ring: :func:`sprig.runs.find_tickets`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .._checks import make_generator, sub_seed
from ..masks import MASK_SUFFIX, apply_mask, get_mask, sparsifiable_parameters
from ._pruners import MagnitudePruner


def check_reinit(model: nn.Module) -> None:
    """Raise unless every parameter is owned by a module with ``reset_parameters``.

    The re-init control (:func:`rewind` with ``reinit_seed``) needs it; checking before
    training starts names the module instead of failing rounds later.

    Raises:
        ValueError: naming the first module whose parameters cannot be re-initialised.
    """
    for name, module in model.named_modules():
        own = [n for n, _ in module.named_parameters(recurse=False)]
        if own and not callable(getattr(module, "reset_parameters", None)):
            raise ValueError(
                f"cannot re-initialise {name or 'the model'} ({type(module).__name__}, parameters "
                f"{own}): it has no reset_parameters(); add one, or drop the 'reinit' control"
            )


def _reinit(model: nn.Module, seed: int) -> None:
    """Fresh default initialisation of every layer, drawn from ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()


def _current_masks(model: nn.Module) -> dict[str, Tensor]:
    out = {}
    for qual, module, name in sparsifiable_parameters(model):
        mask = get_mask(module, name)
        if mask is not None:
            out[qual] = mask.detach().clone()
    return out


def imp_masks(model: nn.Module, density: float, scope: str = "global") -> dict[str, Tensor]:
    """One round of iterative magnitude pruning: masks at ``density`` within the current ones.

    Args:
        model: the trained network; its weights are ranked by magnitude inside its masks, so a
            pruned weight is never revived.
        density: target density of the new masks, in (0, 1].
        scope: ``"global"`` (one ranking over all layers) or ``"layer"``.

    Returns:
        qualified weight name -> bool mask (the weight's shape), for every masked or prunable
        weight; the model itself is left unchanged.
    """
    new = MagnitudePruner(scope=scope).masks(model, density)
    return {**_current_masks(model), **new}


def random_masks_like(masks: Mapping[str, Tensor], seed: int) -> dict[str, Tensor]:
    """Random masks with exactly the per-layer counts of ``masks`` (the random-mask control).

    Args:
        masks: qualified weight name -> bool mask.
        seed: draws every layer's mask from ``sub_seed(seed, name)``.

    Returns:
        qualified weight name -> bool mask of the same shape and number of ``True``.
    """
    out = {}
    for qual, mask in masks.items():
        scores = torch.rand(mask.shape, generator=make_generator(sub_seed(seed, qual)))
        keep = torch.zeros(mask.numel(), dtype=torch.bool)
        keep[torch.argsort(scores.flatten(), descending=True)[: int(mask.sum())]] = True
        out[qual] = keep.reshape(mask.shape)
    return out


def rewind(
    model: nn.Module,
    state: Mapping[str, Tensor],
    masks: Mapping[str, Tensor],
    *,
    reinit_seed: int | None = None,
) -> nn.Module:
    """A copy of ``model`` with the weights (and buffers) in ``state`` and ``masks`` applied.

    Args:
        model: the architecture to copy (its own weights and masks are replaced).
        state: a ``state_dict`` to rewind to (initial weights, or those at iteration k).
        masks: qualified weight name -> bool mask (shape of that weight); others stay dense.
        reinit_seed: instead of ``state``, re-initialise every layer from this seed (the
            random re-init control).

    Returns:
        the new model; its surviving weights equal ``state``'s, pruned ones are zero.

    Example:
        >>> lin = nn.Linear(4, 2)
        >>> init = {k: v.clone() for k, v in lin.state_dict().items()}
        >>> net = rewind(lin, init, {"weight": torch.eye(2, 4, dtype=torch.bool)})
        >>> bool(net.weight[0, 0] == init["weight"][0, 0]), int(net.weight.count_nonzero())
        (True, 2)
    """
    net = copy.deepcopy(model)
    # parameters and buffers (BatchNorm's running statistics belong to the rewound network
    # too, as in OpenLTH); masks come from ``masks`` below
    tensors = {**dict(net.named_buffers()), **dict(net.named_parameters())}
    if reinit_seed is not None:
        _reinit(net, reinit_seed)
    else:
        with torch.no_grad():
            for name, value in state.items():
                if name in tensors and not name.endswith(MASK_SUFFIX):
                    tensors[name].copy_(value)
    known = {q: (module, name) for q, module, name in sparsifiable_parameters(net)}
    for qual, mask in masks.items():
        if qual not in known:
            raise ValueError(f"no prunable weight {qual!r} in {type(model).__name__}")
        apply_mask(*known[qual], mask, pattern="unstructured")
    return net


__all__ = ["check_reinit", "imp_masks", "random_masks_like", "rewind"]
