"""``compress``/``decompress``: swap masked modules for compressed ones and back.

Each masked module kind has one converter, registered by the module type it handles
(``register_compressor(nn.Linear)``), or by class path for a class of an optional dependency
that sprig does not import (``register_compressor("transformers.pytorch_utils.Conv1D")``).
A converter returns a :class:`CompressedModule`, which knows how to give back its masked-dense
twin (``decompress_module``). ``compress`` walks a copy of the model and replaces every module
whose type (or a base of it) has a converter and that holds a sprig mask.
"""

from __future__ import annotations

import copy
import functools
import warnings
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from .._checks import check_module
from .._stack import user_stacklevel
from ..kernels import warm_up
from ..masks import is_sparse, masked_parameters, warn_left_alone
from ..masks._layouts import class_path

Converter = Callable[..., nn.Module]
COMPRESSORS: dict[type[nn.Module] | str, Converter] = {}

C = TypeVar("C", bound=Converter)


def register_compressor(module_type: type[nn.Module] | str) -> Callable[[C], C]:
    """Register ``fn(module, **options) -> CompressedModule`` for masked modules of this type
    (a class, or its ``"module.QualName"`` path)."""

    def deco(fn: C) -> C:
        if module_type in COMPRESSORS:
            raise ValueError(f"a compressor for {module_type} is already registered")
        COMPRESSORS[module_type] = fn
        return fn

    return deco


class Uncompressible(Exception):
    """Raised by a converter for a module it cannot compress; ``compress`` then leaves the
    module masked-dense and names it, with this reason, in its ``LeftAloneWarning``."""


class CompressedModule(nn.Module):
    """Base of modules that store only nonzeros; ``decompress_module`` returns the masked twin.

    Every subclass's ``forward`` refuses ``torch.jit.trace`` and ``torch.export``: the compiled
    kernels run outside torch, so a trace would record their output as a constant and return
    the trace-time result for every input (a silently wrong model). ``torch.compile`` is not
    refused: it breaks its graph around the kernels and stays correct.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        forward = cls.__dict__.get("forward")
        if forward is not None and not getattr(forward, "_sprig_guarded", False):
            cls.forward = _refuse_tracing(forward)

    def decompress_module(self) -> nn.Module:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The constructor's arguments (``sprig.save`` writes them; ``sprig.load`` rebuilds)."""
        raise NotImplementedError

    @property
    def dtype_name(self) -> str:
        """The dtype of the stored ``values``, read from them, so ``.double()``/``.to(dtype)``
        show in the config that ``sprig.save`` writes (a saved float64 layer loads as float64).
        A module that keeps its values under other names (CompressedRNN) overrides this."""
        values = self._parameters.get("values")
        if values is None:
            raise NotImplementedError(f"{type(self).__name__} stores no 'values' parameter")
        return str(values.dtype).removeprefix("torch.")

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        # rebuilt from the config with this module's state: caches of compiled kernels and
        # prepared arrays start empty instead of being copied (they hold numba objects)
        new = type(self)(**copy.deepcopy(self.config(), memo))
        new.load_state_dict(self.state_dict())
        new.train(self.training)
        return new


