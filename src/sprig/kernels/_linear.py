"""The CSR linear product ``y = x W^T + b`` with W stored as CSR ``(out, in)``."""

from __future__ import annotations

import torch
from torch import Tensor


def csr_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ W^T + b`` for a CSR weight ``(out, in)`` and a dense input ``(*, in)``.

    Returns a dense ``(*, out)`` tensor, the same as ``F.linear(x, W.to_dense(), b)``.
    """
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    y = torch.sparse.mm(weight, x2.t()).t()  # (N, out)
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, weight.shape[0])
