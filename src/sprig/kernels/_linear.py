"""The CSR linear product ``y = x W^T + b`` with W stored as CSR ``(out, in)``.

Fast path: MKL's CSR kernels through torch (cuSPARSE on CUDA). A 1-D vector goes through
``mv``, faster than an ``(in, 1)`` matrix; large batches run in column blocks, because MKL's
SpMM slows down when the dense operand is wide (``benchmarks/results/design_measurements.md``,
rows ``mv-vs-mm`` and ``spmm-blocks``; the dispatcher's blocks come from
``benchmarks/results/kernels.md``). The slow reference
beside it (:func:`csr_linear_reference`) is a plain scatter-add over the nonzeros.

Compressed layers run batch 1 through :class:`sprig.kernels.MatVec` instead (16-bit column
indices, OpenMP threads): 2x MKL's ``mv`` at N=8192, d=0.05 on this machine.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._threads import one_thread_if_busy


def check_linear_args(x: Tensor, weight: Tensor, bias: Tensor | None, what: str) -> None:
    """Raise a clear error when ``x``, a CSR ``weight`` and ``bias`` do not fit together."""
    if weight.layout != torch.sparse_csr or weight.dim() != 2:
        raise TypeError(
            f"{what} needs a 2-D sparse CSR weight, got layout {weight.layout} with shape "
            f"{tuple(weight.shape)}; build one with sprig.kernels.to_csr(weight, mask)"
        )
    if x.layout != torch.strided:
        raise TypeError(
            f"{what} takes a dense input, got layout {x.layout}; sparse inputs go through "
            "a compressed layer or SparseLinear (they accept torch sparse and scipy.sparse)"
        )
    if x.dim() == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"{what}: input shape {tuple(x.shape)} does not fit weight "
            f"{tuple(weight.shape)} (out, in): the last input dim must be {weight.shape[1]}"
        )
    if x.dtype != weight.dtype:
        raise TypeError(
            f"{what}: input dtype {x.dtype} differs from weight dtype {weight.dtype}; "
            f"convert one (x.to({weight.dtype}))"
        )
    if x.device != weight.device:
        raise ValueError(
            f"{what}: input on {x.device} but weight on {weight.device}; move them together"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(
            f"{what}: bias shape {tuple(bias.shape)} does not fit {weight.shape[0]} outputs"
        )


def csr_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, *, block: int = 0) -> Tensor:
    """``x @ W^T + b`` for a CSR weight ``(out, in)`` and a dense input ``(*, in)``.

    Returns a dense ``(*, out)`` tensor, the same as ``F.linear(x, W.to_dense(), b)``. The
    result may be a transposed view (strides of ``(out, N)``), which keeps chained sparse
    layers free of copies.

    Args:
        x: dense input ``(*, in)``, any strides.
        weight: sparse CSR ``(out, in)`` (int32 indices are fastest: :func:`to_csr`).
        bias: optional ``(out,)``.
        block: when > 0 and the batch is larger, run the batch in column blocks of this size.

    Example:
        >>> from sprig.kernels import to_csr
        >>> w = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
        >>> csr_linear(torch.ones(2, 3), to_csr(w), torch.tensor([0.5, 1.0])).tolist()
        [[3.5, 1.0], [3.5, 1.0]]
    """
    check_linear_args(x, weight, bias, "csr_linear")
    out_f, in_f = weight.shape
    lead = x.shape[:-1]
    n = math.prod(lead)
    if n == 0:
        y = x.new_zeros(n, out_f)
    elif n == 1:
        # 1-D vector: MKL's mv, faster than an (in, 1) matrix product (row mv-vs-mm); one thread
        # while other processes hold the cores (a thread team then waits for a time slice)
        with one_thread_if_busy():
            y = torch.mv(weight, x.reshape(in_f)).unsqueeze(0)
    else:
        xt = x.reshape(n, in_f).t()  # (in, n)
        if 0 < block < n:
            yt = torch.cat(
                [torch.sparse.mm(weight, xt[:, i : i + block]) for i in range(0, n, block)], 1
            )
        else:
            yt = torch.sparse.mm(weight, xt)  # (out, n)
        y = yt.t()  # (n, out) view
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, out_f)


def csr_linear_reference(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Slow, obviously-correct :func:`csr_linear`: every nonzero adds ``w * x[:, col]`` to its row.

    Memory is ``N * nnz``: for tests on small shapes only.
    """
    check_linear_args(x, weight, bias, "csr_linear_reference")
    out_f, in_f = weight.shape
    crow = weight.crow_indices().long()
    row = torch.repeat_interleave(torch.arange(out_f, device=x.device), crow[1:] - crow[:-1])
    col = weight.col_indices().long()
    x2 = x.reshape(-1, in_f)
    y = torch.zeros(x2.shape[0], out_f, dtype=x.dtype, device=x.device)
    y.index_add_(1, row, x2[:, col] * weight.values())
    if bias is not None:
        y = y + bias
    return y.reshape(*x.shape[:-1], out_f)
