"""The one mask mechanism: every sparse weight in sprig is masked through this module.

A mask is a boolean buffer ``<name>_mask`` registered on the module that owns the parameter
``<name>``. The parameter itself stays a plain ``nn.Parameter`` (same object, so optimizers
built before masking keep working, and torch's fused RNN kernels still see their flat weights)
and holds exact zeros at pruned positions. Four guarantees keep it that way:

* applying a mask zeroes the pruned entries in place;
* a post-accumulate-grad hook on the parameter zeroes their gradient after every backward;
* a global optimizer step post-hook re-zeroes them after every ``optimizer.step()``, whatever the
  optimizer (momentum state left over from before masking, exotic update rules);
* a ``load_state_dict`` post-hook re-zeroes them after loading weights.

Why not a parametrization (``weight = weight_orig * mask`` in every forward)? It costs a
large fraction of a dense step and it breaks ``nn.LSTM``'s flattened weights. The hooks here
multiply by a cached float copy of the mask (one streaming pass) instead of a slower bool
``masked_fill_`` (``benchmarks/results/design_measurements.md``, rows ``mask-parametrization``
and ``mask-multiply``).

Deep copies: tensor hooks do not survive ``copy.deepcopy`` of a parameter, so a forward pre-hook
(:class:`_MaskGuard`) re-attaches them on the first forward of a copy. Masks, being buffers,
travel with ``state_dict``, ``.to()`` and ``deepcopy`` on their own.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from .._tensor_key import TensorKey
from ._storage import compressed_weights

MASK_SUFFIX = "_mask"
_GUARD_ATTR = "_sprig_mask_guard"
_PARAM_ATTR = "_sprig_grad_mask"


class _GradMask:
    """Zeroes the pruned entries of one parameter's gradient (and, after a step, its value)."""

    def __init__(self, module: nn.Module, name: str) -> None:
        self.module_ref = weakref.ref(module)
        self.name = name
        self.active = True

    def multiplier(self, like: Tensor) -> Tensor | None:
        module = self.module_ref()
        if not self.active or module is None:
            return None
        guard = _guard(module)
        if guard is None or self.name not in guard.patterns:
            return None
        return guard.multiplier(module, self.name, like)

    def capture(self, grad: Tensor) -> None:
        """Tensor hook: this backward's gradient, before it is added to ``param.grad``.

        Inside :func:`dense_gradients` it is summed into the dense gradient (RigL and friends
        score pruned entries by it). Reading ``param.grad`` instead would be wrong with two
        backward passes: its pruned entries were zeroed after the first, so they would hold
        the last pass's gradient only while the kept ones hold the sum.
        """
        module = self.module_ref()
        guard = None if module is None or not self.active else _guard(module)
        if guard is None or self.name not in guard.patterns:
            return
        if not guard.capture_dense:
            # a backward outside the block: the recorded dense gradient is no longer this
            # parameter's latest, and a mask update must not use it (it raises instead)
            guard.dense_grads.pop(self.name, None)
            return
        seen = guard.dense_grads.get(self.name)
        g = grad.detach()
        guard.dense_grads[self.name] = g.clone() if seen is None else seen + g

    def __call__(self, param: Tensor) -> None:
        # post-accumulate-grad hook: param.grad is complete here.
        if param.grad is None:
            return
        mult = self.multiplier(param.grad)
        if mult is None:
            return
        param.grad.mul_(mult)

    def rezero(self, param: Tensor) -> None:
        mult = self.multiplier(param)
        if mult is not None:
            with torch.no_grad():
                param.mul_(mult)


class _MaskGuard:
    """Per-module mask bookkeeping, registered as the module's forward pre-hook.

    Holds which parameters are masked (with the pattern that made each mask), the float
    multipliers derived from the bool masks, and which parameter objects carry a gradient hook.
    """

    def __init__(self) -> None:
        self.patterns: dict[str, str] = {}
        self._hooks: dict[str, _GradMask] = {}
        self._hooked: dict[str, weakref.ref[Tensor]] = {}
        self._mult: dict[str, tuple[TensorKey, Tensor]] = {}
        self.capture_dense = False
        self.dense_grads: dict[str, Tensor] = {}

    # forward pre-hook
    def __call__(self, module: nn.Module, args: Any) -> None:
        self.ensure_hooks(module)

    def ensure_hooks(self, module: nn.Module) -> None:
        for name in self.patterns:
            param = module._parameters[name]
            assert param is not None
            ref = self._hooked.get(name)
            if ref is not None and ref() is param:
                continue
            hook = _GradMask(module, name)
            param.register_hook(hook.capture)
            param.register_post_accumulate_grad_hook(hook)
            setattr(param, _PARAM_ATTR, hook)
            old = self._hooks.get(name)
            if old is not None:
                old.active = False
            self._hooks[name] = hook
            self._hooked[name] = weakref.ref(param)

    def multiplier(self, module: nn.Module, name: str, like: Tensor) -> Tensor:
        mask = module._buffers[name + MASK_SUFFIX]
        assert mask is not None
        cached = self._mult.get(name)
        if cached is not None:
            key, mult = cached
            if key.matches(mask) and mult.dtype == like.dtype and mult.device == like.device:
                return mult
        mult = mask.to(device=like.device, dtype=like.dtype)
        self._mult[name] = (TensorKey(mask), mult)
        return mult

    def drop(self, name: str) -> None:
        self.patterns.pop(name, None)
        hook = self._hooks.pop(name, None)
        if hook is not None:
            hook.active = False
        self._hooked.pop(name, None)
        self._mult.pop(name, None)


