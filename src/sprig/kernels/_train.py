"""Sparse training: a CSR linear layer whose backward touches only the stored nonzeros.

torch's own autograd through a CSR weight is slower than masked dense, and ``W @ X`` on a CSR
leaf returns a dense, unmasked gradient, so sprig builds the backward by hand:

* forward ``y = x W^T + b`` through :func:`csr_linear`;
* weight gradient only at the nonzeros, ``dW[i, j] = sum_n dy[n, i] x[n, j]`` for stored
  ``(i, j)``: a sampled dense-dense product (a compiled loop on the CPU,
  ``torch.sparse.sampled_addmm`` elsewhere);
* input gradient ``dx = dy W`` through the cached transposed CSR (:class:`CSRStructure`).

Two entry points share it: :func:`csr_linear_train` trains the values vector itself (the fast
form), and :func:`masked_csr_linear` trains a dense masked weight (``SparseLinear``'s
``backend="csr"``), scattering the nonzero gradient into the dense ``.grad`` or, when a mask
updater asks for it (``sprig.masks.dense_gradients``), computing the full dense gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._csr import CSRStructure
from ._linear import csr_linear
from ._threads import run_parts


def _nonzero_grad(structure: CSRStructure, values: Tensor, gy: Tensor, x2: Tensor) -> Tensor:
    """``(gy^T x)`` at the stored positions, CSR order: ``(nnz,)``.

    On the CPU a compiled loop (one dot product of two batch-long rows per nonzero, rows split
    over threads), faster than ``torch.sparse.sampled_addmm``
    (``benchmarks/results/design_measurements.md``, row ``sampled-grad``), which runs
    elsewhere, and wherever the gradient itself must be differentiable
    (``create_graph=True``, e.g. a gradient penalty).
    """
    if structure.nnz == 0:
        return values.new_zeros(0)
    differentiable = torch.is_grad_enabled() and (gy.requires_grad or x2.requires_grad)
    if (
        gy.device.type == "cpu"
        and gy.dtype in (torch.float32, torch.float64)
        and not differentiable
    ):
        # no PyTorch path while numba warms up (_warm): training waits for the compiled loop,
        # so that a run's gradients do not depend on when the warm-up ended
        from . import _compiled as nb

        gy_t = gy.detach().t().contiguous().numpy()  # (out, N): one row per output
        x_t = x2.detach().t().contiguous().numpy()  # (in, N)
        out = np.empty(structure.nnz, dtype=gy_t.dtype)
        crow, col, bounds = structure.compiled(torch.get_num_threads())
        args = (crow, col, gy_t, x_t, out, gy_t.dtype.type(0))
        run_parts(lambda cuts: nb.sampled_parallel(*args, cuts), lambda: nb.sampled(*args), bounds)
        return torch.from_numpy(out)
    sampled = torch.sparse.sampled_addmm(structure.csr(values), gy.t(), x2, beta=0.0)
    return sampled.values()


def nonzero_grad_reference(structure: CSRStructure, gy: Tensor, x2: Tensor) -> Tensor:
    """Slow reference of the sampled product: the dense ``gy^T x`` read at the nonzeros."""
    return (gy.t() @ x2).reshape(-1)[structure.flat]


class _CSRLinearFn(torch.autograd.Function):
    """Inputs: x2 ``(N, in)``, w (values ``(nnz,)`` or dense ``(out, in)``), bias or None."""

    @staticmethod
    def forward(
        ctx: Any,
        x2: Tensor,
        w: Tensor,
        bias: Tensor | None,
        structure: CSRStructure,
        dense_weight: bool,
        full_grad: bool,
        block: int,
    ) -> Tensor:
        values = structure.values_of(w) if dense_weight else w.detach()
        ctx.save_for_backward(x2, values)
        ctx.structure, ctx.dense_weight, ctx.full_grad = structure, dense_weight, full_grad
        ctx.block, ctx.has_bias = block, bias is not None
        return csr_linear(x2.detach(), structure.csr(values), bias, block=block)

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor | None, ...]:
        x2, values = ctx.saved_tensors
        s: CSRStructure = ctx.structure
        gy = gy.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            # dx = dy W = dy (W^T)^T: a CSR product with the cached transpose (in, out)
            gx = csr_linear(gy, s.transpose(values), block=ctx.block)
        if ctx.needs_input_grad[1]:
            if ctx.full_grad:
                gw = gy.t() @ x2  # (out, in): RigL scores pruned entries by this
            else:
                g = _nonzero_grad(s, values, gy, x2)
                gw = s.scatter(g) if ctx.dense_weight else g
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum(0)
        return gx, gw, gb, None, None, None, None


def _flatten(x: Tensor, in_features: int) -> Tensor:
    return x.reshape(-1, in_features)


def csr_linear_train(
    x: Tensor,
    values: Tensor,
    structure: CSRStructure,
    bias: Tensor | None = None,
    *,
    block: int = 0,
) -> Tensor:
    """``x W^T + b`` with W given by its nonzero ``values``, differentiable in x, values, bias.

    The gradient of ``values`` is computed only at the nonzeros (a sampled product) and the
    input gradient through the cached transposed CSR: exact, as masked dense.

    Args:
        x: dense ``(*, in)``.
        values: ``(nnz,)`` in the CSR order of ``structure``.
        structure: where the nonzeros sit (:class:`CSRStructure`, ``(out, in)``).
        bias: optional ``(out,)``.
        block: column block for large batches (0: none).

    Returns:
        ``(*, out)``.

    Example:
        >>> s = CSRStructure(torch.eye(3, dtype=torch.bool))
        >>> v = torch.ones(3, requires_grad=True)
        >>> csr_linear_train(torch.tensor([[1.0, 2.0, 3.0]]), v, s).sum().backward()
        >>> v.grad.tolist()
        [1.0, 2.0, 3.0]
    """
    out_f, in_f = structure.shape
    if values.shape != (structure.nnz,):
        raise ValueError(
            f"values shape {tuple(values.shape)} does not fit the structure's {structure.nnz} "
            "nonzeros"
        )
    y = _CSRLinearFn.apply(_flatten(x, in_f), values, bias, structure, False, False, block)
    return y.reshape(*x.shape[:-1], out_f)


def masked_csr_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    structure: CSRStructure,
    *,
    full_grad: bool = False,
    block: int = 0,
) -> Tensor:
    """``F.linear(x, weight, bias)`` for a masked dense ``weight``, run and differentiated as CSR.

    ``weight.grad`` gets the gradient at the mask's nonzeros (zero elsewhere) or, with
    ``full_grad``, the full dense gradient (what ``sprig.masks.dense_gradients`` records).

    Args:
        x: dense ``(*, in)``.
        weight: dense ``(out, in)``, zero outside ``structure``.
        bias: optional ``(out,)``.
        structure: the mask's :class:`CSRStructure`.
        full_grad: return the dense gradient of ``weight`` (for mask updaters such as RigL).
        block: column block for large batches (0: none).
    """
    out_f, in_f = structure.shape
    y = _CSRLinearFn.apply(_flatten(x, in_f), weight, bias, structure, True, full_grad, block)
    return y.reshape(*x.shape[:-1], out_f)
