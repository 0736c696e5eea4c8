"""Sparse inputs: run a dense-row function over torch sparse COO/CSR or scipy.sparse inputs.

Sparse data (bag-of-words, one-hot features) arrives as a sparse matrix ``(N, in)``. A layer
densifies it row block by row block and runs its kernel on each block; with ``chunk_size`` the
dense copy never holds more than ``chunk_size`` rows, so inputs too large to convert at once
stream through in bounded memory (only the ``(N, out)`` output grows with N).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from .._checks import check_int

SUPPORTED = "dense torch tensors, torch.sparse_coo, torch.sparse_csr and scipy.sparse matrices"


def is_sparse_input(x: Any) -> bool:
    """True for a torch sparse tensor (any sparse layout) or a scipy.sparse matrix/array."""
    if isinstance(x, Tensor):
        return x.layout != torch.strided
    return type(x).__module__.startswith("scipy.sparse")


def check_layer_input(x: Any, what: str, in_features: int | None = None) -> None:
    """Raise a TypeError naming the fix unless ``x`` is one of the inputs sprig layers take,
    and (given ``in_features``) a ValueError unless its last dimension is ``in_features``:
    torch's own "mat1 and mat2 shapes cannot be multiplied (3x5 and 4x8)" names neither the
    layer nor which number is wrong."""
    if isinstance(x, Tensor) or is_sparse_input(x):
        shape = tuple(x.shape)
        if in_features is not None and (not shape or shape[-1] != in_features):
            raise ValueError(
                f"{what}: input shape {shape} does not fit: the last dim must be "
                f"in_features = {in_features}"
            )
        return
    kind = f"{type(x).__module__}.{type(x).__name__}"
    raise TypeError(
        f"{what}: input must be a torch tensor or a scipy.sparse matrix ({SUPPORTED}), got "
        f"{kind}; convert it first, e.g. torch.from_numpy(x).float()"
    )


def _check_chunk(chunk_size: int | None) -> None:
    if chunk_size is not None:
        check_int(chunk_size, "chunk_size", 1, " or None")


def _torch_blocks(
    x: Tensor, chunk: int, dtype: torch.dtype, device: torch.device
) -> Iterator[Tensor]:
    if x.layout not in (torch.sparse_coo, torch.sparse_csr):
        raise ValueError(
            f"unsupported sparse layout {x.layout}; sprig layers take {SUPPORTED} "
            "(convert with x.to_sparse_csr())"
        )
    if x.dtype != dtype:
        raise TypeError(
            f"input dtype {x.dtype} differs from weight dtype {dtype}; convert it (x.to({dtype}))"
        )
    if x.layout == torch.sparse_coo:
        if x.sparse_dim() != 2 or x.dense_dim() != 0:
            raise ValueError(
                f"a sparse COO input must be a plain 2-D matrix, got sparse_dim={x.sparse_dim()}"
                f", dense_dim={x.dense_dim()}"
            )
        x = x.coalesce().to_sparse_csr()
    crow, col, val = x.crow_indices(), x.col_indices(), x.values()
    n, width = x.shape
    for r0 in range(0, n, chunk):
        r1 = min(r0 + chunk, n)
        a, b = int(crow[r0]), int(crow[r1])
        part = torch.sparse_csr_tensor(
            crow[r0 : r1 + 1] - a, col[a:b], val[a:b], size=(r1 - r0, width), check_invariants=False
        )
        yield part.to_dense().to(device)


def _scipy_blocks(x: Any, chunk: int, dtype: torch.dtype, device: torch.device) -> Iterator[Tensor]:
    x = x.tocsr()  # every scipy format converts; CSR slices rows cheaply
    for r0 in range(0, x.shape[0], chunk):
        block = x[r0 : r0 + chunk].toarray()
        # scipy data is float64 by habit: it is cast to the weight's dtype
        yield torch.from_numpy(block).to(device=device, dtype=dtype)


def apply_rows(
    x: Any,
    fn: Callable[[Tensor], Tensor],
    in_features: int,
    dtype: torch.dtype,
    device: torch.device,
    chunk_size: int | None = None,
) -> Tensor:
    """``fn`` (dense ``(n, in)`` -> dense ``(n, out)``) over the rows of a 2-D sparse input.

    Args:
        x: torch sparse COO/CSR tensor or scipy.sparse matrix ``(N, in)``; a dense tensor
            ``(*, in)`` is passed through (in chunks of rows when ``chunk_size`` is set).
        fn: the layer's dense kernel.
        in_features, dtype, device: of the layer (torch inputs must match the dtype; scipy
            inputs are cast to it).
        chunk_size: rows densified at a time (None: all at once).

    Returns:
        dense ``(N, out)`` (``(*, out)`` for a dense input).

    Example:
        >>> x = torch.eye(3).to_sparse_csr()
        >>> apply_rows(x, lambda d: d * 2, 3, torch.float32, torch.device("cpu"), 2).tolist()
        [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]
    """
    _check_chunk(chunk_size)
    if isinstance(x, Tensor) and x.layout == torch.strided:
        if chunk_size is None or x.dim() < 2:
            return fn(x)
        x2 = x.reshape(-1, x.shape[-1])
        blocks: Iterator[Tensor] = (x2[i : i + chunk_size] for i in range(0, len(x2), chunk_size))
        return _gather(blocks, fn, len(x2), x).reshape(*x.shape[:-1], -1)
    check_layer_input(x, "a sprig layer")
    shape = tuple(x.shape)
    if len(shape) != 2 or shape[1] != in_features:
        raise ValueError(
            f"a sparse input must be (N, {in_features}), got shape {shape}; the layer takes "
            f"{in_features} input features"
        )
    n = shape[0]
    chunk = max(n, 1) if chunk_size is None else chunk_size
    if isinstance(x, Tensor):
        blocks = _torch_blocks(x, chunk, dtype, device)
    else:
        blocks = _scipy_blocks(x, chunk, dtype, device)
    return _gather(blocks, fn, n, torch.empty(0, in_features, dtype=dtype, device=device))


def _gather(
    blocks: Iterator[Tensor], fn: Callable[[Tensor], Tensor], n: int, like: Tensor
) -> Tensor:
    out: Tensor | None = None
    row = 0
    for block in blocks:
        y = fn(block)
        if out is None:
            if len(y) == n:  # one block: no copy
                return y
            out = y.new_empty(n, y.shape[-1])
        out[row : row + len(y)] = y
        row += len(y)
    if out is None:  # no rows at all
        return fn(like)
    return out
