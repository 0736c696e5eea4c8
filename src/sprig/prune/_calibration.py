"""Calibration data for one-shot pruning: checked batches, run through the model with hooks.

Wanda and SparseGPT score a linear layer's weights by the inputs it sees. Those inputs are
gathered by a forward pre-hook on the layer while the model runs on calibration batches, so any
architecture works: sprig never needs to know where a layer sits in the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

Batch = Any  # a tensor, a tuple/list of positional inputs, or a dict of keyword inputs


def calibration_batches(calibration: Any, method: str) -> list[Batch]:
    """The calibration batches as a list, each checked for NaN and infinity.

    Args:
        calibration: one tensor (one batch of model inputs) or an iterable of batches; a batch
            is a tensor, a tuple/list (``model(*batch)``) or a dict (``model(**batch)``).
        method: the pruning method's name, for messages.

    Returns:
        the batches, in order (a generator is consumed once, here).

    Raises:
        ValueError: no data, or a batch holding NaN or infinity.

    Example:
        >>> len(calibration_batches(torch.randn(8, 4), "wanda"))
        1
        >>> calibration_batches([], "wanda")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: calibration holds no batches; wanda scores weights by the inputs they see: ...
    """
    hint = (
        f"{method} scores weights by the inputs they see: pass calibration= a tensor of model "
        "inputs or an iterable of batches (e.g. 128 sequences of training data)"
    )
    if calibration is None:
        raise ValueError(f"{method} pruning needs calibration data; {hint}")
    if isinstance(calibration, (Tensor, Mapping)):
        batches = [calibration]
    elif isinstance(calibration, Iterable) and not isinstance(calibration, (str, bytes)):
        batches = list(calibration)
    else:
        raise TypeError(f"calibration must be a tensor or an iterable of batches; {hint}")
    if not batches:
        raise ValueError(f"calibration holds no batches; {hint}")
    for i, batch in enumerate(batches):
        for t in _tensors(batch):
            if t.numel() == 0:
                raise ValueError(f"calibration batch {i} holds an empty tensor {tuple(t.shape)}")
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(
                    f"calibration batch {i} holds NaN or infinity; clean the data first "
                    "(torch.nan_to_num, or drop those samples)"
                )
    return batches


def _tensors(batch: Batch) -> list[Tensor]:
    if isinstance(batch, Tensor):
        return [batch]
    if isinstance(batch, Mapping):
        return [v for v in batch.values() if isinstance(v, Tensor)]
    if isinstance(batch, (tuple, list)):
        return [v for v in batch if isinstance(v, Tensor)]
    return []


def run_model(model: nn.Module, batch: Batch, index: int) -> None:
    """``model(batch)`` (positional for a tuple/list, keywords for a dict), errors explained."""
    try:
        if isinstance(batch, Mapping):
            model(**batch)
        elif isinstance(batch, (tuple, list)):
            model(*batch)
        else:
            model(batch)
    except (_Abort, _Enough):
        raise
    except Exception as err:  # any failure here is the data's shape or type
        shapes = [tuple(t.shape) for t in _tensors(batch)]
        raise ValueError(
            f"calibration batch {index} (tensor shapes {shapes}) does not run through "
            f"{type(model).__name__}: {type(err).__name__}: {err}; pass inputs the model "
            "accepts, as in model(batch)"
        ) from None


class _Abort(Exception):
    """Raised by a hook to stop a forward that has reached a non-finite activation."""


class _Enough(Exception):
    """Raised by a hook once the one layer gathered has had its input: the rest is not needed."""


class Gathered(NamedTuple):
    rows: dict[str, int]  # input rows (tokens) each layer saw; 0: never called
    calls: dict[str, int]  # forward calls of each layer over all batches


def gather_inputs(
    model: nn.Module,
    batches: Sequence[Batch],
    layers: Mapping[str, nn.Module],
    sink: Callable[[str, Tensor], None],
    stop_early: bool = False,
) -> Gathered:
    """Run every batch through ``model``, passing each listed layer's 2-D input to ``sink``.

    Args:
        layers: name -> linear-like layer (its first forward argument is ``(*, in)``).
        sink: called as ``sink(name, x)`` with ``x`` of shape ``(tokens, in)``, float32.
        stop_early: end each forward right after the (single) layer's input is taken; only
            right for a layer called once per forward (an earlier gather's ``calls`` says).

    Returns:
        rows and calls per layer.
    """
    if stop_early and len(layers) != 1:
        raise ValueError("stop_early needs exactly one layer")
    seen = Gathered(dict.fromkeys(layers, 0), dict.fromkeys(layers, 0))

    def hook_for(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0].detach()
            x = x.reshape(-1, x.shape[-1]).float()  # (tokens, in)
            if not bool(torch.isfinite(x).all()):
                raise _Abort(name)
            seen.rows[name] += x.shape[0]
            seen.calls[name] += 1
            sink(name, x)
            if stop_early:
                raise _Enough

        return hook

    handles = [m.register_forward_pre_hook(hook_for(n)) for n, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i, batch in enumerate(batches):
                try:
                    run_model(model, batch, i)
                except _Enough:
                    pass
                except _Abort as stop:
                    raise ValueError(
                        f"the inputs of {stop} hold NaN or infinity on calibration batch {i}: "
                        "the model itself overflows on this data; check the model and data"
                    ) from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return seen


def check_finite_scale(values: Tensor, what: str) -> None:
    """Raise if statistics overflowed (inputs too large for float32 sums)."""
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{what} overflowed to infinity; scale the calibration inputs down")


def min_density_for(units: int) -> float:
    """The smallest density that keeps at least one of ``units`` (round half up)."""
    return math.ceil(0.5 / units * 1e6) / 1e6
