"""The training-loop callback protocol: the hooks a pruning schedule or a mask updater gets.

It lives below every loop that calls it (``sprig.training``'s convenience loop, ``sprig run``,
a user's own loop) so that ``dst`` and ``prune`` need not import a training loop to implement
it. ``sprig.training.Callback`` is the public name.
"""

from __future__ import annotations

import torch
from torch import nn


class Callback:
    """Hooks a training loop calls (:func:`sprig.training.train_classifier`, ``sprig run``, or
    your own); override what you need."""

    def before_training(self, steps: int) -> None:
        """The loop is about to run ``steps`` optimizer steps (a chance to check a schedule)."""

    def needs_dense_grad(self, step: int) -> bool:
        """Return True for steps whose backward must also record dense gradients (RigL)."""
        return False

    def after_backward(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Gradients are ready, the optimizer has not stepped."""

    def after_step(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer has stepped (``step`` counts from 0)."""
