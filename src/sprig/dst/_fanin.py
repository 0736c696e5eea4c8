"""Constant fan-in for mask updaters: drop and grow within each row (SRigL, Lasby et al. 2023).

A ``"fanin"`` mask gives every output the same number of inputs K. An update that drops the
k lowest-scoring connections of the whole layer and grows the k best ones anywhere would let
rows drift apart; here every row drops its own ``k_row`` lowest and grows its own ``k_row``
highest, so each row keeps exactly K.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

FANIN = "fanin"


def fanin_per_row(mask: Tensor, fraction: float) -> int:
    """Connections each row swaps: ``floor(fraction * K)``, capped as the base caps layers
    (one connection stays, only inactive inputs grow)."""
    rows = mask.reshape(mask.shape[0], -1)
    fan, free = int(rows[0].sum()), rows.shape[1] - int(rows[0].sum())
    return max(0, min(math.floor(fraction * fan), free, fan - 1))


def _row_top(scores: Tensor, eligible: Tensor, k: int) -> Tensor:
    """Bool mask of the k highest scores of each row among ``eligible`` (ties: lower index)."""
    s = torch.nan_to_num(scores.detach().double(), nan=-math.inf)
    s = torch.where(eligible, s, torch.full_like(s, -math.inf))
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    out = torch.zeros_like(eligible)
    out.scatter_(1, order[:, :k], True)
    return out & eligible


def swap_rows(drop: Tensor, grow: Tensor, mask: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(dropped, grown) bool masks of ``mask``'s shape: ``k`` of each per row (2-D view)."""
    shape = mask.shape
    m = mask.reshape(shape[0], -1)
    dropped = _row_top(-drop.reshape(m.shape).double(), m, k)
    grown = _row_top(grow.reshape(m.shape), ~m, k)
    return dropped.reshape(shape), grown.reshape(shape)
