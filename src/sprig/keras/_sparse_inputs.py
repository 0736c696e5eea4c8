"""Sparse inputs for the Keras layer: scipy.sparse / torch sparse -> torch CSR, row chunks.

Converting a scipy CSR matrix to a torch CSR tensor shares its index and value arrays (no
copy when the dtypes already match), so a large sparse input is never densified at once: the
layer walks it ``chunk_size`` rows at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from .._checks import check_int

_SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr)


def as_torch_sparse(x: Any, dtype: torch.dtype | None = None) -> Tensor:
    """A 2-D torch sparse CSR tensor holding the same matrix as ``x``.

    Args:
        x: a scipy.sparse matrix or array (any format), or a torch sparse COO/CSR tensor,
            of shape ``(rows, features)``.
        dtype: value dtype of the result (e.g. ``torch.float32``); None keeps the input's.

    Returns:
        a torch ``sparse_csr`` tensor ``(rows, features)``; for a scipy CSR input of the same
        dtype its arrays are shared, not copied.

    Example:
        >>> import scipy.sparse as sp
        >>> x = as_torch_sparse(sp.eye(3, format="csr", dtype="float32"))
        >>> x.layout, tuple(x.shape)
        (torch.sparse_csr, (3, 3))
    """
    if sp.issparse(x):
        if x.ndim != 2:
            raise ValueError(f"sparse inputs must be 2-D (rows, features), got shape {x.shape}")
        csr = x.tocsr()
        # torch wants crow and col indices of one dtype
        index = np.int32 if csr.nnz < 2**31 - 1 and max(csr.shape) < 2**31 - 1 else np.int64
        out = torch.sparse_csr_tensor(
            torch.from_numpy(np.ascontiguousarray(csr.indptr, dtype=index)),
            torch.from_numpy(np.ascontiguousarray(csr.indices, dtype=index)),
            torch.from_numpy(np.ascontiguousarray(csr.data)),
            size=csr.shape,
            check_invariants=False,  # scipy's tocsr() output is a valid CSR
        )
    elif isinstance(x, Tensor) and x.layout in _SPARSE_LAYOUTS:
        if x.dim() != 2:
            raise ValueError(
                f"sparse inputs must be 2-D (rows, features), got shape {tuple(x.shape)}"
            )
        out = x if x.layout == torch.sparse_csr else x.coalesce().to_sparse_csr()
    else:
        layout = getattr(x, "layout", None)
        raise TypeError(
            f"expected a scipy.sparse matrix or a torch sparse COO/CSR tensor, got "
            f"{type(x).__name__}{f' with layout {layout}' if layout is not None else ''}; "
            "pass dense inputs as numpy arrays or dense tensors"
        )
    return out if dtype is None or out.dtype == dtype else out.to(dtype)


def row_chunks(x: Tensor, chunk_size: int) -> Iterator[Tensor]:
    """Consecutive row blocks of a torch CSR tensor, each a CSR tensor of <= chunk_size rows.

    The blocks are views of ``x``'s arrays (no copy of indices or values).

    Example:
        >>> x = torch.eye(5).to_sparse_csr()
        >>> [tuple(c.shape) for c in row_chunks(x, 2)]
        [(2, 5), (2, 5), (1, 5)]
    """
    check_int(chunk_size, "chunk_size", 1, " (rows per chunk)")
    if x.layout != torch.sparse_csr:
        raise TypeError(f"row_chunks needs a torch sparse CSR tensor, got layout {x.layout}")
    rows, cols = x.shape
    crow, col, values = x.crow_indices(), x.col_indices(), x.values()
    for start in range(0, rows, chunk_size):
        stop = min(start + chunk_size, rows)
        lo, hi = int(crow[start]), int(crow[stop])
        yield torch.sparse_csr_tensor(
            crow[start : stop + 1] - lo,
            col[lo:hi],
            values[lo:hi],
            size=(stop - start, cols),
            check_invariants=False,  # rows of a valid CSR
        )