def _refuse_tracing(forward: Callable[..., Any]) -> Callable[..., Any]:
    # bound once: this runs on every forward of every compressed layer (row tracing-checks of
    # benchmarks/results/design_measurements.md);
    # the public functions, which dynamo (torch.export strict) knows how to evaluate
    is_tracing, is_exporting = torch.jit.is_tracing, torch.compiler.is_exporting

    @functools.wraps(forward)
    def guarded(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        if is_exporting() or is_tracing():
            raise RuntimeError(
                f"{type(self).__name__} runs compiled sparse kernels that torch.jit.trace and "
                "torch.export cannot see into (the trace would return its trace-time output "
                "for every input); export the masked-dense twin instead: "
                "sprig.decompress(model), or sprig.bake(sprig.decompress(model)) for no masks"
            )
        return forward(self, *args, **kwargs)

    guarded._sprig_guarded = True  # type: ignore[attr-defined]
    return guarded


def _converter(module: nn.Module) -> Converter | None:
    for cls in type(module).__mro__:
        fn = COMPRESSORS.get(cls) or COMPRESSORS.get(class_path(cls))
        if fn is not None:
            return fn
    return None


def _own_masks(module: nn.Module) -> bool:
    return any(mp.module is module for mp in masked_parameters(module))


def _swap(model: nn.Module, make: Callable[[nn.Module], nn.Module | None]) -> nn.Module:
    """Return ``model`` with each module replaced by ``make(module)`` where that is not None."""
    root = make(model)
    if root is not None:
        return root
    for name, child in list(model.named_children()):
        setattr(model, name, _swap(child, make))
    return model


# Parameters that stopped training: those of a model passed to compress (its copy trains) and
# the values of a compressed layer that pruning replaced by a smaller tensor. An optimizer
# still holding one was built too early or was not told; its step() raises instead of
# silently training nothing. (Keyed by id with a weak reference: a tensor's == is
# elementwise, so no WeakSet.)
_RETIRED: dict[int, tuple[weakref.ref[Tensor], str]] = {}
_MESSAGES = {
    "compressed": (
        "this optimizer holds the parameters of a model that was passed to sprig.compress, "
        "and none of them has a gradient: the compressed copy is what trains. Build the "
        "optimizer after compress, from the compressed model's parameters "
        "(torch.optim.Adam(compressed.parameters()))"
    ),
    "resized": (
        "this optimizer holds the old values of a compressed layer that pruning shrank; pass "
        "the optimizer to the pruner (prune(..., optimizer=opt); GradualPruning and sprig's "
        "loops do) so its parameter and state follow the layer"
    ),
}


def retire(param: Tensor, why: str) -> None:
    """Mark ``param`` as no longer trained (``why``: ``"compressed"`` or ``"resized"``)."""
    key = id(param)

    def forget(_: weakref.ref[Tensor]) -> None:
        _RETIRED.pop(key, None)

    _RETIRED[key] = (weakref.ref(param, forget), why)


def _check_stale_optimizer(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    if not _RETIRED:
        return
    params = [p for group in optimizer.param_groups for p in group["params"]]
    why = {e[1] for p in params if (e := _RETIRED.get(id(p))) is not None and e[0]() is p}
    if "resized" in why:
        raise RuntimeError(_MESSAGES["resized"])
    # training the original while compressing copies of it (for evaluation) is fine
    if "compressed" in why and all(p.grad is None for p in params):
        raise RuntimeError(_MESSAGES["compressed"])


register_optimizer_step_pre_hook(_check_stale_optimizer)


def compress(model: nn.Module, **options: Any) -> nn.Module:
    """A copy of ``model`` whose masked layers store only their nonzeros and run sparse kernels.

    The original model is left unchanged. Outputs match the masked-dense model's. A model with
    no masks is returned unchanged (a copy) with a warning; masked weights of layers that have
    no compressed form (grouped ``Conv2d``, ``Conv3d`` ...) stay masked-dense, named in one
    ``LeftAloneWarning``.
    The copy trains: its compressed layers' nonzero values are parameters, so build the
    optimizer *after* compress, from the copy's parameters (an optimizer of the original that
    gets no gradient raises at ``step``).

    Args:
        model: a model masked by sprig (``sparsify``, sprig's layers, pruning...).
        options: passed to each converter (e.g. a kernel backend).
    """
    check_module(model, "sprig.compress")
    if not is_sparse(model):
        warnings.warn(
            f"{type(model).__name__} has no sprig masks, so there is nothing to compress; "
            "mask it first (sprig.sparsify) — returning an unchanged copy",
            stacklevel=user_stacklevel(),
        )
        return copy.deepcopy(model)

    if any(p.device.type == "cpu" for p in model.parameters()):
        warm_up()  # numba's start-up overlaps the conversion and what follows (kernels._warm)
    reasons: dict[int, str] = {}  # id(module) -> why its converter declined it

    def make(module: nn.Module) -> nn.Module | None:
        fn = _converter(module)
        if fn is None or not _own_masks(module):
            return None
        try:
            return fn(module, **options)
        except Uncompressible as why:
            reasons[id(module)] = str(why)
            return None

    out = _swap(copy.deepcopy(model), make)
    for mp in masked_parameters(model):
        retire(mp.param, "compressed")
    stay = [
        (
            mp.qualname,
            reasons.get(id(mp.module))
            or f"no compressed form for {type(mp.module).__name__}; it runs masked-dense",
        )
        for mp in masked_parameters(out)
    ]
    warn_left_alone("compress", stay)
    return out


def decompress(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every compressed module turned back into its masked-dense twin."""
    check_module(model, "sprig.decompress")

    def make(module: nn.Module) -> nn.Module | None:
        return module.decompress_module() if isinstance(module, CompressedModule) else None

    return _swap(copy.deepcopy(model), make)