def _guard(module: nn.Module) -> _MaskGuard | None:
    guard = module.__dict__.get(_GUARD_ATTR)
    return guard if isinstance(guard, _MaskGuard) else None


def _rezero_after_load(module: nn.Module, incompatible_keys: Any) -> None:
    guard = _guard(module)
    if guard is None:
        return
    for name in guard.patterns:
        param = module._parameters[name]
        assert param is not None
        with torch.no_grad():
            param.mul_(guard.multiplier(module, name, param))


def _rezero_after_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    for group in optimizer.param_groups:
        for param in group["params"]:
            hook = getattr(param, _PARAM_ATTR, None)
            if isinstance(hook, _GradMask):
                hook.rezero(param)


register_optimizer_step_post_hook(_rezero_after_step)


def _as_mask(param: Tensor, mask: Tensor | Any, where: str) -> Tensor:
    mask = torch.as_tensor(mask)
    if tuple(mask.shape) != tuple(param.shape):
        raise ValueError(
            f"mask for {where} has shape {tuple(mask.shape)} but the parameter has shape "
            f"{tuple(param.shape)}; build the mask with the parameter's shape"
        )
    if mask.dtype != torch.bool:
        if bool(((mask != 0) & (mask != 1)).any()):
            raise ValueError(
                f"mask for {where} must be boolean or hold only 0 and 1; "
                f"got dtype {mask.dtype} with other values"
            )
        mask = mask != 0
    return mask.to(device=param.device).contiguous()


def apply_mask(
    module: nn.Module, name: str, mask: Tensor | Any, *, pattern: str = "custom"
) -> None:
    """Mask parameter ``name`` of ``module`` (or replace its mask), zeroing pruned entries.

    Applying a new mask to an already-masked parameter replaces the old mask: entries that the
    new mask keeps but the old one pruned come back as trainable zeros (masks never stack).

    Args:
        module: the module that owns the parameter.
        name: the parameter's name on ``module`` (``"weight"``, ``"weight_hh_l0"``).
        mask: bool (or 0/1) tensor of the parameter's shape; True keeps an entry.
        pattern: a label recorded with the mask (shown by ``summary``, saved by ``save``).

    Example:
        >>> lin = nn.Linear(4, 3)
        >>> apply_mask(lin, "weight", torch.eye(3, 4, dtype=torch.bool))
        >>> int(lin.weight.count_nonzero())
        3
    """
    param = module._parameters.get(name) if isinstance(module, nn.Module) else None
    if param is None:
        have = ", ".join(n for n, p in module.named_parameters(recurse=False)) or "none"
        raise ValueError(
            f"{type(module).__name__} has no parameter {name!r} to mask (its parameters: {have})"
        )
    buffer_name = name + MASK_SUFFIX
    guard = _guard(module)
    if buffer_name in module._buffers and (guard is None or name not in guard.patterns):
        raise ValueError(
            f"{type(module).__name__} already has a buffer {buffer_name!r} that sprig did not make "
            "(torch.nn.utils.prune?); remove it first (prune.remove(module, name))"
        )
    new_mask = _as_mask(param, mask, f"{type(module).__name__}.{name}")
    # Everything is validated: from here on nothing can fail half-way.
    if guard is None:
        guard = _MaskGuard()
        module.__dict__[_GUARD_ATTR] = guard
        module.register_forward_pre_hook(guard)
        module.register_load_state_dict_post_hook(_rezero_after_load)
    if buffer_name in module._buffers:
        existing = module._buffers[buffer_name]
        assert existing is not None
        existing.copy_(new_mask)
    else:
        module.register_buffer(buffer_name, new_mask)
    guard.patterns[name] = pattern
    guard.ensure_hooks(module)
    with torch.no_grad():
        param.mul_(guard.multiplier(module, name, param))


