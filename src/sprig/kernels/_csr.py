"""CSR storage: masked dense weights <-> torch sparse CSR tensors with int32 indices.

MKL's CSR product through torch is the fastest CPU sparse kernel here, and int32 indices make
it 1.2-4x faster than ``to_sparse_csr()``'s default int64 (measured on this machine).
"""

from __future__ import annotations

import torch
from torch import Tensor


def to_csr(weight: Tensor, mask: Tensor | None = None) -> Tensor:
    """A sparse CSR tensor holding the entries of ``weight`` that ``mask`` keeps.

    Entries the mask keeps are stored even when their value is exactly zero, so the structure
    is the mask's. Indices are int32 when sizes allow.

    Args:
        weight: dense 2-D tensor ``(rows, cols)``.
        mask: bool tensor of the same shape; None keeps the nonzeros.

    Example:
        >>> w = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> to_csr(w).crow_indices().dtype
        torch.int32
    """
    if weight.dim() != 2:
        raise ValueError(f"CSR needs a 2-D weight, got shape {tuple(weight.shape)}")
    keep = weight != 0 if mask is None else mask.to(device=weight.device, dtype=torch.bool)
    if keep.shape != weight.shape:
        raise ValueError(
            f"mask shape {tuple(keep.shape)} differs from weight {tuple(weight.shape)}"
        )
    rows, cols = weight.shape
    index_dtype = torch.int32 if max(rows, cols, int(keep.sum())) < 2**31 - 1 else torch.int64
    crow = torch.zeros(rows + 1, dtype=torch.int64, device=weight.device)
    crow[1:] = keep.sum(dim=1).cumsum(0)
    col = keep.nonzero()[:, 1]
    values = weight.detach()[keep]
    return torch.sparse_csr_tensor(
        crow.to(index_dtype), col.to(index_dtype), values, size=(rows, cols)
    )


def csr_to_dense(csr: Tensor) -> tuple[Tensor, Tensor]:
    """The dense weight and bool mask a CSR tensor stands for (the inverse of :func:`to_csr`)."""
    rows, cols = csr.shape
    crow = csr.crow_indices().long()
    counts = crow[1:] - crow[:-1]
    row = torch.repeat_interleave(torch.arange(rows, device=csr.device), counts)
    col = csr.col_indices().long()
    weight = torch.zeros(rows, cols, dtype=csr.dtype, device=csr.device)
    mask = torch.zeros(rows, cols, dtype=torch.bool, device=csr.device)
    weight[row, col] = csr.values()
    mask[row, col] = True
    return weight, mask
