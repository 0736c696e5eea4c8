"""Argument checks and warnings for mask updaters, kept apart from the update logic.

An updater is called from users' own loops, where ``after_step(model, opt, 10)`` or
``update(10, opt)`` is an easy slip; without these checks it fails deep inside with a raw
AttributeError that does not name the signature.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._stack import user_stacklevel

SIGNATURES = {
    "after_backward": "after_backward(step, model, optimizer)",
    "after_step": "after_step(step, model, optimizer)",
    "update": "update(optimizer, step)",
}


def _kind(value: Any) -> str:
    return type(value).__name__


def check_call(
    owner: object,
    method: str,
    step: Any,
    optimizer: Any,
    model: Any = None,
    takes_model: bool = True,
) -> None:
    """Raise TypeError naming ``method``'s signature when an argument has the wrong type."""
    cls = type(owner).__name__
    sig = SIGNATURES[method]
    # not check_int: these name the type, as a misplaced model's repr runs for pages
    if isinstance(step, bool) or not isinstance(step, int):
        raise TypeError(f"{cls}.{sig}: step must be an int, got {_kind(step)}; check the order")
    if takes_model and not isinstance(model, nn.Module):
        raise TypeError(
            f"{cls}.{sig}: model must be a torch.nn.Module, got {_kind(model)}; check the order"
        )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"{cls}.{sig}: optimizer must be a torch.optim.Optimizer, got {_kind(optimizer)}; "
            "check the order"
        )


def warn_unswappable(
    cls: str, names: Sequence[str], masks: Sequence[Tensor], fraction: float
) -> None:
    """Warn once about layers whose ``floor(fraction * nnz)`` is 0 while they have free slots:
    they are never rewired (the update fraction only decays from ``fraction``)."""
    small = [
        f"{name} ({int(m.sum())} kept)"
        for name, m in zip(names, masks)
        if 0 < int(m.sum()) < m.numel() and math.floor(fraction * int(m.sum())) == 0
    ]
    if small:
        warnings.warn(
            f"{cls}: floor(fraction={fraction} x nnz) is 0 for {', '.join(small)}, so "
            "these layers are never rewired; raise fraction or their density to swap them",
            stacklevel=user_stacklevel(),
        )


def warn_late_end(cls: str, t_end: int, steps: int) -> None:
    """Warn when updates are scheduled until after the run's last step."""
    if t_end > steps:
        warnings.warn(
            f"{cls}: t_end={t_end} is beyond the run's {steps} steps, so the update fraction "
            f"never decays to its end; pass t_end <= {steps} (the RigL paper stops updates at "
            f"75% of training: t_end={int(0.75 * steps)})",
            stacklevel=user_stacklevel(),
        )