def get_mask(module: nn.Module, name: str) -> Tensor | None:
    """The bool mask of ``module.<name>``, or None when that parameter is not masked."""
    guard = _guard(module)
    if guard is None or name not in guard.patterns:
        return None
    return module._buffers[name + MASK_SUFFIX]


def mask_pattern(module: nn.Module, name: str) -> str | None:
    """The pattern label recorded when ``module.<name>`` was masked, or None."""
    guard = _guard(module)
    return None if guard is None else guard.patterns.get(name)


def remove_mask(module: nn.Module, name: str) -> None:
    """Stop masking ``module.<name>``; the zeros stay in the weight ("baked") but may now train."""
    guard = _guard(module)
    if guard is None or name not in guard.patterns:
        raise ValueError(f"{type(module).__name__}.{name} is not masked by sprig")
    guard.drop(name)
    del module._buffers[name + MASK_SUFFIX]


@dataclass(frozen=True)
class ParameterRef:
    """A weight of a model, named by where it lives: ``module.<name>``, called ``qualname``.

    ``param`` and ``mask`` are read from the module at each access, so a record stays right
    when pruning or a mask update replaces the mask buffer. This is sprig's one record of "a
    weight and its mask": pruning keeps its targets as subclasses of it, and the mask updaters
    see masked parameters as :class:`MaskedParameter`.
    """

    qualname: str  # "layers.0.weight"
    module: nn.Module
    name: str  # "weight"

    @property
    def param(self) -> nn.Parameter:
        p = self.module._parameters[self.name]
        assert p is not None
        return p

    @property
    def mask(self) -> Tensor | None:
        """The mask buffer, or None for a weight sprig does not mask."""
        return get_mask(self.module, self.name)


@dataclass(frozen=True)
class MaskedParameter(ParameterRef):
    """One masked parameter found in a model (``masked_parameters``; the updaters' layers)."""

    @property
    def mask(self) -> Tensor:
        m = self.module._buffers[self.name + MASK_SUFFIX]
        assert m is not None
        return m

    @property
    def pattern(self) -> str:
        return mask_pattern(self.module, self.name) or "custom"

    @property
    def dense_grad(self) -> Tensor | None:
        """The dense gradient recorded under :func:`dense_gradients`, or None."""
        return get_dense_grad(self.module, self.name)

    @property
    def nnz(self) -> int:
        return int(self.mask.sum())

    @property
    def numel(self) -> int:
        return self.mask.numel()


def masked_parameters(model: nn.Module) -> Iterator[MaskedParameter]:
    """Every masked parameter of ``model``, in module order."""
    for mod_name, module in model.named_modules():
        guard = _guard(module)
        if guard is None:
            continue
        for name in guard.patterns:
            yield MaskedParameter(f"{mod_name}.{name}" if mod_name else name, module, name)


@contextlib.contextmanager
def dense_gradients(model: nn.Module) -> Iterator[None]:
    """Within this block, backward passes also record each masked parameter's *dense* gradient.

    The masked gradient (zero at pruned entries) still lands in ``param.grad``; the dense one,
    including pruned entries, is kept for :func:`get_dense_grad`: the sum over the block's
    backward passes (gradient accumulation), dropped again by a backward outside any block.
    Mask-update methods (RigL) use this on the steps where they grow connections; sparse
    kernels that skip pruned entries check :func:`wants_dense_grad` and compute the full
    gradient instead.

    Example:
        >>> lin = nn.Linear(3, 2); apply_mask(lin, "weight", torch.eye(2, 3))
        >>> with dense_gradients(lin):
        ...     lin(torch.ones(1, 3)).sum().backward()
        >>> bool((get_dense_grad(lin, "weight") != 0).all())
        True
        >>> bool((lin.weight.grad[0, 1:] == 0).all())
        True
    """
    guards = [g for m in model.modules() if (g := _guard(m)) is not None]
    compressed = [m for _, m in compressed_weights(model)]  # they record what G = dy^T x needs
    for g in guards:
        g.dense_grads.clear()
        g.capture_dense = True
    for c in compressed:
        c.set_dense_capture(True)
    try:
        yield
    finally:
        for g in guards:
            g.capture_dense = False
        for c in compressed:
            c.set_dense_capture(False)


def wants_dense_grad(module: nn.Module) -> bool:
    """True inside :func:`dense_gradients` for a masked module (for sparse backward kernels)."""
    guard = _guard(module)
    return guard is not None and guard.capture_dense


def get_dense_grad(module: nn.Module, name: str) -> Tensor | None:
    """The dense gradient of ``module.<name>`` recorded by the last :func:`dense_gradients`."""
    guard = _guard(module)
    return None if guard is None else guard.dense_grads.get(name)
