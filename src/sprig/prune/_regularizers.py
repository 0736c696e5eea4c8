"""Sparsity-promoting regularizers, usable on any parameters.

* :class:`L1`: ``strength * mean(|x|)`` summed over tensors.
* :class:`BonsaiRegularizer`: the regularizer of "Growing Bonsai Networks with RNNs"
  (Primozic 2023). ``T(x) = tanh((|x| - t) s) - tanh(-t s)`` is ~0 for ``|x| << t`` and rises
  steeply to a plateau past ``t``: every weight above the threshold costs about the same, so the
  optimizer is pushed to zero out whole connections rather than shrink all of them.
  ``R(x) = mean(i_T T(x) + i_L1 |x|)``; the small L1 term keeps pulling sub-threshold weights
  towards exactly zero.
* :class:`GroupLasso`: ``strength * mean(||row||_2)`` per tensor, summed: the group lasso
  (Yuan & Lin 2006) with each row a group. Its gradient does not fade as a row shrinks, so it
  drives whole rows (all the weights that read one unit) to zero together: units go, not just
  weights.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor


def _check_nonneg(**values: float) -> None:
    for name, v in values.items():
        if not v >= 0:
            raise ValueError(f"{name} must be >= 0, got {v!r}")


@dataclass
class L1:
    """``strength * mean(|x|)`` per tensor, summed over tensors.

    Example:
        >>> float(L1(0.5)([torch.tensor([1.0, -3.0])]))
        1.0
    """

    strength: float = 1e-4

    def __post_init__(self) -> None:
        _check_nonneg(strength=self.strength)

    def __call__(self, tensors: Iterable[Tensor]) -> Tensor:
        terms = [t.abs().mean() for t in tensors]
        return self.strength * torch.stack(terms).sum() if terms else torch.zeros(())


@dataclass
class BonsaiRegularizer:
    """R(x) = mean(intensity * T(x) + l1 * |x|), T(x) = tanh((|x| - threshold) steepness)
    - tanh(-threshold * steepness); summed over tensors.

    Args:
        intensity: i_T, weight of the thresholded term.
        threshold: t, where the cost rises.
        steepness: s, how sharply.
        l1: i_L1, weight of the plain L1 term.

    Example:
        >>> reg = BonsaiRegularizer()
        >>> round(float(reg([torch.tensor([0.0, 1.0])])), 4)
        0.1005
    """

    intensity: float = 0.1
    threshold: float = 0.1
    steepness: float = 100.0
    l1: float = 0.001

    def __post_init__(self) -> None:
        _check_nonneg(
            intensity=self.intensity, threshold=self.threshold, steepness=self.steepness, l1=self.l1
        )

    def per_element(self, x: Tensor) -> Tensor:
        t, s = self.threshold, self.steepness
        shaped = torch.tanh((x.abs() - t) * s) - torch.tanh(torch.tensor(-t * s, dtype=x.dtype))
        return self.intensity * shaped + self.l1 * x.abs()

    def __call__(self, tensors: Iterable[Tensor]) -> Tensor:
        terms = [self.per_element(t).mean() for t in tensors]
        return torch.stack(terms).sum() if terms else torch.zeros(())


@dataclass
class GroupLasso:
    """``strength * mean over rows of ||row||_2`` per 2-D tensor, summed over tensors: each row
    is a group that the penalty pushes to zero as a whole (Yuan & Lin 2006, "Model selection
    and estimation in regression with grouped variables").

    Example:
        >>> float(GroupLasso(0.5)([torch.tensor([[3.0, 4.0], [0.0, 0.0]])]))
        1.25
    """

    strength: float = 1e-3

    def __post_init__(self) -> None:
        _check_nonneg(strength=self.strength)

    def __call__(self, tensors: Iterable[Tensor]) -> Tensor:
        terms = []
        for t in tensors:
            if t.dim() != 2:
                raise ValueError(f"GroupLasso needs 2-D tensors (rows are groups), got {t.dim()}-D")
            terms.append(t.norm(dim=1).mean())
        return self.strength * torch.stack(terms).sum() if terms else torch.zeros(())
