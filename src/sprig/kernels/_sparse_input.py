"""Sparse inputs into a sparse layer, forward and backward, never densified.

For data that arrives sparse (bag-of-words, one-hot features: ``(N, in)`` with a few nonzeros
a row) the first layer's product ``y = x W^T + b`` and its weight gradient at the stored
nonzeros ``dW[i, j] = sum_n dy[n, i] x[n, j]`` both run over the nonzeros of ``x`` and of
``W`` only: no ``(N, in)`` dense block and no ``(out, in)`` gradient. Both loops walk ``W``
by input column (its cached transpose, :class:`CSRStructure`), the forward over ``x``'s rows,
the gradient over its columns.

:func:`sparse_input_linear_reference` is the obviously-correct dense version the tests compare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ._csr import CSRStructure

if TYPE_CHECKING:  # scipy and the compiled loops load at the first sparse input, not at import
    import scipy.sparse as sp


def as_scipy_csr(x: Any, in_features: int, dtype: torch.dtype) -> sp.csr_matrix:
    """A torch sparse COO/CSR or scipy.sparse ``(N, in)`` input as a scipy CSR of ``dtype``."""
    import scipy.sparse as sp

    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    if isinstance(x, Tensor):
        if x.requires_grad:
            raise ValueError(
                "a sparse input that requires grad is not supported: sprig differentiates a "
                "sparse first layer in its weights only"
            )
        if x.dtype != dtype:
            raise TypeError(
                f"input dtype {x.dtype} differs from weight dtype {dtype}; convert it "
                f"(x.to({dtype}))"
            )
        if x.layout == torch.sparse_coo:
            x = x.coalesce().to_sparse_csr()
        if x.layout != torch.sparse_csr:
            raise ValueError(
                f"unsupported sparse layout {x.layout}; convert with x.to_sparse_csr()"
            )
        m = sp.csr_matrix(
            (
                x.values().cpu().numpy(),
                x.col_indices().cpu().numpy(),
                x.crow_indices().cpu().numpy(),
            ),
            shape=tuple(x.shape),
        )
    else:
        m = sp.csr_matrix(x).astype(np_dtype)  # scipy data is float64 by habit: cast
    if m.ndim != 2 or m.shape[1] != in_features:
        raise ValueError(
            f"a sparse input must be (N, {in_features}), got shape {m.shape}; the layer takes "
            f"{in_features} input features"
        )
    m.sum_duplicates()
    return m


class _SparseInputFn(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, values: Tensor, bias: Tensor | None, x: sp.csr_matrix, s: CSRStructure
    ) -> Tensor:
        from . import _compiled as nb

        vt = values.detach()[s.perm_t].numpy()
        y = np.zeros((x.shape[0], s.shape[0]), dtype=vt.dtype)
        tcrow, tcol = s.crow_t.numpy(), s.col_t.numpy()
        nb.sparse_input_forward(x.indptr, x.indices, x.data, tcrow, tcol, vt, y)
        out = torch.from_numpy(y)
        if bias is not None:
            out += bias.detach()
        ctx.x, ctx.s, ctx.has_bias = x, s, bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor | None, ...]:
        s: CSRStructure = ctx.s
        g_values = g_bias = None
        if ctx.needs_input_grad[0]:
            from . import _compiled as nb

            xc = ctx.x.tocsc()
            gy_np = gy.detach().contiguous().numpy()
            gvt = np.zeros(s.nnz, dtype=gy_np.dtype)
            tcrow, tcol = s.crow_t.numpy(), s.col_t.numpy()
            nb.sparse_input_grad(xc.indptr, xc.indices, xc.data, tcrow, tcol, gy_np, gvt)
            g_values = torch.zeros(s.nnz, dtype=gy.dtype)
            g_values[s.perm_t] = torch.from_numpy(gvt)
        if ctx.has_bias and ctx.needs_input_grad[1]:
            g_bias = gy.sum(0)
        return g_values, g_bias, None, None


def sparse_input_linear(
    x: Any, values: Tensor, structure: CSRStructure, bias: Tensor | None = None
) -> Tensor:
    """``x W^T + b`` for a sparse input, differentiable in ``values`` and ``bias`` (CPU).

    Args:
        x: torch sparse COO/CSR or scipy.sparse ``(N, in)``.
        values: ``(nnz,)`` stored weights in the CSR order of ``structure`` (``(out, in)``).
        structure: where the weights sit.
        bias: optional ``(out,)``.

    Returns:
        dense ``(N, out)``.

    Example:
        >>> s = CSRStructure(torch.eye(3, dtype=torch.bool))
        >>> v = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> x = torch.tensor([[0.0, 5.0, 0.0]]).to_sparse_csr()
        >>> y = sparse_input_linear(x, v, s)
        >>> y.sum().backward(); y.tolist(), v.grad.tolist()
        ([[0.0, 10.0, 0.0]], [0.0, 5.0, 0.0])
    """
    if values.device.type != "cpu" or values.dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"sparse inputs train on the CPU in float32/float64, got {values.dtype} on "
            f"{values.device}; densify the input (x.to_dense()) on other devices"
        )
    m = as_scipy_csr(x, structure.shape[1], values.dtype)
    out: Tensor = _SparseInputFn.apply(values, bias, m, structure)
    return out


def sparse_input_linear_reference(
    x: Any, values: Tensor, structure: CSRStructure, bias: Tensor | None = None
) -> Tensor:
    """Slow reference: densify ``x`` and the weight, then ``F.linear``."""
    m = as_scipy_csr(x, structure.shape[1], values.dtype)
    dense_x = torch.from_numpy(m.toarray())
    w = values.new_zeros(structure.shape).reshape(-1).index_put((structure.flat,), values)
    return torch.nn.functional.linear(dense_x, w.reshape(structure.shape), bias)
